// Single-part disk segments against a sorted-array model: every layout x compression x
// sparseStep, get (hit and miss), full scans both ways, random seeks, reopen and verify.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { BlockCache } from "../../src/disk/block_cache.ts";
import { dataFileName, LAYOUTS } from "../../src/disk/format.ts";
import { openDiskSegment, preloadedIndexOf } from "../../src/disk/segment_reader.ts";
import { CorruptionError } from "../../src/api/errors.ts";
import { DiskSegmentWriter, writeDiskSegment } from "../../src/disk/segment_writer.ts";
import { KIND_DELETE, newSlot } from "../../src/iter/record.ts";
import { compareBytes } from "../../src/util/bytes.ts";
import { Prng } from "../../src/util/prng.ts";
import {
  checkGets,
  checkScans,
  checkSeeks,
  genRecords,
  memoryStore,
  pullFrom,
  type Shape,
  testSeed,
  type TestStore,
} from "./helpers.ts";

const SHAPES: Record<string, Shape> = {
  "fixed-key-fixed-value": { keyFixedWidth: 6, valueFixedWidth: 20 },
  "fixed-key-variable-value": { keyFixedWidth: 6, largeValueBytes: 3000 },
  "variable-key-fixed-value": { valueFixedWidth: 20 },
  "variable-key-variable-value": { largeValueBytes: 3000 },
};

let store: TestStore;
beforeEach(() => (store = memoryStore()));
afterEach(() => store.cleanup());

describe("disk segment matches the model", () => {
  let id = 1;
  for (const layout of LAYOUTS) {
    for (const compression of ["lz4", "none"] as const) {
      for (const sparseStep of [0, 1, 16, 1024]) {
        test(`${layout} ${compression} sparseStep ${sparseStep}: get, scans, seeks, verify`, () => {
          const seed = testSeed(1000 + id);
          const shape = SHAPES[layout];
          const rng = new Prng(seed);
          const recs = genRecords(rng, 1500, shape);
          const segId = id++;
          const info = writeDiskSegment(store.fs, store.dir, segId, pullFrom(recs), {
            compare: compareBytes,
            keyFixedWidth: shape.keyFixedWidth,
            valueFixedWidth: shape.valueFixedWidth,
            compression,
            sparseStep,
            blockSizeBytes: 1024,
          });
          expect(info.layout).toBe(layout);
          expect(info.recordCount).toBe(recs.length);
          expect(info.blockCount).toBeGreaterThan(5);
          const seg = openDiskSegment(
            store.fs,
            store.dir,
            info,
            compareBytes,
            new BlockCache(64 * 1024),
          );
          try {
            expect(seg.recordCount).toBe(recs.length);
            expect(seg.files).toEqual([dataFileName(segId)]);
            expect(seg.deleteCount).toBe(recs.filter((r) => r.kind === KIND_DELETE).length);
            const lz4Blocks = seg.index.blockCodec.filter((c) => c === 1).length;
            if (compression === "lz4") expect(lz4Blocks).toBeGreaterThan(0);
            else expect(lz4Blocks).toBe(0);
            checkGets(seg, recs, rng, shape.keyFixedWidth);
            checkScans(seg, recs);
            checkSeeks(seg, recs, rng, shape.keyFixedWidth);
            seg.verify();
          } catch (e) {
            console.error(`seed ${seed}`);
            throw e;
          } finally {
            seg.close();
          }
        });
      }
    }
  }
});

test("an empty segment opens, misses, scans nothing and verifies", () => {
  const info = writeDiskSegment(store.fs, store.dir, 7, [], {
    compare: compareBytes,
    compression: "lz4",
  });
  expect(info.recordCount).toBe(0);
  expect(info.firstKey).toBeUndefined();
  const seg = openDiskSegment(store.fs, store.dir, 7, compareBytes, new BlockCache(1024));
  expect(seg.get(new Uint8Array([1]), newSlot())).toBe(false);
  expect(seg.cursor(false).next()).toBe(false);
  expect(seg.cursor(true).seek(new Uint8Array([1]))).toBe(false);
  seg.verify();
  seg.close();
});

test("writer asserts ascending keys and fixed widths", () => {
  const w = new DiskSegmentWriter(store.fs, store.dir, 3, {
    compare: compareBytes,
    compression: "none",
    keyFixedWidth: 2,
  });
  const slot = newSlot();
  slot.key = new Uint8Array([1, 2]);
  w.add(slot);
  slot.key = new Uint8Array([1, 2]);
  expect(() => w.add(slot)).toThrow("ascending");
  slot.key = new Uint8Array([1, 2, 3]);
  expect(() => w.add(slot)).toThrow("key length");
  w.abort();
  expect(store.fs.stat(`${store.dir}/${dataFileName(3)}`)).toBeUndefined();
});

