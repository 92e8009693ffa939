// WalWriter + replayWal round trips in every mode, on local files and in memory.
import { afterEach, describe, expect, test } from "bun:test";
import { type FileHandle, type FileSystem, joinPath } from "../../src/fs/file_system.ts";
import { faultFileSystem } from "../../src/fs/fault_file_system.ts";
import { memoryFileSystem } from "../../src/fs/memory_file_system.ts";
import { Prng } from "../../src/util/prng.ts";
import {
  FRAME_HEADER_LZ4_BYTES,
  FRAME_HEADER_RAW_BYTES,
  FRAME_TYPE_LZ4,
  WAL_HEADER_BYTES,
} from "../../src/wal/wal_format.ts";
import { replayWal } from "../../src/wal/wal_reader.ts";
import { ASYNC_BUFFER_HARD_MAX_BYTES, ASYNC_BUFFER_MAX_BYTES, WalWriter } from "../../src/wal/wal_writer.ts";
import { appendRandom, makeProvider, MODES, replayAll, show } from "./helpers.ts";

let cleanup = () => {};
afterEach(() => cleanup());
function setup(kind: "local" | "memory"): { fs: FileSystem; path: string } {
  const p = makeProvider(kind);
  cleanup = p.cleanup;
  return { fs: p.fs, path: joinPath(p.dir, "000007.wal") };
}

/**
 * A provider over `base` whose handles count blocking `sync()` calls (in `counter.syncs`) and
 * answer `syncAsync()` with `syncAsync(h)`: tests hold background syncs in flight with it.
 */
function countingSyncs(
  base: FileSystem,
  syncAsync: (h: FileHandle) => Promise<void>,
): { fs: FileSystem; counter: { syncs: number } } {
  const counter = { syncs: 0 };
  const fs: FileSystem = Object.create(base);
  fs.openFile = (p, o) => {
    const h = base.openFile(p, o);
    const wrapped = Object.create(h);
    wrapped.sync = () => {
      counter.syncs++;
      h.sync();
    };
    wrapped.syncAsync = () => syncAsync(h);
    return wrapped;
  };
  return { fs, counter };
}

/**
 * A provider over `base` whose background syncs stay in flight until `release()` (all of those
 * started so far) or `free()` (those, and no holding any more); blocking syncs are counted.
 */
function heldSyncs(base: FileSystem) {
  const held: (() => void)[] = [];
  let holding = true;
  const { fs, counter } = countingSyncs(base, (h) => {
    if (!holding) return Promise.resolve(h.sync());
    return new Promise<void>((resolve) => held.push(() => {
      h.sync();
      resolve();
    }));
  });
  const release = () => held.splice(0).forEach((r) => r());
  const free = () => {
    holding = false;
    release();
  };
  return { fs, counter, release, free, pending: () => held.length };
}

for (const kind of ["local", "memory"] as const) {
  for (const mode of MODES) {
    describe(`${mode} WAL on ${kind} fs`, () => {
      test("replay returns every appended op in order, then appending continues", async () => {
        const { fs, path } = setup(kind);
        const prng = new Prng(11);
        const wal = WalWriter.create(fs, path, 7, mode);
        const count = mode.startsWith("sync") ? 150 : 3000;
        const first = appendRandom(wal, prng, 1, count);
        await wal.close();
        if (mode === "none") {
          expect(fs.stat(path)).toBeUndefined();
          expect(wal.sizeBytes).toBeGreaterThan(count * 10);
          return;
        }
        expect(fs.stat(path)!.size).toBe(wal.sizeBytes);
        const { ops, result } = replayAll(fs, path);
        expect(show(ops)).toEqual(show(first));
        expect(result).toEqual({ segmentId: 7, validLength: wal.sizeBytes, lastOpIndex: count });

        const again = WalWriter.openForAppend(fs, path, mode, result.validLength);
        const second = appendRandom(again, prng, count + 1, 50);
        again.closeSync();
        const all = replayAll(fs, path);
        expect(show(all.ops)).toEqual(show([...first, ...second]));
        expect(all.result.lastOpIndex).toBe(count + 50);
      });
    });
  }

  test(`async-compressed flush makes appends durable without close (${kind})`, async () => {
    const { fs, path } = setup(kind);
    const wal = WalWriter.create(fs, path, 1, "async-compressed");
    const ops = appendRandom(wal, new Prng(3), 1, 500);
    expect(fs.stat(path)!.size).toBe(WAL_HEADER_BYTES); // buffered: no syscall per append
    await wal.flush();
    expect(show(replayAll(fs, path).ops)).toEqual(show(ops));
    await wal.flush(); // nothing new: resolves at once
    await wal.close();
  });

  test(`async-compressed writes from the append once the buffer passes its bound (${kind})`, () => {
    const { fs, path } = setup(kind);
    const wal = WalWriter.create(fs, path, 1, "async-compressed");
    const value = new Uint8Array(1000).fill(7);
    let i = 0;
    while (fs.stat(path)!.size === WAL_HEADER_BYTES) {
      wal.appendOne(++i, 0, new Uint8Array([i & 255, i >> 8]), value, 0);
      expect(i).toBeLessThan(2 * ASYNC_BUFFER_MAX_BYTES / 1000);
    }
    wal.closeSync();
    expect(replayAll(fs, path).ops.length).toBe(i);
  });
}

