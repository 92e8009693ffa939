// Torn tails and corruption on real WAL files (local fs): a cut anywhere in the last frame opens
// with the prefix and reports the tail; a flipped bit before the last frame is CorruptionError
// naming the file and the frame's offset; lengths read from the file never drive allocation.
import { afterEach, beforeEach, expect, test } from "bun:test";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import type { FileHandle, FileSystem } from "../../src/fs/file_system.ts";
import { localFileSystem } from "../../src/fs/local_file_system.ts";
import { crc32c } from "../../src/util/crc32c.ts";
import { Prng } from "../../src/util/prng.ts";
import {
  encodeWalHeader,
  WAL_FORMAT_VERSION,
  WAL_FORMAT_VERSION_CRC32C,
  WAL_HEADER_BYTES,
  walFrameChecksum,
  type WalMode,
} from "../../src/wal/wal_format.ts";
import { WalWriter } from "../../src/wal/wal_writer.ts";
import { appendRandom, randomOp, replayAll, type SeenOp, show } from "./helpers.ts";

let dir: string;
let path: string;
const fs = localFileSystem();
beforeEach(() => {
  dir = nodeFs.mkdtempSync(`${os.tmpdir()}/zt-torn-`);
  path = `${dir}/000001.wal`;
});
afterEach(() => nodeFs.rmSync(dir, { recursive: true, force: true }));

/** Writes `frames` appends (each one frame) and returns the ops and every frame's start offset. */
async function writeFrames(mode: WalMode, frames: number, seed: number) {
  const prng = new Prng(seed);
  const wal = WalWriter.create(fs, path, 1, mode);
  const ops: SeenOp[] = [];
  const starts: number[] = [];
  for (let i = 0; i < frames; i++) {
    starts.push(wal.sizeBytes);
    if (mode === "async-compressed") {
      // The flush ends the frame: every record appended before it shares one frame.
      ops.push(...appendRandom(wal, prng, ops.length + 1, 20));
      await wal.flush();
    } else {
      // One append, one frame: a single op or a batch of several.
      const batch = Array.from({ length: 1 + prng.int(4) }, () => randomOp(prng));
      wal.appendBatch(ops.length + 1, batch);
      for (const op of batch) ops.push({ ...op, opIndex: ops.length + 1 });
    }
  }
  await wal.close();
  const bytes = new Uint8Array(nodeFs.readFileSync(path));
  expect(bytes.length).toBe(wal.sizeBytes);
  return { ops, starts, bytes };
}

/** How many ops the frames before frame number `frame` hold. */
function opsBefore(starts: number[], bytes: Uint8Array, frame: number): number {
  // Replays the prefix that ends at the frame to count its ops.
  nodeFs.writeFileSync(path, bytes.subarray(0, starts[frame]));
  return replayAll(fs, path).ops.length;
}

for (const mode of ["sync", "sync-compressed", "async-compressed"] as WalMode[]) {
  test(`${mode}: a cut at every byte of the last frame opens with the prefix and reports the tail`, async () => {
    const { ops, starts, bytes } = await writeFrames(mode, 4, 5);
    const last = starts[starts.length - 1];
    const before = opsBefore(starts, bytes, starts.length - 1);
    expect(before).toBeLessThan(ops.length);
    for (let cut = last; cut <= bytes.length; cut++) {
      nodeFs.writeFileSync(path, bytes.subarray(0, cut));
      const { ops: got, result } = replayAll(fs, path);
      const why = `${mode} cut at ${cut} (last frame ${last}..${bytes.length})`;
      if (cut === bytes.length) {
        expect(got.length, why).toBe(ops.length);
        expect(result.tornTail, why).toBeUndefined();
      } else if (bytes.subarray(last, cut).every((b) => b === 0)) {
        // Nothing of the frame but zeros (none at all, or its length's high bytes): the end of
        // the log, as the zeros a sync-mode writer writes ahead are.
        expect(got.length, why).toBe(before);
        expect(result.tornTail, why).toBeUndefined();
        expect(result.validLength, why).toBe(last);
      } else {
        expect(show(got), why).toEqual(show(ops.slice(0, before)));
        expect(result.tornTail?.offset, why).toBe(last);
        expect(result.validLength, why).toBe(last);
      }
    }
  });
}