test("scans do not fill the block cache unless asked; gets do", () => {
  const rng = new Prng(testSeed(5));
  const recs = genRecords(rng, 2000, { keyFixedWidth: 8, valueFixedWidth: 32 });
  writeDiskSegment(store.fs, store.dir, 9, pullFrom(recs), {
    compare: compareBytes,
    keyFixedWidth: 8,
    valueFixedWidth: 32,
    compression: "lz4",
    blockSizeBytes: 1024,
  });
  const cache = new BlockCache(1 << 20);
  const seg = openDiskSegment(store.fs, store.dir, 9, compareBytes, cache);
  checkScans(seg, recs);
  expect(cache.sizeBytes).toBe(0);
  const c = seg.cursor(false, { fillCache: true });
  while (c.next());
  expect(cache.blockCount).toBe(seg.index.blockCount);
  cache.clear();
  seg.get(recs[100].key, newSlot());
  expect(cache.blockCount).toBe(1);
  cache.dropSegment(9);
  expect(cache.sizeBytes).toBe(0);
  seg.close();
});

test("block cache stays within its byte bound and evicts least recently used", () => {
  const rng = new Prng(testSeed(6));
  const recs = genRecords(rng, 3000, { keyFixedWidth: 8, valueFixedWidth: 32 });
  writeDiskSegment(store.fs, store.dir, 10, pullFrom(recs), {
    compare: compareBytes,
    keyFixedWidth: 8,
    valueFixedWidth: 32,
    compression: "none",
    blockSizeBytes: 1024,
  });
  const cache = new BlockCache(5 * 1300);
  const seg = openDiskSegment(store.fs, store.dir, 10, compareBytes, cache);
  const out = newSlot();
  for (let i = 0; i < 3000; i++) {
    seg.get(recs[rng.int(recs.length)].key, out);
    expect(cache.sizeBytes).toBeLessThanOrEqual(cache.capacityBytes);
  }
  expect(cache.blockCount).toBeGreaterThan(2);
  seg.close();
});

test("fixed values larger than a block get a block per record and read back", () => {
  const rng = new Prng(testSeed(11));
  const shape = { keyFixedWidth: 4, valueFixedWidth: 3000 };
  const recs = genRecords(rng, 200, shape);
  const info = writeDiskSegment(store.fs, store.dir, 12, pullFrom(recs), {
    compare: compareBytes,
    ...shape,
    compression: "lz4",
    blockSizeBytes: 1024,
  });
  expect(info.blockCount).toBe(recs.length);
  const seg = openDiskSegment(store.fs, store.dir, info, compareBytes, new BlockCache(1 << 20));
  checkGets(seg, recs, rng, 4);
  checkScans(seg, recs);
  checkSeeks(seg, recs, rng, 4, 100);
  seg.verify();
  seg.close();
});

test("a segment opened from a preloaded index reads like one decoded from its file; a mismatched one is CorruptionError", () => {
  for (const shape of Object.values(SHAPES)) {
    const rng = new Prng(testSeed(31));
    const recs = genRecords(rng, 3000, shape);
    writeDiskSegment(store.fs, store.dir, 12, pullFrom(recs), {
      compare: compareBytes,
      keyFixedWidth: shape.keyFixedWidth,
      valueFixedWidth: shape.valueFixedWidth,
      compression: "lz4",
      sparseStep: 16,
    });
    const decoded = openDiskSegment(store.fs, store.dir, 12, compareBytes, new BlockCache(1 << 20));
    // As the merge Worker hands it over: structured-cloned plain data.
    const pre = structuredClone(preloadedIndexOf(decoded));
    decoded.close();
    const seg = openDiskSegment(store.fs, store.dir, 12, compareBytes, new BlockCache(1 << 20), new Map([[12, pre]]));
    checkGets(seg, recs, rng);
    checkScans(seg, recs);
    seg.close();
    const wrongSize = { ...pre, size: pre.size + 1 };
    expect(() => openDiskSegment(store.fs, store.dir, 12, compareBytes, new BlockCache(0), new Map([[12, wrongSize]])))
      .toThrow(CorruptionError);
    const wrongIndex = { ...pre, index: { ...pre.index, blockCount: pre.index.blockCount + 1 } };
    expect(() => openDiskSegment(store.fs, store.dir, 12, compareBytes, new BlockCache(0), new Map([[12, wrongIndex]])))
      .toThrow(CorruptionError);
    store.fs.remove(`${store.dir}/${dataFileName(12)}`);
  }
});
