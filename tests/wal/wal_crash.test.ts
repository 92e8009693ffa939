// Crashes of the in-memory file system at random moments, and injected I/O faults: what the
// WAL acknowledged as durable must survive, survivors must be a prefix, batches all or nothing.
import { expect, test } from "bun:test";
import { faultFileSystem } from "../../src/fs/fault_file_system.ts";
import { memoryFileSystem } from "../../src/fs/memory_file_system.ts";
import { Prng } from "../../src/util/prng.ts";
import type { WalMode } from "../../src/wal/wal_format.ts";
import { WalWriter } from "../../src/wal/wal_writer.ts";
import { appendRandom, firstMismatch, replayAll, type SeenOp, show } from "./helpers.ts";

const PATH = "/db/000001.wal";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function crashCopyAndReplay(fs: ReturnType<typeof memoryFileSystem>, seed: number) {
  const copy = fs.clone();
  copy.crash({ keepUnsynced: "random", seed });
  return replayAll(copy, PATH);
}

for (const mode of ["sync", "sync-compressed"] as WalMode[]) {
  test(`${mode}: every acknowledged op survives a crash at any point`, () => {
    const seed = 1000 + mode.length;
    const prng = new Prng(seed);
    const fs = memoryFileSystem();
    fs.mkdirp("/db");
    const wal = WalWriter.create(fs, PATH, 1, mode);
    const appended: SeenOp[] = [];
    for (let step = 0; step < 40; step++) {
      appended.push(...appendRandom(wal, prng, appended.length + 1, 1 + prng.int(6)));
      const { ops, result } = crashCopyAndReplay(fs, seed + step);
      expect(show(ops), `seed ${seed} step ${step}`).toEqual(show(appended));
      expect(result.tornTail).toBeUndefined();
    }
    wal.closeSync();
  });
}

test("async-compressed: everything before a resolved flush survives; survivors are a prefix", async () => {
  const tornSeen: string[] = [];
  for (let round = 0; round < 4; round++) {
    const seed = 2000 + round;
    const prng = new Prng(seed);
    const fs = memoryFileSystem();
    fs.mkdirp("/db");
    const wal = WalWriter.create(fs, PATH, 1, "async-compressed");
    const appended: SeenOp[] = [];
    let durable = 0;
    for (let step = 0; step < 30; step++) {
      appended.push(...appendRandom(wal, prng, appended.length + 1, 1 + prng.int(200)));
      const r = prng.int(4);
      if (r === 0) {
        const before = appended.length;
        await wal.flush();
        durable = before;
      } else if (r === 1) {
        await sleep(prng.int(4)); // let background writes and syncs run
      }
      const { ops, result } = crashCopyAndReplay(fs, seed * 100 + step);
      const why = `seed ${seed} step ${step}`;
      expect(ops.length, why).toBeGreaterThanOrEqual(durable);
      expect(firstMismatch(ops, appended), why).toBe(-1);
      if (result.tornTail) tornSeen.push(result.tornTail.reason);
    }
    await wal.close();
  }
  // The random crashes must have cut some frames, or this test proves little.
  expect(tornSeen.length).toBeGreaterThan(0);
});

test("a crash in the middle of a batch frame keeps all of the batch or none of it", () => {
  for (let seed = 0; seed < 40; seed++) {
    const prng = new Prng(seed);
    const fs = memoryFileSystem();
    fs.mkdirp("/db");
    // The fifth write (the header, op 1 and the zeros written ahead after it, op 2, then the
    // batch frame) stores a random strict prefix, then fails.
    const faulty = faultFileSystem(fs, { rules: [{ op: "write", nth: 5, short: true }], seed });
    const wal = WalWriter.create(faulty, PATH, 1, seed % 2 ? "sync" : "sync-compressed");
    wal.appendOne(1, 0, new Uint8Array([1]), new Uint8Array([1]), 0);
    wal.appendOne(2, 0, new Uint8Array([2]), new Uint8Array([2]), 0);
    const batch = Array.from({ length: 10 }, (_, i) => ({
      kind: 0,
      key: prng.bytes(8),
      value: new Uint8Array(30).fill(i),
      expiresAt: 0,
    }));
    expect(() => wal.appendBatch(3, batch)).toThrow(expect.objectContaining({ code: "IO" }));
    fs.crash({ keepUnsynced: "random", seed });
    const { ops, result } = replayAll(fs, PATH);
    expect(ops.map((o) => o.opIndex), `seed ${seed}`).toEqual([1, 2]);
    expect(result.lastOpIndex).toBe(2);
  }
});

test("after a failed write every later append and flush throws the same IOError", async () => {
  // The fourth write: op 2's frame (after the header, op 1, and the zeros written ahead).
  const fs = faultFileSystem(memoryFileSystem(), { rules: [{ op: "write", path: "wal", nth: 4 }] });
  fs.mkdirp("/db");
  const wal = WalWriter.create(fs, PATH, 1, "sync");
  wal.appendOne(1, 0, new Uint8Array(1), new Uint8Array(1), 0);
  let first: unknown;
  try {
    wal.appendOne(2, 0, new Uint8Array(1), new Uint8Array(1), 0);
  } catch (e) {
    first = e;
  }
  expect(first).toMatchObject({ code: "IO" });
  expect((first as Error).cause).toMatchObject({ injected: true });
  expect(() => wal.appendOne(3, 0, new Uint8Array(1), new Uint8Array(1), 0)).toThrow(
    first as Error,
  );
  await expect(wal.flush()).rejects.toBe(first);
  expect(() => wal.closeSync()).toThrow(first as Error);
});

test("async-compressed reports a failed background sync on onError and then refuses writes", async () => {
  const fs = faultFileSystem(memoryFileSystem(), { rules: [{ op: "sync", path: "wal", nth: 3 }] });
  fs.mkdirp("/db");
  const wal = WalWriter.create(fs, PATH, 1, "async-compressed");
  const reported: Error[] = [];
  wal.onError = (e) => reported.push(e);
  wal.appendOne(1, 0, new Uint8Array(1), new Uint8Array(1), 0);
  await wal.flush(); // sync 2 (sync 1 was create's)
  wal.appendOne(2, 0, new Uint8Array(1), new Uint8Array(1), 0);
  await sleep(20); // the background sync (3) fails
  expect(reported.length).toBe(1);
  expect(reported[0]).toMatchObject({ code: "IO" });
  await expect(wal.flush()).rejects.toBe(reported[0]);
  expect(() => wal.appendOne(3, 0, new Uint8Array(1), new Uint8Array(1), 0)).toThrow(reported[0]);
  await expect(wal.close()).rejects.toBe(reported[0]);
});

test("a pending flush rejects when the file system crashes under the writer", async () => {
  const fs = memoryFileSystem();
  fs.mkdirp("/db");
  const wal = WalWriter.create(fs, PATH, 1, "async-compressed");
  let reported = 0;
  wal.onError = () => reported++;
  wal.appendOne(1, 0, new Uint8Array(1), new Uint8Array(1), 0);
  fs.crash();
  await expect(wal.flush()).rejects.toMatchObject({ code: "IO" });
  expect(reported).toBeLessThanOrEqual(1);
});