test("huge values and batches round-trip in one frame", async () => {
  const { fs, path } = setup("memory");
  const wal = WalWriter.create(fs, path, 1, "async-compressed");
  const big = new Prng(1).bytes(3 << 20);
  wal.appendOne(1, 0, new Uint8Array([1]), big, 0);
  const batch = Array.from({ length: 20_000 }, (_, i) => ({
    kind: 0,
    key: new Uint8Array([i >> 8, i & 255]),
    value: new Uint8Array(100).fill(i & 255),
    expiresAt: 0,
  }));
  wal.appendBatch(2, batch);
  await wal.close();
  const { ops } = replayAll(fs, path);
  expect(ops.length).toBe(20_001);
  expect(ops[0].value).toEqual(big);
  expect(ops[20_000].opIndex).toBe(20_001);
});

test("sync-compressed stores small incompressible ops raw and compressible ones as lz4", () => {
  const { fs, path } = setup("memory");
  const wal = WalWriter.create(fs, path, 1, "sync-compressed");
  wal.appendOne(1, 0, new Uint8Array([1]), new Uint8Array([2, 3]), 0);
  const afterSmall = wal.sizeBytes;
  wal.appendOne(2, 0, new Uint8Array([1]), new Uint8Array(1000), 0);
  expect(wal.sizeBytes - afterSmall).toBeLessThan(100);
  wal.closeSync();
  const { ops } = replayAll(fs, path);
  expect(ops.map((o) => o.value.length)).toEqual([2, 1000]);
});

test("visited keys and values stay valid after replay (no shared buffer)", () => {
  const { fs, path } = setup("local");
  const wal = WalWriter.create(fs, path, 1, "sync");
  for (let i = 1; i <= 200; i++) {
    wal.appendOne(i, 0, new Uint8Array([i & 255]), new Uint8Array(6000).fill(i & 255), 0);
  }
  wal.closeSync();
  const kept: Uint8Array[] = [];
  replayWal(fs, path, (_i, _k, _key, value) => kept.push(value));
  kept.forEach((v, i) => expect(v[5999]).toBe((i + 1) & 255));
});

test("create refuses an existing file; mode none creates nothing", () => {
  const { fs, path } = setup("memory");
  WalWriter.create(fs, path, 1, "sync").closeSync();
  expect(() => WalWriter.create(fs, path, 1, "sync")).toThrow(
    expect.objectContaining({ code: "IO" }),
  );
  const none = WalWriter.create(fs, path + "x", 1, "none");
  none.appendOne(1, 0, new Uint8Array(1), new Uint8Array(1), 0);
  none.closeSync();
  expect(fs.stat(path + "x")).toBeUndefined();
});

test("appends after close throw ClosedError", async () => {
  const { fs, path } = setup("memory");
  const wal = WalWriter.create(fs, path, 1, "async-compressed");
  await wal.close();
  await wal.close();
  expect(() => wal.appendOne(1, 0, new Uint8Array(1), new Uint8Array(1), 0)).toThrow(
    expect.objectContaining({ code: "CLOSED" }),
  );
});

test("bad arguments fail at append time, not as corruption at the next open", () => {
  const { fs, path } = setup("memory");
  const wal = WalWriter.create(fs, path, 1, "sync");
  const k = new Uint8Array(1);
  expect(() => wal.appendOne(-1, 0, k, k, 0)).toThrow(/bad opIndex/);
  expect(() => wal.appendOne(2 ** 53, 0, k, k, 0)).toThrow(/bad opIndex/);
  expect(() => wal.appendOne(1, 3, k, k, 0)).toThrow(/bad op kind/);
  expect(() => wal.appendOne(1, 0, k, k, NaN)).toThrow(/bad expiresAt/);
  wal.appendOne(1, 2, k, k, 0); // kind 2: range deletion
  wal.closeSync();
  expect(replayAll(fs, path).ops.map((o) => o.kind)).toEqual([2]);
});

