// Disk segments under Deno with local files: write single-part and multipart segments, reopen,
// get every key, scan both ways, seek, verify, and detect a flipped byte.
import assert from "node:assert/strict";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import { CorruptionError } from "../../src/api/errors.ts";
import { BlockCache } from "../../src/disk/block_cache.ts";
import { dataFileName, LAYOUTS } from "../../src/disk/format.ts";
import { openMultipartSegment, writeMultipartSegment } from "../../src/disk/multipart.ts";
import { openDiskSegment } from "../../src/disk/segment_reader.ts";
import { writeDiskSegment } from "../../src/disk/segment_writer.ts";
import { joinPath } from "../../src/fs/file_system.ts";
import { localFileSystem } from "../../src/fs/local_file_system.ts";
import {
  KIND_DELETE,
  KIND_PUT,
  newSlot,
  type RecordSlot,
  type SegmentReader,
} from "../../src/iter/record.ts";
import { compareBytes } from "../../src/util/bytes.ts";
import { Prng } from "../../src/util/prng.ts";

function records(
  n: number,
  keyWidth: number | undefined,
  valueWidth: number | undefined,
): RecordSlot[] {
  const rng = new Prng(99);
  const byKey = new Map<string, RecordSlot>();
  while (byKey.size < n) {
    const key = rng.bytes(keyWidth ?? 1 + rng.int(10));
    const value = rng.bytes(valueWidth ?? (rng.next() < 0.05 ? 5000 : rng.int(30)));
    byKey.set(key.join(","), {
      key,
      value,
      opIndex: 1 + rng.int(1e9),
      kind: rng.next() < 0.1 ? KIND_DELETE : KIND_PUT,
      expiresAt: rng.next() < 0.2 ? 1_700_000_000_000 + rng.int(1e9) : 0,
    });
  }
  return [...byKey.values()].sort((a, b) => compareBytes(a.key, b.key));
}

function same(seg: SegmentReader, recs: RecordSlot[]): void {
  const out = newSlot();
  for (const r of recs) {
    assert.ok(seg.get(r.key, out), "get hits");
    assert.deepEqual([out.value, out.opIndex, out.kind, out.expiresAt], [
      r.value,
      r.opIndex,
      r.kind,
      r.expiresAt,
    ]);
  }
  for (const reverse of [false, true]) {
    const c = seg.cursor(reverse);
    const seen: Uint8Array[] = [];
    while (c.next()) seen.push(c.key.slice());
    c.close();
    const want = recs.map((r) => r.key);
    assert.deepEqual(seen, reverse ? want.reverse() : want);
  }
  const c = seg.cursor(false);
  const mid = recs[recs.length >> 1];
  assert.ok(c.seek(mid.key, true));
  assert.deepEqual(c.key.slice(), recs[(recs.length >> 1) + 1].key);
  c.close();
}

function tempDir(): string {
  return nodeFs.mkdtempSync(joinPath(os.tmpdir(), "zt-deno-disk-"));
}

/**
 * Writes `recs` as segment `id` (lz4, 4 KiB blocks, plus `options`), opens it, reads every
 * record both ways, verifies and closes it; returns what the writer reported.
 */
function roundTrip(
  fs: ReturnType<typeof localFileSystem>,
  dir: string,
  id: number,
  recs: RecordSlot[],
  options: { keyFixedWidth?: number; valueFixedWidth?: number; formatVersion?: number },
) {
  const info = writeDiskSegment(fs, dir, id, recs, {
    compare: compareBytes,
    compression: "lz4",
    blockSizeBytes: 4096,
    ...options,
  });
  const seg = openDiskSegment(fs, dir, info, compareBytes, new BlockCache(1 << 20));
  same(seg, recs);
  seg.verify();
  seg.close();
  return info;
}

for (const layout of LAYOUTS) {
  Deno.test(`disk segment ${layout} writes, reopens, reads and verifies under Deno`, () => {
    const dir = tempDir();
    try {
      const fs = localFileSystem();
      const kw = layout.startsWith("fixed-key") ? 8 : undefined;
      const vw = layout.endsWith("fixed-value") ? 24 : undefined;
      const recs = records(3000, kw, vw);
      const info = roundTrip(fs, dir, 1, recs, { keyFixedWidth: kw, valueFixedWidth: vw });
      assert.equal(info.layout, layout);
    } finally {
      nodeFs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

Deno.test("multipart disk segment reads across parts under Deno", () => {
  const dir = tempDir();
  try {
    const fs = localFileSystem();
    const recs = records(2000, undefined, undefined);
    let next = 1;
    writeMultipartSegment(fs, dir, 100, recs, {
      compare: compareBytes,
      compression: "lz4",
      allocateId: () => next++,
      partMinItemCount: 300,
      partMaxItemCount: 500,
    });
    const seg = openMultipartSegment(fs, dir, 100, compareBytes, new BlockCache(1 << 20));
    assert.equal(seg.parts.length, 4);
    same(seg, recs);
    seg.verify();
    seg.close();
  } finally {
    nodeFs.rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("a flipped byte in a local segment file is a CorruptionError naming it", () => {
  const dir = tempDir();
  try {
    const fs = localFileSystem();
    writeDiskSegment(fs, dir, 1, records(500, 8, 16), {
      compare: compareBytes,
      keyFixedWidth: 8,
      valueFixedWidth: 16,
      compression: "lz4",
    });
    const path = joinPath(dir, dataFileName(1));
    const bytes = nodeFs.readFileSync(path);
    bytes[100] ^= 0x10;
    nodeFs.writeFileSync(path, bytes);
    const seg = openDiskSegment(fs, dir, 1, compareBytes, new BlockCache(0));
    assert.throws(
      () => seg.verify(),
      (e: unknown) => e instanceof CorruptionError && e.file === path,
    );
    seg.close();
  } finally {
    nodeFs.rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("block checksums: CRC-32 runs natively under Deno; format 1 (CRC32C) files still read", async () => {
  const { crc32, crc32IsNative, crc32Js } = await import("../../src/util/crc32.ts");
  const { FORMAT_VERSION_CRC32C } = await import("../../src/disk/format.ts");
  assert.equal(crc32IsNative, true);
  const sample = new Prng(5).bytes(4099);
  assert.equal(crc32(sample, 3, 4000, 77), crc32Js(sample, 3, 4000, 77));
  const dir = tempDir();
  try {
    const fs = localFileSystem();
    const recs = records(2000, undefined, undefined);
    for (const [id, formatVersion] of [[1, undefined], [2, FORMAT_VERSION_CRC32C]] as const) {
      roundTrip(fs, dir, id, recs, formatVersion === undefined ? {} : { formatVersion });
    }
  } finally {
    nodeFs.rmSync(dir, { recursive: true, force: true });
  }
});
