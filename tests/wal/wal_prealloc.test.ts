// The sync modes write zeros ahead of their frames (PREALLOC_BYTES in wal_writer.ts), so that
// most frames overwrite blocks inside the file rather than grow it; the reader takes zeros to the
// end of the file for the end of the log, a clean close cuts them off, and a crash that leaves
// them behind reopens with every acknowledged op and no torn tail.
import { afterEach, beforeEach, expect, test } from "bun:test";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import type { FileHandle } from "../../src/fs/file_system.ts";
import { localFileSystem } from "../../src/fs/local_file_system.ts";
import { faultFileSystem } from "../../src/fs/fault_file_system.ts";
import { memoryFileSystem } from "../../src/fs/memory_file_system.ts";
import { Prng } from "../../src/util/prng.ts";
import type { WalMode } from "../../src/wal/wal_format.ts";
import { PREALLOC_BYTES, PREALLOC_FRAME_MAX_BYTES, WalWriter } from "../../src/wal/wal_writer.ts";
import { randomOp, replayAll, type SeenOp, show } from "./helpers.ts";

let dir: string;
let path: string;
const fs = localFileSystem();
beforeEach(() => {
  dir = nodeFs.mkdtempSync(`${os.tmpdir()}/zt-prealloc-`);
  path = `${dir}/000001.wal`;
});
afterEach(() => nodeFs.rmSync(dir, { recursive: true, force: true }));

/** Appends `n` batches of 1-40 random ops; returns the ops with their opIndexes. */
function appendBatches(wal: WalWriter, prng: Prng, n: number, first = 1): SeenOp[] {
  const ops: SeenOp[] = [];
  for (let i = 0; i < n; i++) {
    const batch = Array.from({ length: 1 + prng.int(40) }, () => randomOp(prng));
    wal.appendBatch(first + ops.length, batch);
    for (const op of batch) ops.push({ ...op, opIndex: first + ops.length });
  }
  return ops;
}

for (const mode of ["sync", "sync-compressed"] as WalMode[]) {
  test(`${mode}: zeros follow the last frame while the log is open; a crash there reopens with every op, no torn tail`, async () => {
    const prng = new Prng(11);
    const wal = WalWriter.create(fs, path, 1, mode);
    const ops = appendBatches(wal, prng, 1600);
    const logical = wal.sizeBytes;
    expect(logical).toBeGreaterThan(PREALLOC_BYTES); // the zeros were extended at least once
    // What a crash now leaves: the file as it is, zeros after the last frame.
    const onDisk = new Uint8Array(nodeFs.readFileSync(path));
    expect(onDisk.length).toBeGreaterThan(logical);
    expect(onDisk.length).toBeLessThanOrEqual(logical + PREALLOC_BYTES);
    expect(onDisk.subarray(logical).every((b) => b === 0)).toBe(true);
    const crashed = `${dir}/000002.wal`;
    nodeFs.writeFileSync(crashed, onDisk);
    await wal.close();
    const { ops: got, result } = replayAll(fs, crashed);
    expect(show(got)).toEqual(show(ops));
    expect(result.tornTail).toBeUndefined();
    expect(result.validLength).toBe(logical);
    // Appending after the crash cuts the zeros off first, then writes zeros ahead again.
    const again = WalWriter.openForAppend(fs, crashed, mode, result.validLength);
    const more = appendBatches(again, prng, 5, ops.length + 1);
    again.closeSync();
    expect(show(replayAll(fs, crashed).ops)).toEqual(show([...ops, ...more]));
    // A clean close leaves no zeros behind.
    expect(nodeFs.statSync(path).size).toBe(logical);
    expect(nodeFs.statSync(crashed).size).toBe(again.sizeBytes);
    expect(show(replayAll(fs, path).ops)).toEqual(show(ops));
  });
}

test("sync: frames overwrite the zeros written ahead; only a frame that reaches the end grows the file", () => {
  const base = memoryFileSystem();
  base.mkdirp("/db");
  let frames = 0;
  let growingFrames = 0;
  let zeroWrites = 0;
  const counting = Object.create(base);
  counting.openFile = (p: string, o: unknown) => {
    const h: FileHandle = base.openFile(p, o as never);
    const wrapped: FileHandle = Object.create(h);
    wrapped.write = (buf, position) => {
      if (buf.every((b) => b === 0)) zeroWrites++;
      else {
        frames++;
        if (position + buf.length > h.size()) growingFrames++;
      }
      h.write(buf, position);
    };
    return wrapped;
  };
  const wal = WalWriter.create(counting, "/db/1.wal", 1, "sync");
  const value = new Uint8Array(10_000).fill(7);
  for (let i = 0; i < 500; i++) wal.appendOne(i + 1, 0, new Uint8Array([i & 255, i >> 8]), value, 0);
  const logical = wal.sizeBytes; // ~5 MB of frames
  // One frame in ~100 reaches the end of the zeros; each such one writes 1 MiB more of them.
  expect(frames).toBe(500);
  expect(growingFrames).toBeLessThanOrEqual(Math.ceil(logical / PREALLOC_BYTES) + 1);
  expect(zeroWrites).toBe(growingFrames);
  wal.closeSync();
  expect(base.stat("/db/1.wal")?.size).toBe(logical);
});

test("sync: a frame of 256 KiB or more that reaches the end is not followed by zeros; a small one after it is", () => {
  const wal = WalWriter.create(fs, path, 1, "sync");
  wal.appendOne(1, 0, new Uint8Array([1]), new Uint8Array(PREALLOC_FRAME_MAX_BYTES + 1000).fill(1), 0);
  expect(nodeFs.statSync(path).size).toBe(wal.sizeBytes); // past the first zeros, none after
  wal.appendOne(2, 0, new Uint8Array([2]), new Uint8Array(100).fill(2), 0);
  expect(nodeFs.statSync(path).size).toBe(wal.sizeBytes + PREALLOC_BYTES);
  wal.closeSync();
  expect(replayAll(fs, path).ops.map((o) => o.opIndex)).toEqual([1, 2]);
});

test("async-compressed writes no zeros ahead: the file is exactly its frames", async () => {
  const wal = WalWriter.create(fs, path, 1, "async-compressed");
  const ops = appendBatches(wal, new Prng(3), 200);
  await wal.flush();
  expect(nodeFs.statSync(path).size).toBe(wal.sizeBytes);
  await wal.close();
  expect(show(replayAll(fs, path).ops)).toEqual(show(ops));
});

test("after a failed write the file is left as it is: close cuts nothing off", () => {
  // The fourth write fails: op 2's frame (after the header, op 1 and the zeros after it).
  const base = memoryFileSystem();
  base.mkdirp("/db");
  const faulty = faultFileSystem(base, { rules: [{ op: "write", path: "wal", nth: 4 }] });
  const wal = WalWriter.create(faulty, "/db/1.wal", 1, "sync");
  wal.appendOne(1, 0, new Uint8Array([1]), new Uint8Array([1]), 0);
  const logical = wal.sizeBytes;
  expect(() => wal.appendOne(2, 0, new Uint8Array([2]), new Uint8Array([2]), 0)).toThrow(
    expect.objectContaining({ code: "IO" }),
  );
  expect(() => wal.closeSync()).toThrow(expect.objectContaining({ code: "IO" }));
  expect(base.stat("/db/1.wal")?.size).toBe(logical + PREALLOC_BYTES);
  const { ops, result } = replayAll(base, "/db/1.wal");
  expect(ops.map((o) => o.opIndex)).toEqual([1]);
  expect(result.tornTail).toBeUndefined();
});