test("async-compressed: while a background sync is in flight, appends buffer up to the hard bound instead of fsyncing", async () => {
  const { fs: base, path } = setup("memory");
  // Background syncs stay in flight until released; blocking syncs are counted.
  const { fs, counter, free, pending } = heldSyncs(base);
  const wal = WalWriter.create(fs, path, 1, "async-compressed");
  const created = counter.syncs; // the header's sync at create
  const value = new Uint8Array(1000).fill(7);
  let i = 0;
  // Past the soft bound with a synced file: the append writes the buffer without any fsync.
  while (fs.stat(path)!.size === WAL_HEADER_BYTES) wal.appendOne(++i, 0, Uint8Array.of(i & 255, i >> 8), value, 0);
  expect(counter.syncs).toBe(created);
  await new Promise((r) => setTimeout(r, 5)); // the background step starts its sync
  expect(pending()).toBe(1);
  const written = fs.stat(path)!.size;
  // While that sync is in flight, 7 MiB more are only buffered: no write, no blocking sync.
  const soft = i;
  while (i - soft < (7 << 20) / 1000) wal.appendOne(++i, 0, Uint8Array.of(i & 255, i >> 8), value, 0);
  expect(counter.syncs).toBe(created);
  expect(fs.stat(path)!.size).toBe(written);
  // Past the hard bound the append waits for the write in flight (a blocking sync) and writes.
  while (fs.stat(path)!.size === written) {
    wal.appendOne(++i, 0, Uint8Array.of(i & 255, i >> 8), value, 0);
    expect(i - soft).toBeLessThan((ASYNC_BUFFER_HARD_MAX_BYTES + 2 * ASYNC_BUFFER_MAX_BYTES) / 1000);
  }
  expect(counter.syncs).toBe(created + 1);
  free();
  await wal.close();
  expect(replayAll(base, path).ops.length).toBe(i);
});

/** The type of every frame of a WAL file, in order. */
function frameTypes(fs: FileSystem, path: string): number[] {
  const h = fs.openFile(path, { readOnly: true });
  const bytes = new Uint8Array(h.size());
  h.read(bytes, 0);
  h.close();
  const view = new DataView(bytes.buffer);
  const types: number[] = [];
  for (let p = WAL_HEADER_BYTES; p < bytes.length;) {
    const type = bytes[p + 8];
    types.push(type);
    p += view.getUint32(p) + (type === FRAME_TYPE_LZ4 ? FRAME_HEADER_LZ4_BYTES : FRAME_HEADER_RAW_BYTES);
  }
  return types;
}

test("sync-compressed: after a large frame that barely compresses, the next 16 go out raw untried; compressible ones stay lz4", () => {
  const { fs, path } = setup("memory");
  const wal = WalWriter.create(fs, path, 1, "sync-compressed");
  const prng = new Prng(21);
  // 8 KiB records: key bytes compress, the random value does not (well under a fifth saved).
  const key = new Uint8Array(512);
  for (let i = 1; i <= 20; i++) wal.appendOne(i, 0, key, prng.bytes(8000), 0);
  for (let i = 21; i <= 40; i++) wal.appendOne(i, 0, key, new Uint8Array(8000), 0);
  wal.closeSync();
  const types = frameTypes(fs, path);
  expect(types.length).toBe(40);
  // Frame 1 was tried (lz4: a little smaller), 2-17 skipped, 18 tried again, 19-20 skipped ...
  expect(types.slice(0, 20)).toEqual([1, ...Array(16).fill(0), 1, 0, 0]);
  // ... and the zero values: skipped until the 16 frames after frame 18 have passed (frame 35).
  expect(types.slice(20, 34)).toEqual(Array(14).fill(0));
  expect(types.slice(34)).toEqual(Array(6).fill(1));
  expect(replayAll(fs, path).ops.length).toBe(40);
});

