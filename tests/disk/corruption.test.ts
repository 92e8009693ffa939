// Flips every byte (and cuts every length) of small segment files, on local files and in
// memory: open/get/scan/verify must either throw CorruptionError naming the file or return the
// right data; verify must always throw, because every byte of a data file is covered by a CRC
// (blocks by their block table CRC, the index by the footer's, the footer by its own).
import { afterEach, describe, expect, test } from "bun:test";
import { CorruptionError } from "../../src/api/errors.ts";
import { BlockCache } from "../../src/disk/block_cache.ts";
import {
  dataFileName,
  FOOTER_SIZE,
  FORMAT_VERSION,
  FORMAT_VERSION_CRC32C,
  LAYOUTS,
} from "../../src/disk/format.ts";
import { crc32c } from "../../src/util/crc32c.ts";
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

/** Flips each byte of segment `id`'s file in turn (and back): every flip must be detected. */
function expectEveryFlipDetected(s: TestStore, id: number, recs: Rec[]): void {
  const path = joinPath(s.dir, dataFileName(id));
  const good = s.fs.readFile(path);
  expect(exercise(s, id, recs, path)).toBeUndefined();
  // Flip in place and flip back: rewriting the whole file costs a truncate each time.
  const h = s.fs.openFile(path);
  try {
    for (let i = 0; i < good.length; i++) {
      h.write(new Uint8Array([good[i] ^ (1 << (i % 8))]), i);
      const err = exercise(s, id, recs, path);
      h.write(good.subarray(i, i + 1), i);
      if (err === undefined) throw new Error(`flip of byte ${i} of ${good.length} went undetected`);
    }
  } finally {
    h.close();
  }
  expect(exercise(s, id, recs, path)).toBeUndefined();
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
          expectEveryFlipDetected(s, 1, recs);
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

describe("format versions: the block checksum follows the footer's version", () => {
  const recsOf = () => genRecords(new Prng(testSeed(4545)), 60, { largeValueBytes: 300 });
  const write = (s: TestStore, id: number, recs: Rec[], formatVersion?: number) =>
    writeDiskSegment(s.fs, s.dir, id, pullFrom(recs), {
      compare: compareBytes,
      compression: "lz4",
      blockSizeBytes: 256,
      sparseStep: 8,
      ...(formatVersion === undefined ? {} : { formatVersion }),
    });
  /** The file with its footer's version set to `version` (footer CRC redone, blocks untouched). */
  const relabel = (bytes: Uint8Array, version: number) => {
    const out = bytes.slice();
    const v = new DataView(out.buffer, out.length - FOOTER_SIZE, FOOTER_SIZE);
    v.setUint32(0, version);
    v.setUint32(132, crc32c(out, out.length - FOOTER_SIZE, out.length - 4));
    return out;
  };

  /** The same records as segment 1 (version 2, written by default) and 2 (version 1). */
  const bothVersions = () => {
    store = memoryStore();
    const s = store;
    const recs = recsOf();
    write(s, 1, recs);
    write(s, 2, recs, FORMAT_VERSION_CRC32C);
    return { s, recs, p1: joinPath(s.dir, dataFileName(1)), p2: joinPath(s.dir, dataFileName(2)) };
  };

  test("version 2 is written; version 1 files (CRC32C blocks) still read, scan and verify", () => {
    const { s, recs, p1, p2 } = bothVersions();
    expect(FORMAT_VERSION).toBe(2);
    expect(new DataView(s.fs.readFile(p1).buffer).getUint32(s.fs.readFile(p1).length - FOOTER_SIZE)).toBe(2);
    expect(new DataView(s.fs.readFile(p2).buffer).getUint32(s.fs.readFile(p2).length - FOOTER_SIZE)).toBe(1);
    expect(exercise(s, 1, recs, p1)).toBeUndefined();
    expect(exercise(s, 2, recs, p2)).toBeUndefined();
  });

  test("a file claiming the other version fails its block checksums (each version checks its own CRC)", () => {
    const { s, recs, p1, p2 } = bothVersions();
    overwrite(s, p1, relabel(s.fs.readFile(p1), FORMAT_VERSION_CRC32C));
    overwrite(s, p2, relabel(s.fs.readFile(p2), FORMAT_VERSION));
    for (const [id, path] of [[1, p1], [2, p2]] as const) {
      const err = exercise(s, id, recs, path);
      expect(err?.message).toContain("checksum mismatch");
    }
  });

  test("version 1: every flipped byte is detected, never wrong data", () => {
    store = memoryStore();
    const s = store;
    const recs = genRecords(new Prng(testSeed(4646)), 30, { largeValueBytes: 300 });
    write(s, 3, recs, FORMAT_VERSION_CRC32C);
    expectEveryFlipDetected(s, 3, recs);
  });

  test("an unknown version is a CorruptionError naming it", () => {
    store = memoryStore();
    const s = store;
    write(s, 4, recsOf());
    const path = joinPath(s.dir, dataFileName(4));
    overwrite(s, path, relabel(s.fs.readFile(path), 3));
    expect(() => openDiskSegment(s.fs, s.dir, 4, compareBytes, new BlockCache(0))).toThrow(
      "unknown format version 3",
    );
  });
});