test("a log torn inside its header is empty; openForAppend writes the header again", () => {
  const wal = WalWriter.create(fs, path, 9, "sync");
  wal.appendOne(1, 0, new Uint8Array([1]), new Uint8Array([2]), 0);
  wal.closeSync();
  const bytes = new Uint8Array(nodeFs.readFileSync(path));
  for (let cut = 0; cut < WAL_HEADER_BYTES; cut++) {
    nodeFs.writeFileSync(path, bytes.subarray(0, cut));
    const { ops, result } = replayAll(fs, path);
    expect(ops).toEqual([]);
    expect(result.segmentId).toBe(-1);
    expect(result.validLength).toBe(0);
    expect(result.tornTail?.offset).toBe(0);
  }
  nodeFs.writeFileSync(path, new Uint8Array(WAL_HEADER_BYTES)); // zeros: size updated, data not
  expect(replayAll(fs, path).result.tornTail?.offset).toBe(0);
  const again = WalWriter.openForAppend(fs, path, "sync", 0, 9);
  again.appendOne(5, 0, new Uint8Array([5]), new Uint8Array([5]), 0);
  again.closeSync();
  const { ops, result } = replayAll(fs, path);
  expect(ops.map((o) => o.opIndex)).toEqual([5]);
  expect(result.segmentId).toBe(9);
});

test("a zero-filled tail is the end of the log, not a torn tail; appending after it cuts it off", () => {
  const wal = WalWriter.create(fs, path, 1, "sync");
  wal.appendOne(1, 0, new Uint8Array([1]), new Uint8Array([2]), 0);
  wal.closeSync();
  const size = wal.sizeBytes;
  nodeFs.appendFileSync(path, new Uint8Array(5000));
  const { ops, result } = replayAll(fs, path);
  expect(ops.length).toBe(1);
  expect(result.tornTail).toBeUndefined();
  expect(result.validLength).toBe(size);
  const again = WalWriter.openForAppend(fs, path, "sync", result.validLength);
  again.appendOne(2, 0, new Uint8Array([2]), new Uint8Array([2]), 0);
  again.closeSync();
  expect(replayAll(fs, path).ops.map((o) => o.opIndex)).toEqual([1, 2]);
  expect(nodeFs.statSync(path).size).toBe(again.sizeBytes);
});

for (const mode of ["sync", "async-compressed"] as WalMode[]) {
  test(`${mode}: a bit flip before the last frame is CorruptionError at that frame's offset`, async () => {
    const { starts, bytes } = await writeFrames(mode, 12, 8);
    const prng = new Prng(99);
    const last = starts[starts.length - 1];
    // Every byte of one middle frame, plus random bytes anywhere before the last frame.
    const positions: number[] = [];
    for (let p = starts[5]; p < starts[6]; p++) positions.push(p);
    for (let i = 0; i < 150; i++) positions.push(prng.int(last));
    for (const pos of positions) {
      const flipped = bytes.slice();
      flipped[pos] ^= 1 << prng.int(8);
      nodeFs.writeFileSync(path, flipped);
      const frameStart = pos < WAL_HEADER_BYTES ? 0 : starts.filter((s) => s <= pos).pop()!;
      let err: unknown;
      try {
        replayAll(fs, path);
      } catch (e) {
        err = e;
      }
      expect(err, `${mode} flip at ${pos}`).toMatchObject({
        code: "CORRUPTION",
        file: path,
        offset: frameStart,
      });
    }
  });
}

test("a bit flip in the last frame is a torn tail", async () => {
  const { starts, bytes } = await writeFrames("sync", 6, 3);
  const last = starts[starts.length - 1];
  const before = opsBefore(starts, bytes, starts.length - 1);
  for (let pos = last; pos < bytes.length; pos++) {
    const flipped = bytes.slice();
    flipped[pos] ^= 0x10;
    nodeFs.writeFileSync(path, flipped);
    const { ops: got, result } = replayAll(fs, path);
    expect(got.length, `flip at ${pos}`).toBe(before);
    expect(result.tornTail?.offset, `flip at ${pos}`).toBe(last);
  }
});

// ---------------------------------------------------------------------------------------------
// Hand-made frames with hostile length fields.

/** A raw frame, checksummed for WAL format `version` (the one written by default). */
function rawFrame(payload: number[], version = WAL_FORMAT_VERSION): Uint8Array {
  const out = new Uint8Array(9 + payload.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, payload.length);
  out[8] = 0;
  out.set(payload, 9);
  v.setUint32(4, walFrameChecksum(version)(out, 8, out.length));
  return out;
}

function lz4FrameClaiming(rawLength: number, stored: number[]): Uint8Array {
  const out = new Uint8Array(13 + stored.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, stored.length);
  out[8] = 1;
  v.setUint32(9, rawLength);
  out.set(stored, 13);
  v.setUint32(4, walFrameChecksum(WAL_FORMAT_VERSION)(out, 8, out.length));
  return out;
}