describe("createDeferred (async-compressed: the file is created off the event loop)", () => {
  test("appends are buffered until the file exists; flush waits for the file, its entry and the records", async () => {
    const fs = memoryFileSystem();
    fs.mkdirp("/d");
    const path = "/d/000009.wal";
    const wal = WalWriter.createDeferred(fs, path, 9, "async-compressed");
    expect(fs.stat(path)).toBeUndefined(); // not created yet: the caller did not wait for it
    const ops = appendRandom(wal, new Prng(31), 1, 200);
    await wal.flush();
    // A power loss now keeps the file, its directory entry and every flushed record.
    const after = fs.clone();
    after.crash();
    const { ops: replayed, result } = replayAll(after, path);
    expect(show(replayed)).toEqual(show(ops));
    expect(result.segmentId).toBe(9);
    await wal.close();
  });

  test("flush with nothing appended still waits until the file exists", async () => {
    const fs = memoryFileSystem();
    fs.mkdirp("/d");
    const wal = WalWriter.createDeferred(fs, "/d/000001.wal", 1, "async-compressed");
    await wal.flush();
    expect(fs.stat("/d/000001.wal")!.size).toBe(WAL_HEADER_BYTES);
    await wal.close();
  });

  test("a failed create poisons the writer and reports on onError; flush and appends then throw", async () => {
    const fs = memoryFileSystem();
    fs.mkdirp("/d");
    fs.openFile("/d/000002.wal", { create: true }).close(); // exclusive create will fail
    const wal = WalWriter.createDeferred(fs, "/d/000002.wal", 2, "async-compressed");
    const reported = new Promise<unknown>((resolve) => (wal.onError = resolve));
    wal.appendOne(1, 0, Uint8Array.of(1), Uint8Array.of(2), 0); // buffered before the failure
    const err = await reported;
    expect((err as { code?: string }).code).toBe("IO");
    await expect(wal.flush()).rejects.toBe(err);
    expect(() => wal.appendOne(2, 0, Uint8Array.of(1), Uint8Array.of(2), 0)).toThrow(err as Error);
  });

  test("a writer that does not yield (at 1 MiB) or outwaits a slow create (at 8 MiB) creates the file itself; the async create stands down", async () => {
    const value = new Uint8Array(1000).fill(5);
    // (a) The async create has not run at all yet: its exclusive create later fails, unreported.
    const fs = memoryFileSystem();
    fs.mkdirp("/d");
    const wal = WalWriter.createDeferred(fs, "/d/000005.wal", 5, "async-compressed");
    let errors = 0;
    wal.onError = () => errors++;
    let i = 0;
    // No turn of the event loop since the create began: the writer takes over at the soft bound.
    while (fs.stat("/d/000005.wal") === undefined) {
      wal.appendOne(++i, 0, Uint8Array.of(i & 255, i >> 8), value, 0);
      expect(i).toBeLessThan(2 * ASYNC_BUFFER_MAX_BYTES / 1000);
    }
    expect(i).toBeGreaterThan(ASYNC_BUFFER_MAX_BYTES / 1040);
    for (let k = 0; k < 100; k++) wal.appendOne(++i, 0, Uint8Array.of(i & 255, i >> 8), value, 0);
    await wal.close();
    expect(errors).toBe(0);
    expect(replayAll(fs, "/d/000005.wal").ops.map((o) => o.opIndex)).toEqual(Array.from({ length: i }, (_, k) => k + 1));

    // (b) The async create made the file but its continuation has not run: it must not write a
    // second header after the frames the taking-over writer appended.
    const base = memoryFileSystem();
    base.mkdirp("/d");
    let release: (() => void) | undefined;
    const held: FileSystem = Object.create(base);
    held.openFileAsync = (p, o) => {
      const h = base.openFile(p, o);
      return new Promise((resolve) => (release = () => resolve(h)));
    };
    const wal2 = WalWriter.createDeferred(held, "/d/000006.wal", 6, "async-compressed");
    let j = 0;
    await new Promise((r) => setTimeout(r, 2)); // a turn: the create is slow, not starved
    expect(base.stat("/d/000006.wal")!.size).toBe(0);
    while (base.stat("/d/000006.wal")!.size === 0) wal2.appendOne(++j, 0, Uint8Array.of(j & 255), value, 0);
    expect(j).toBeGreaterThan(ASYNC_BUFFER_HARD_MAX_BYTES / 1040); // it buffered up to the hard bound
    const size = base.stat("/d/000006.wal")!.size;
    release!();
    await new Promise((r) => setTimeout(r, 5));
    expect(base.stat("/d/000006.wal")!.size).toBe(size); // no second header after the frames
    await wal2.close();
    const replayed = replayAll(base, "/d/000006.wal");
    expect(replayed.ops.length).toBe(j);
    expect(replayed.result.segmentId).toBe(6);
    expect(replayed.result.validLength).toBe(base.stat("/d/000006.wal")!.size); // no torn tail
  });

  test("other modes and providers without the async calls create the file at once", () => {
    const fs = memoryFileSystem();
    fs.mkdirp("/d");
    WalWriter.createDeferred(fs, "/d/000003.wal", 3, "sync").closeSync();
    expect(fs.stat("/d/000003.wal")).toBeDefined();
    const plain: FileSystem = Object.create(fs, { openFileAsync: { value: undefined } });
    WalWriter.createDeferred(plain, "/d/000004.wal", 4, "async-compressed").closeSync();
    expect(fs.stat("/d/000004.wal")).toBeDefined();
  });
});

