// Flips every byte (and cuts every length) of small segment files, on local files and in
// memory: open/get/scan/verify must either throw CorruptionError naming the file or return the
// right data; verify must always throw, because every byte of a data file is covered by a CRC
// (blocks by their block table CRC, the index by the footer's, the footer by its own).
import { afterEach, describe, expect, test } from "bun:test";
import { CorruptionError } from "../../src/api/errors.ts";
import { BlockCache } from "../../src/disk/block_cache.ts";
import { dataFileName, LAYOUTS } from "../../src/disk/format.ts";
import { openDiskSegment } from "../../src/disk/segment_reader.ts";
import { writeDiskSegment } from "../../src/disk/segment_writer.ts";
import { joinPath } from "../../src/fs/file_system.ts";
import { newSlot, type SegmentReader } from "../../src/iter/record.ts";
import { compareBytes } from "../../src/util/bytes.ts";
import { Prng } from "../../src/util/prng.ts";
import {
  genRecords,
  localStore,
  memoryStore,
  pullFrom,
  type Rec,
  type Shape,
  testSeed,
  type TestStore,
} from "./helpers.ts";

const SHAPES: Record<string, Shape> = {
  "fixed-key-fixed-value": { keyFixedWidth: 4, valueFixedWidth: 6 },
  "fixed-key-variable-value": { keyFixedWidth: 4, largeValueBytes: 300 },
  "variable-key-fixed-value": { valueFixedWidth: 6 },
  "variable-key-variable-value": { largeValueBytes: 300 },
};

let store: TestStore | undefined;

/**
 * Truncation lengths to try: all of them in memory; on local files (a truncate and rewrite
 * each) a dense sample: every length within the last 400 bytes (index and footer), every 3rd before.
 */
function positions(storeName: string, size: number): number[] {
  const all = [...Array(size).keys()];
  return storeName === "memory" ? all : all.filter((i) => i >= size - 400 || i % 3 === 0);
}
afterEach(() => store?.cleanup());

function overwrite(s: TestStore, path: string, bytes: Uint8Array): void {
  const h = s.fs.openFile(path, { create: true, truncate: true });
  h.append(bytes);
  h.close();
}

/** Runs every read operation; returns the first CorruptionError, or undefined if all passed. */
function exercise(
  s: TestStore,
  id: number,
  recs: Rec[],
  path: string,
): CorruptionError | undefined {
  let seg: (SegmentReader & { verify(): void; close(): void }) | undefined;
  try {
    seg = openDiskSegment(s.fs, s.dir, id, compareBytes, new BlockCache(1 << 20));
    const out = newSlot();
    for (const r of recs) {
      if (!seg.get(r.key, out)) throw new Error(`wrong data: ${[...r.key]} missing`);
      if (
        compareBytes(out.value, r.value) !== 0 || out.opIndex !== r.opIndex ||
        out.kind !== r.kind ||
        out.expiresAt !== r.expiresAt
      ) {
        throw new Error(`wrong data for ${[...r.key]}`);
      }
    }
    for (const reverse of [false, true]) {
      const c = seg.cursor(reverse);
      let i = reverse ? recs.length - 1 : 0;
      while (c.next()) {
        const r = recs[i];
        if (
          r === undefined || compareBytes(c.key, r.key) !== 0 ||
          compareBytes(c.value, r.value) !== 0
        ) {
          throw new Error(`wrong data in ${reverse ? "reverse" : "forward"} scan at ${i}`);
        }
        i += reverse ? -1 : 1;
      }
      if (i !== (reverse ? -1 : recs.length)) throw new Error("scan ended early");
    }
    seg.verify();
    return undefined;
  } catch (e) {
    if (!(e instanceof CorruptionError)) throw e;
    expect(e.code).toBe("CORRUPTION");
    expect(e.file).toBe(path);
    return e;
  } finally {
    seg?.close();
  }
}

for (const [storeName, makeStore] of [["local", localStore], ["memory", memoryStore]] as const) {
  describe(`${storeName} fs: damaged data files`, () => {
    for (const layout of LAYOUTS) {
      for (const compression of ["lz4", "none"] as const) {
        if (compression === "none" && layout !== "variable-key-variable-value") continue;
        test(`${layout} ${compression}: every flipped byte is detected, never wrong data`, () => {
          store = makeStore();
          const s = store;
          const shape = SHAPES[layout];
          const rng = new Prng(testSeed(4242));
          const recs = genRecords(rng, 40, shape);
          writeDiskSegment(s.fs, s.dir, 1, pullFrom(recs), {
            compare: compareBytes,
            ...shape,
            compression,
            sparseStep: 8,
            blockSizeBytes: 256,
          });
          const path = joinPath(s.dir, dataFileName(1));
          const good = s.fs.readFile(path);
          expect(exercise(s, 1, recs, path)).toBeUndefined();
          // Flip in place and flip back: rewriting the whole file costs a truncate each time.
          const h = s.fs.openFile(path);
          try {
            for (let i = 0; i < good.length; i++) {
              h.write(new Uint8Array([good[i] ^ (1 << (i % 8))]), i);
              const err = exercise(s, 1, recs, path);
              h.write(good.subarray(i, i + 1), i);
              if (err === undefined) {
                throw new Error(`flip of byte ${i} of ${good.length} went undetected`);
              }
            }
          } finally {
            h.close();
          }
          expect(exercise(s, 1, recs, path)).toBeUndefined();
        });
      }
    }

    test("every truncation and an appended byte fail to open with CorruptionError", () => {
      store = makeStore();
      const s = store;
      const recs = genRecords(new Prng(testSeed(4343)), 40, { largeValueBytes: 300 });
      writeDiskSegment(s.fs, s.dir, 2, pullFrom(recs), {
        compare: compareBytes,
        compression: "lz4",
        blockSizeBytes: 256,
      });
      const path = joinPath(s.dir, dataFileName(2));
      const good = s.fs.readFile(path);
      for (const n of positions(storeName, good.length)) {
        overwrite(s, path, good.subarray(0, n));
        expect(() => openDiskSegment(s.fs, s.dir, 2, compareBytes, new BlockCache(0))).toThrow(
          CorruptionError,
        );
      }
      overwrite(s, path, new Uint8Array([...good, 0]));
      expect(() => openDiskSegment(s.fs, s.dir, 2, compareBytes, new BlockCache(0))).toThrow(
        CorruptionError,
      );
    });
  });
}

test("a missing file, or one renamed to another id, is a CorruptionError naming it", () => {
  store = memoryStore();
  const s = store;
  writeDiskSegment(s.fs, s.dir, 3, pullFrom(genRecords(new Prng(1), 10, {})), {
    compare: compareBytes,
    compression: "lz4",
  });
  expect(() => openDiskSegment(s.fs, s.dir, 4, compareBytes, new BlockCache(0))).toThrow(
    CorruptionError,
  );
  s.fs.rename(joinPath(s.dir, dataFileName(3)), joinPath(s.dir, dataFileName(4)));
  expect(() => openDiskSegment(s.fs, s.dir, 4, compareBytes, new BlockCache(0))).toThrow(
    "footer names segment 3",
  );
});
