// Multipart disk segments: parts written by MultipartWriter, read as one segment (get routed by
// key range, cursors chained across part boundaries), parts carried into a later descriptor
// unchanged, and the descriptor's corruption checks.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { CorruptionError } from "../../src/api/errors.ts";
import { BlockCache } from "../../src/disk/block_cache.ts";
import { dataFileName, multipartFileName } from "../../src/disk/format.ts";
import {
  type MultipartDiskSegment,
  openAnyDiskSegment,
  openMultipartSegment,
  partTargetItemCount,
  writeMultipartDescriptor,
  writeMultipartSegment,
} from "../../src/disk/multipart.ts";
import { writeDiskSegment } from "../../src/disk/segment_writer.ts";
import { compareBytes } from "../../src/util/bytes.ts";
import { Prng } from "../../src/util/prng.ts";
import {
  checkGets,
  checkScans,
  checkSeeks,
  genRecords,
  lowerBound,
  memoryStore,
  pullFrom,
  type Rec,
  type Shape,
  testSeed,
  type TestStore,
} from "./helpers.ts";

let store: TestStore;
beforeEach(() => (store = memoryStore()));
afterEach(() => store.cleanup());

function idCounter(start: number): () => number {
  let next = start;
  return () => next++;
}

const shapes: [string, Shape][] = [
  ["fixed-key-fixed-value", { keyFixedWidth: 5, valueFixedWidth: 9 }],
  ["variable-key-variable-value", { largeValueBytes: 2000 }],
];