test("async-compressed: a writer that does not yield writes at 1 MiB and waits for the sync in flight (it overlaps the next megabyte)", () => {
  const { fs: base, path } = setup("memory");
  // Background syncs are never observed: no turn of the event loop comes.
  const { fs, counter } = countingSyncs(base, () => new Promise<void>(() => {}));
  const wal = WalWriter.create(fs, path, 1, "async-compressed");
  const created = counter.syncs;
  const value = new Uint8Array(1000).fill(3);
  let i = 0;
  const frames = () => fs.stat(path)!.size;
  while (frames() === WAL_HEADER_BYTES) wal.appendOne(++i, 0, Uint8Array.of(i & 255), value, 0);
  const first = frames();
  const atFirst = i;
  while (frames() === first) wal.appendOne(++i, 0, Uint8Array.of(i & 255), value, 0);
  // The second write came one megabyte later, after a blocking sync of the first.
  expect(i - atFirst).toBeLessThan(2 * ASYNC_BUFFER_MAX_BYTES / 1000);
  expect(counter.syncs).toBe(created + 1);
  wal.closeSync();
  expect(replayAll(base, path).ops.length).toBe(i);
});

describe("follow: a log writes nothing before its predecessor's records are durable", () => {
  const value = new Uint8Array(1000).fill(3);

  /** `prev` (file 1) with a write whose sync is in flight, then `buffered` more records. */
  function predecessor(fs: FileSystem, buffered: number): { prev: WalWriter; count: number } {
    const prev = WalWriter.create(fs, "/d/000001.wal", 1, "async-compressed");
    let i = 0;
    while (fs.stat("/d/000001.wal")!.size === WAL_HEADER_BYTES) {
      prev.appendOne(++i, 0, Uint8Array.of(i & 255, i >> 8), value, 0);
    }
    for (let k = 0; k < buffered; k++) prev.appendOne(++i, 0, Uint8Array.of(i & 255, i >> 8), value, 0);
    return { prev, count: i };
  }

  test("an append that must write drains the predecessor first (write and sync, blocking)", async () => {
    const base = memoryFileSystem();
    base.mkdirp("/d");
    const { fs, free } = heldSyncs(base);
    const { prev, count } = predecessor(fs, 300);
    const closing = prev.close(); // in the background: its first write's sync is held
    const next = WalWriter.createDeferred(fs, "/d/000002.wal", 2, "async-compressed");
    next.follow(prev);
    let j = count;
    // No turn of the event loop, and the predecessor's sync never finishes: the new log buffers
    // past its soft bound, and at the hard bound creates its file and writes.
    while ((base.stat("/d/000002.wal")?.size ?? 0) <= WAL_HEADER_BYTES) {
      next.appendOne(++j, 0, Uint8Array.of(j & 255, j >> 8), value, 0);
    }
    expect(j - count).toBeGreaterThan(ASYNC_BUFFER_HARD_MAX_BYTES / 1100);
    // Power loss now: every record of the predecessor survives.
    const cut = base.clone();
    cut.crash();
    expect(replayAll(cut, "/d/000001.wal").ops.length).toBe(count);
    free();
    await closing;
    await next.close();
    expect(replayAll(base, "/d/000001.wal").ops.length).toBe(count);
    expect(replayAll(base, "/d/000002.wal").ops.length).toBe(j - count);
  });

  test("the background step waits for the predecessor's flush before the first frame", async () => {
    const base = memoryFileSystem();
    base.mkdirp("/d");
    const { fs, release, free } = heldSyncs(base);
    const { prev, count } = predecessor(fs, 50);
    const closing = prev.close();
    const next = WalWriter.createDeferred(fs, "/d/000002.wal", 2, "async-compressed");
    next.follow(prev);
    next.appendOne(count + 1, 0, Uint8Array.of(1), value, 0);
    let flushed = false;
    const flushing = next.flush().then(() => (flushed = true));
    await new Promise((r) => setTimeout(r, 1));
    release(); // the sync of the predecessor's first write, and the new log's header sync
    for (let turn = 0; turn < 3; turn++) {
      await new Promise((r) => setTimeout(r, 1));
      // The predecessor wrote its last records and their sync is held: the new log has its
      // header, and no frame.
      expect(base.stat("/d/000002.wal")!.size).toBe(WAL_HEADER_BYTES);
      expect(flushed).toBe(false);
    }
    free();
    await flushing;
    await closing;
    const cut = base.clone();
    cut.crash();
    expect(replayAll(cut, "/d/000001.wal").ops.length).toBe(count);
    expect(replayAll(cut, "/d/000002.wal").ops.length).toBe(1);
    await next.close();
  });

  test("follow writes the predecessor's buffer at once when no write of it is in flight", async () => {
    const fs = memoryFileSystem();
    fs.mkdirp("/d");
    const prev = WalWriter.create(fs, "/d/000001.wal", 1, "async-compressed");
    for (let i = 1; i <= 100; i++) prev.appendOne(i, 0, Uint8Array.of(i), value, 0);
    expect(fs.stat("/d/000001.wal")!.size).toBe(WAL_HEADER_BYTES); // buffered: no turn yet
    const next = WalWriter.create(fs, "/d/000002.wal", 2, "async-compressed");
    next.follow(prev);
    // Written before any turn of the event loop, so a successor that never yields finds only
    // its sync left to wait for.
    expect(replayAll(fs, "/d/000001.wal").ops.length).toBe(100);
    await prev.close();
    await next.close();
  });

  test("with syncs on a helper thread, a follower that does not yield writes at its soft bound", async () => {
    // A provider whose handles start syncs "on another thread" (done at once) like local files
    // under Bun: the predecessor's last buffer is written at the move and its sync started.
    const base = memoryFileSystem();
    base.mkdirp("/d");
    let started = 0;
    const fs: FileSystem = Object.create(base);
    fs.openFile = (p, o) => {
      const h = base.openFile(p, o);
      const wrapped = Object.create(h);
      wrapped.startSync = () => {
        started++;
        h.sync();
        return { poll: () => true, wait: () => {} };
      };
      return wrapped;
    };
    const prev = WalWriter.create(fs, "/d/000001.wal", 1, "async-compressed");
    for (let i = 1; i <= 300; i++) prev.appendOne(i, 0, Uint8Array.of(i & 255, i >> 8), value, 0);
    const next = WalWriter.create(fs, "/d/000002.wal", 2, "async-compressed");
    next.follow(prev); // before the old log's close, as the engine does
    const closing = prev.close();
    expect(started).toBe(1);
    let j = 300;
    while (base.stat("/d/000002.wal")!.size === WAL_HEADER_BYTES) {
      next.appendOne(++j, 0, Uint8Array.of(j & 255, j >> 8), value, 0);
    }
    expect(j - 300).toBeLessThan(2 * ASYNC_BUFFER_MAX_BYTES / 1000);
    const cut = base.clone();
    cut.crash();
    expect(replayAll(cut, "/d/000001.wal").ops.length).toBe(300);
    await closing;
    await next.close();
  });

  test("a failed predecessor poisons its follower: no frame is written after the gap", async () => {
    const fs = faultFileSystem(memoryFileSystem(), { rules: [{ op: "sync", path: "000001", nth: 2, count: Infinity }] });
    fs.mkdirp("/d");
    const prev = WalWriter.create(fs, "/d/000001.wal", 1, "async-compressed"); // sync 1: header
    prev.appendOne(1, 0, Uint8Array.of(1), value, 0);
    const closing = prev.close().catch((e) => e);
    const next = WalWriter.create(fs, "/d/000002.wal", 2, "async-compressed");
    next.follow(prev);
    next.appendOne(2, 0, Uint8Array.of(2), value, 0);
    const err = await next.flush().then(() => undefined, (e) => e);
    expect(err?.code).toBe("IO");
    expect((await closing)?.code).toBe("IO");
    expect(fs.stat("/d/000002.wal")!.size).toBe(WAL_HEADER_BYTES);
    expect(() => next.appendOne(3, 0, Uint8Array.of(3), value, 0)).toThrow();
  });
});