/** One op record: opIndex, count 1, put, no flags, key [k], value [v]. */
function record(opIndex: number, k = 1, v = 2): number[] {
  return [0, 0, 0, 0, 0, 0, 0, opIndex, 1, 0, 0, 1, k, 1, v];
}

/** A file system whose handles remember the largest read buffer they were given. */
function spyingFs(): { fs: FileSystem; maxReadBuffer: () => number } {
  let max = 0;
  const inner = localFileSystem();
  const wrap = (h: FileHandle): FileHandle => ({
    ...h,
    path: h.path,
    size: () => h.size(),
    read: (buf, pos, len) => {
      max = Math.max(max, buf.length);
      return h.read(buf, pos, len);
    },
    close: () => h.close(),
  });
  return {
    fs: { ...inner, openFile: (p, o) => wrap(inner.openFile(p, o)) } as FileSystem,
    maxReadBuffer: () => max,
  };
}

function writeLog(...frames: Uint8Array[]): number {
  nodeFs.rmSync(path, { force: true });
  const wal = WalWriter.create(fs, path, 1, "sync");
  wal.appendOne(1, 0, new Uint8Array([1]), new Uint8Array([1]), 0);
  wal.closeSync();
  for (const f of frames) nodeFs.appendFileSync(path, f);
  return wal.sizeBytes;
}

test("a 4 GiB length field at the tail is a torn tail and allocates nothing large", () => {
  const good = writeLog(Uint8Array.from([0xff, 0xff, 0xff, 0xf0, 1, 2, 3, 4, 0, 9, 9, 9, 9, 9]));
  const spy = spyingFs();
  const { ops, result } = replayAll(spy.fs, path);
  expect(ops.map((o) => o.opIndex)).toEqual([1]);
  expect(result.validLength).toBe(good);
  expect(result.tornTail?.reason).toContain("runs past the end");
  expect(spy.maxReadBuffer()).toBeLessThanOrEqual(nodeFs.statSync(path).size);
});