describe("multipart disk segment matches the model", () => {
  for (const [name, shape] of shapes) {
    for (const compression of ["lz4", "none"] as const) {
      test(`${name} ${compression}: gets, scans and seeks across part boundaries`, () => {
        const seed = testSeed(77);
        const rng = new Prng(seed);
        const recs = genRecords(rng, 2000, shape);
        const { descriptor, parts } = writeMultipartSegment(
          store.fs,
          store.dir,
          100,
          pullFrom(recs),
          {
            compare: compareBytes,
            ...shape,
            compression,
            sparseStep: 16,
            blockSizeBytes: 512,
            allocateId: idCounter(1),
            partMinItemCount: 150,
            partMaxItemCount: 300,
          },
        );
        expect(parts.length).toBe(Math.ceil(recs.length / 300));
        expect(descriptor.recordCount).toBe(recs.length);
        const seg = openMultipartSegment(
          store.fs,
          store.dir,
          100,
          compareBytes,
          new BlockCache(1 << 20),
        );
        try {
          expect(seg.recordCount).toBe(recs.length);
          expect(seg.files).toEqual([
            multipartFileName(100),
            ...parts.map((p) => dataFileName(p.id)),
          ]);
          checkGets(seg, recs, rng, shape.keyFixedWidth);
          checkScans(seg, recs);
          checkSeeks(seg, recs, rng, shape.keyFixedWidth);
          checkBoundarySeeks(seg, recs);
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
});

/** Seeks exactly at, just before and just after every part's first and last key. */
function checkBoundarySeeks(seg: MultipartDiskSegment, recs: Rec[]): void {
  for (const part of seg.parts) {
    for (const k of [part.firstKey!, part.lastKey!]) {
      for (const reverse of [false, true]) {
        for (const exclusive of [false, true]) {
          const c = seg.cursor(reverse);
          const at = reverse ? lowerBound(recs, k, !exclusive) - 1 : lowerBound(recs, k, exclusive);
          expect(c.seek(k, exclusive)).toBe(at >= 0 && at < recs.length);
          if (c.valid) expect(compareBytes(c.key, recs[at].key)).toBe(0);
          if (c.next()) expect(compareBytes(c.key, recs[at + (reverse ? -1 : 1)].key)).toBe(0);
          c.close();
        }
      }
    }
  }
}

test("a later descriptor carries parts forward unchanged and both descriptors read", () => {
  const rng = new Prng(testSeed(78));
  const recs = genRecords(rng, 900, { keyFixedWidth: 6, valueFixedWidth: 10 });
  const opts = {
    compare: compareBytes,
    keyFixedWidth: 6,
    valueFixedWidth: 10,
    compression: "lz4" as const,
  };
  const thirds = [recs.slice(0, 300), recs.slice(300, 600), recs.slice(600)];
  const parts = thirds.map((t, i) =>
    writeDiskSegment(store.fs, store.dir, i + 1, pullFrom(t), opts)
  );
  writeMultipartDescriptor(store.fs, store.dir, 10, parts);
  const before = store.fs.readFile(`${store.dir}/${dataFileName(1)}`);
  // A merge rewrites the middle part only: new values there, the outer parts are carried.
  const middle = thirds[1].map((r) => ({
    ...r,
    value: new Uint8Array(10).fill(7),
    opIndex: r.opIndex + 1,
  }));
  const rewritten = writeDiskSegment(store.fs, store.dir, 4, pullFrom(middle), opts);
  writeMultipartDescriptor(store.fs, store.dir, 11, [parts[0], rewritten, parts[2]]);
  expect(store.fs.readFile(`${store.dir}/${dataFileName(1)}`)).toEqual(before);
  const cache = new BlockCache(1 << 20);
  const older = openMultipartSegment(store.fs, store.dir, 10, compareBytes, cache);
  const newer = openAnyDiskSegment(
    store.fs,
    store.dir,
    11,
    compareBytes,
    cache,
  ) as MultipartDiskSegment;
  expect(newer.partIds).toEqual([1, 4, 3]);
  checkScans(older, recs);
  checkScans(newer, [...thirds[0], ...middle, ...thirds[2]]);
  older.verify();
  newer.verify();
  older.close();
  newer.close();
});

test("partTargetItemCount balances parts between min and max", () => {
  expect(partTargetItemCount(undefined, 1_500_000, 3_000_000)).toBe(3_000_000);
  expect(partTargetItemCount(2_000_000, 1_500_000, 3_000_000)).toBe(3_000_000);
  expect(partTargetItemCount(3_100_000, 1_500_000, 3_000_000)).toBe(1_550_000);
  expect(partTargetItemCount(10_000_000, 1_500_000, 3_000_000)).toBe(2_500_000);
  expect(partTargetItemCount(3_000_001, 2_000_000, 3_000_000)).toBe(2_000_000);
});

describe("multipart descriptor corruption", () => {
  function setup(): Uint8Array {
    const rng = new Prng(testSeed(79));
    const recs = genRecords(rng, 200, {});
    writeMultipartSegment(store.fs, store.dir, 50, pullFrom(recs), {
      compare: compareBytes,
      compression: "lz4",
      allocateId: idCounter(1),
      partMinItemCount: 40,
      partMaxItemCount: 60,
    });
    return store.fs.readFile(`${store.dir}/${multipartFileName(50)}`);
  }

  function writeDescriptor(bytes: Uint8Array): void {
    const h = store.fs.openFile(`${store.dir}/${multipartFileName(50)}`, {
      create: true,
      truncate: true,
    });
    h.append(bytes);
    h.close();
  }

  function expectCorrupt(): void {
    let err: unknown;
    try {
      openMultipartSegment(store.fs, store.dir, 50, compareBytes, new BlockCache(0)).close();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CorruptionError);
    expect((err as CorruptionError).code).toBe("CORRUPTION");
    expect((err as CorruptionError).file).toContain(multipartFileName(50));
  }

  test("every flipped byte and every truncation is a CorruptionError naming the descriptor", () => {
    const good = setup();
    for (let i = 0; i < good.length; i++) {
      const bad = good.slice();
      bad[i] ^= 1 << (i % 8);
      writeDescriptor(bad);
      expectCorrupt();
    }
    for (let n = 0; n < good.length; n++) {
      writeDescriptor(good.subarray(0, n));
      expectCorrupt();
    }
  });

  test("a descriptor that disagrees with a part file is a CorruptionError", () => {
    setup();
    // Replace part 2 with a different (valid) part file of the same id.
    store.fs.remove(`${store.dir}/${dataFileName(2)}`);
    const recs = genRecords(new Prng(5), 10, {});
    writeDiskSegment(store.fs, store.dir, 2, pullFrom(recs), {
      compare: compareBytes,
      compression: "none",
    });
    expectCorrupt();
  });
});