test("an lz4 frame claiming a 2 GiB decompressed size is refused before decompressing", () => {
  const huge = lz4FrameClaiming(0x7fff_ffff, [0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  // At the tail: torn. Followed by a valid frame: corruption at its offset.
  const at = writeLog(huge);
  expect(replayAll(fs, path).result.tornTail).toMatchObject({
    offset: at,
    reason: expect.stringContaining("implausible"),
  });
  writeLog(huge, rawFrame(record(2)));
  expect(() => replayAll(fs, path)).toThrow(
    expect.objectContaining({ code: "CORRUPTION", offset: at }),
  );
});

test("a checksummed frame with a huge key length or op count is corruption, even at the tail", () => {
  const hugeKey = [0, 0, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2];
  const at = writeLog(rawFrame(hugeKey));
  expect(() => replayAll(fs, path)).toThrow(
    expect.objectContaining({ code: "CORRUPTION", offset: at }),
  );
  const hugeCount = [0, 0, 0, 0, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 1, 1, 1, 2];
  writeLog(rawFrame(hugeCount));
  expect(() => replayAll(fs, path)).toThrow(/bad op count/);
  writeLog(rawFrame([...record(2), 0, 0, 0, 0, 0, 0, 0, 3, 1, 7, 0, 1, 1, 1, 1]));
  expect(() => replayAll(fs, path)).toThrow(/unknown op kind 7/);
});

test("a damaged file header is corruption when frames follow it", () => {
  writeLog(rawFrame(record(2)));
  const bytes = new Uint8Array(nodeFs.readFileSync(path));
  bytes[3] ^= 4;
  nodeFs.writeFileSync(path, bytes);
  expect(() => replayAll(fs, path)).toThrow(
    expect.objectContaining({ code: "CORRUPTION", offset: 0 }),
  );
  bytes[3] ^= 4;
  bytes[5] = 3; // a future format version, checksum fixed
  new DataView(bytes.buffer).setUint32(16, crc32c(bytes, 0, 16));
  nodeFs.writeFileSync(path, bytes);
  expect(() => replayAll(fs, path)).toThrow(/unsupported WAL format version 3/);
});

test("a format-1 WAL (CRC-32C frames) replays, takes appends in its own format, and a frame of the other format is a torn tail", () => {
  // A log as the previous version wrote it: header version 1, frames with CRC-32C.
  nodeFs.writeFileSync(path, encodeWalHeader(5, WAL_FORMAT_VERSION_CRC32C));
  nodeFs.appendFileSync(path, rawFrame(record(1), WAL_FORMAT_VERSION_CRC32C));
  nodeFs.appendFileSync(path, rawFrame(record(2, 7, 8), WAL_FORMAT_VERSION_CRC32C));
  const first = replayAll(fs, path);
  expect(first.ops.map((o) => o.opIndex)).toEqual([1, 2]);
  expect(first.result.tornTail).toBeUndefined();
  // Recovery appends to the newest log: its frames must carry the file's checksum.
  const wal = WalWriter.openForAppend(fs, path, "sync", first.result.validLength, 5);
  wal.appendOne(3, 0, new Uint8Array([3]), new Uint8Array([3]), 0);
  wal.closeSync();
  expect(replayAll(fs, path).ops.map((o) => o.opIndex)).toEqual([1, 2, 3]);
  // A version-2 frame after them does not pass as a version-1 one.
  const size = nodeFs.statSync(path).size;
  nodeFs.appendFileSync(path, rawFrame(record(4), WAL_FORMAT_VERSION));
  const last = replayAll(fs, path);
  expect(last.ops.map((o) => o.opIndex)).toEqual([1, 2, 3]);
  expect(last.result.tornTail).toEqual({ offset: size, reason: "checksum mismatch" });
});

/**
 * One append of `n` ops with 4-byte big-endian keys from `first` and 96-byte values: "pattern",
 * as the prefix-crash child writes them (a regular byte pattern), or "counters" (the key as a
 * 64-bit big-endian number, 12 times: mostly zero bytes). Raw, such a payload is full of byte
 * runs that look like frame headers: LZ4 ones in the first, raw ones in the second.
 */
function regularBatch(first: number, n: number, values: "pattern" | "counters" = "pattern") {
  return Array.from({ length: n }, (_, k) => {
    const i = first + k;
    const key = new Uint8Array(4);
    new DataView(key.buffer).setUint32(0, i);
    const value = new Uint8Array(96);
    if (values === "pattern") {
      for (let j = 0; j < value.length; j++) value[j] = (i * 31 + j * 7) & 0xff;
    } else for (let j = 0; j < value.length; j += 8) new DataView(value.buffer).setUint32(j + 4, i);
    return { kind: 0, key, value, expiresAt: 0 };
  });
}

for (const mode of ["sync", "sync-compressed"] as const) {
  test(`a large frame of regular records cut anywhere is a torn tail (${mode})`, () => {
    // What a SIGKILL during the write of a follower's first, multi-megabyte frame leaves.
    for (const [values, n] of [["pattern", 40_000], ["counters", 20_000]] as const) {
      nodeFs.rmSync(path, { force: true });
      const wal = WalWriter.create(fs, path, 36, mode);
      wal.appendBatch(5_000_000, regularBatch(1_000, n, values));
      wal.closeSync();
      const bytes = new Uint8Array(nodeFs.readFileSync(path));
      for (const fraction of [0.05, 0.2, 0.4, 0.6, 0.75, 0.9, 0.97, 0.999]) {
        const cut = WAL_HEADER_BYTES + Math.floor((bytes.length - WAL_HEADER_BYTES) * fraction);
        nodeFs.writeFileSync(path, bytes.subarray(0, cut));
        const { ops, result } = replayAll(fs, path);
        const why = `${values}: cut at ${cut} of ${bytes.length}`;
        expect(result.tornTail?.offset, why).toBe(WAL_HEADER_BYTES);
        expect(ops.length).toBe(0);
      }
    }
  });

  test(`damage in a large frame followed by another is corruption (${mode})`, () => {
    // The checks that rule out garbage must let a real frame through, large or small.
    const wal = WalWriter.create(fs, path, 36, mode);
    wal.appendBatch(1, regularBatch(0, 20_000));
    const second = wal.sizeBytes;
    wal.appendBatch(20_001, regularBatch(20_000, 20_000));
    wal.appendBatch(40_001, regularBatch(40_000, 1));
    wal.closeSync();
    const bytes = new Uint8Array(nodeFs.readFileSync(path));
    for (
      const [at, frame] of [[WAL_HEADER_BYTES + 100, WAL_HEADER_BYTES], [second + 5000, second]]
    ) {
      const bad = bytes.slice();
      bad[at] ^= 0x40;
      nodeFs.writeFileSync(path, bad);
      expect(() => replayAll(fs, path), `flip at ${at}`).toThrow(
        expect.objectContaining({ code: "CORRUPTION", offset: frame }),
      );
    }
  });
}
