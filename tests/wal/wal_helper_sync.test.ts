// The async WAL's overflow path with syncs started on another thread (FileHandle.startSync): the
// invariant that at most one write is not yet durable, failures, and the real helper thread on
// local files: syncing the caller's descriptor (Bun), and files it opened by path (Deno's way,
// forced here; tests/deno/wal.deno.ts runs it under Deno).
import { afterEach, expect, test } from "bun:test";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import { IOError } from "../../src/api/errors.ts";
import { type FileHandle, joinPath } from "../../src/fs/file_system.ts";
import { memoryFileSystem } from "../../src/fs/memory_file_system.ts";
import { localFileSystem, setHelperSyncPatience } from "../../src/fs/local_file_system.ts";
import {
  helperStats,
  setHelperThread,
  SYNC_DONE,
  SYNC_FAILED,
  touchForTest,
} from "../../src/util/helper_thread.ts";
import { ASYNC_BUFFER_MAX_BYTES, WalWriter } from "../../src/wal/wal_writer.ts";
import { replayAll, withTickets } from "./helpers.ts";

afterEach(() => setHelperThread({ sync: true, syncByPath: false }));

function appendMiB(wal: WalWriter, mib: number, first = 1): number {
  const value = new Uint8Array(1000).fill(3);
  let i = first;
  for (; i < first + (mib * ASYNC_BUFFER_MAX_BYTES) / 1000; i++) {
    wal.appendOne(i, 0, new Uint8Array([i & 255, (i >> 8) & 255, i >> 16]), value, 0);
  }
  return i - first;
}

test("a writer that never yields writes the next frame only after the previous frame's helper sync", () => {
  const { fs, tickets, writes } = withTickets();
  const wal = WalWriter.create(fs, "/w.wal", 1, "async-compressed");
  const n = appendMiB(wal, 5.5);
  expect(tickets.length).toBeGreaterThanOrEqual(4); // one per overflow frame
  // Every ticket but the last was waited for before the next frame went out (the fake file
  // throws otherwise); the last one is settled by the close.
  expect(tickets.slice(0, -1).every((t) => t.waited)).toBe(true);
  const framesBefore = writes.length;
  wal.closeSync();
  expect(tickets.every((t) => t.done)).toBe(true);
  expect(writes.length).toBe(framesBefore + 1); // the rest of the buffer
  expect(replayAll(fs, "/w.wal").ops.length).toBe(n);
});

test("flush and close after a helper sync leave every record durable and the sync settled", async () => {
  const { fs, tickets } = withTickets();
  const wal = WalWriter.create(fs, "/w.wal", 1, "async-compressed");
  const n = appendMiB(wal, 1.2);
  expect(tickets.length).toBe(1);
  await wal.flush();
  await wal.close();
  expect(tickets[0].done).toBe(true);
  expect(replayAll(fs, "/w.wal").ops.length).toBe(n);
});

test("a failed helper sync poisons the log: the write that finds it throws IOError, so do flush and close", async () => {
  const { fs, tickets } = withTickets(2);
  const wal = WalWriter.create(fs, "/w.wal", 1, "async-compressed");
  let thrown: unknown;
  let acknowledged = 0;
  const value = new Uint8Array(1000);
  try {
    for (let i = 1; i < 10_000; i++) {
      wal.appendOne(i, 0, new Uint8Array([i & 255, i >> 8]), value, 0);
      acknowledged = i;
    }
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(IOError);
  expect((thrown as Error).message).toContain("sync");
  expect(((thrown as Error).cause as Error).message).toContain("EIO");
  expect(tickets.length).toBe(2);
  expect(() => wal.appendOne(99_999, 0, new Uint8Array([1]), value, 0)).toThrow(IOError);
  await expect(wal.flush()).rejects.toBe(thrown as Error);
  await expect(wal.close()).rejects.toBe(thrown as Error);
  // The frame whose sync failed is on disk, and nothing after it: everything acknowledged before
  // the failed frame's records replays, and no later frame was written.
  const replayed = replayAll(fs, "/w.wal").ops.length;
  expect(replayed).toBeLessThanOrEqual(acknowledged);
  expect(replayed).toBeGreaterThan(0);
});

/** A batch of `n` ops with opIndexes from `first`: keys are the opIndex's bytes. */
function batchOf(first: number, n: number): { kind: number; key: Uint8Array; value: Uint8Array; expiresAt: number }[] {
  const out = [];
  for (let i = first; i < first + n; i++) {
    out.push({ kind: 0, key: new Uint8Array([i & 255, (i >> 8) & 255]), value: new Uint8Array(100).fill(i & 255), expiresAt: 0 });
  }
  return out;
}

for (const mode of ["sync", "sync-compressed"] as const) {
  test(`${mode}: an overlapped batch is written with its sync left running until settleSync`, () => {
    const { fs, tickets, writes } = withTickets();
    const wal = WalWriter.create(fs, "/w.wal", 1, mode);
    expect(wal.appendBatchOverlapped(1, batchOf(1, 100))).toBe(true);
    expect(writes.length).toBe(2); // the header and the frame are in the file...
    expect(tickets.length).toBe(1);
    expect(tickets[0].waited).toBe(false); // ...and its sync not yet waited for
    fs.crash({ keepUnsynced: "none" });
    expect(replayAll(fs, "/w.wal").ops.length).toBe(0); // so a crash now would lose it
  });

  test(`${mode}: settleSync, the next append, flush and close each wait for the running sync first`, async () => {
    const { fs, tickets, writes } = withTickets();
    const wal = WalWriter.create(fs, "/w.wal", 1, mode);
    wal.appendBatchOverlapped(1, batchOf(1, 100));
    wal.settleSync();
    expect(tickets[0].done).toBe(true);
    wal.settleSync(); // nothing running: no-op
    // The fake file throws if a frame is written before the previous one is durable.
    wal.appendBatchOverlapped(101, batchOf(101, 100));
    wal.appendOne(201, 0, new Uint8Array([1]), new Uint8Array([2]), 0);
    expect(tickets[1].done).toBe(true);
    wal.appendBatchOverlapped(202, batchOf(202, 100));
    await wal.flush();
    expect(tickets[2].done).toBe(true);
    wal.appendBatchOverlapped(302, batchOf(302, 100));
    await wal.close();
    expect(tickets[3].done).toBe(true);
    expect(writes.length).toBe(6); // the header and five frames
    fs.crash({ keepUnsynced: "none" });
    expect(replayAll(fs, "/w.wal").ops.map((o) => o.opIndex)).toEqual(
      Array.from({ length: 401 }, (_, i) => i + 1),
    );
  });
}

test("a failed overlapped sync: settleSync throws IOError, the log takes no more writes", async () => {
  const { fs, tickets } = withTickets(2);
  const wal = WalWriter.create(fs, "/w.wal", 1, "sync");
  wal.appendBatchOverlapped(1, batchOf(1, 100));
  wal.settleSync();
  wal.appendBatchOverlapped(101, batchOf(101, 100));
  let thrown: unknown;
  try {
    wal.settleSync();
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(IOError);
  expect(((thrown as Error).cause as Error).message).toContain("EIO");
  expect(tickets[1].waited).toBe(true);
  expect(() => wal.appendBatchOverlapped(201, batchOf(201, 100))).toThrow(IOError);
  await expect(wal.flush()).rejects.toBe(thrown as Error);
  await expect(wal.close()).rejects.toBe(thrown as Error);
  fs.crash({ keepUnsynced: "none" });
  expect(replayAll(fs, "/w.wal").ops.length).toBe(100); // the first batch only
});

test("without startSync, or in async mode, appendBatchOverlapped leaves no sync running", () => {
  const plain = memoryFileSystem();
  const wal = WalWriter.create(plain, "/w.wal", 1, "sync");
  expect(wal.appendBatchOverlapped(1, batchOf(1, 100))).toBe(false);
  plain.crash({ keepUnsynced: "none" });
  expect(replayAll(plain, "/w.wal").ops.length).toBe(100); // synced before it returned
  const { fs, tickets } = withTickets();
  const async = WalWriter.create(fs, "/a.wal", 1, "async-compressed");
  expect(async.appendBatchOverlapped(1, batchOf(1, 100))).toBe(false);
  expect(tickets.length).toBe(0);
  async.closeSync();
});

test("on local files under Bun the overflow syncs run on the helper thread; everything replays", async () => {
  const dir = nodeFs.mkdtempSync(joinPath(os.tmpdir(), "zt-helper-sync-"));
  try {
    const fs = localFileSystem();
    const before = helperStats().syncsStarted;
    const wal = WalWriter.create(fs, joinPath(dir, "w.wal"), 1, "async-compressed");
    const n = appendMiB(wal, 4.5);
    expect(helperStats().syncsStarted - before).toBeGreaterThanOrEqual(3);
    await wal.close();
    expect(replayAll(fs, joinPath(dir, "w.wal")).ops.length).toBe(n);

    // Turned off, the same load syncs on this thread and starts none.
    setHelperThread({ sync: false });
    const off = helperStats().syncsStarted;
    const wal2 = WalWriter.create(fs, joinPath(dir, "w2.wal"), 1, "async-compressed");
    const n2 = appendMiB(wal2, 2.5);
    wal2.closeSync();
    expect(helperStats().syncsStarted).toBe(off);
    expect(replayAll(fs, joinPath(dir, "w2.wal")).ops.length).toBe(n2);
  } finally {
    nodeFs.rmSync(dir, { recursive: true, force: true });
  }
});

test("a local handle's helper sync reports a failure with the path and errno name", () => {
  const dir = nodeFs.mkdtempSync(joinPath(os.tmpdir(), "zt-helper-sync-"));
  try {
    const h = localFileSystem().openFile(joinPath(dir, "f"), { create: true });
    h.append(new Uint8Array(10));
    const ok = h.startSync!()!;
    ok.wait();
    expect(ok.poll()).toBe(true);
    // Close the descriptor behind the handle's back: the helper's fdatasync gets EBADF.
    nodeFs.closeSync((h as unknown as { fd: number }).fd);
    const bad = h.startSync!()!;
    let err: Error | undefined;
    try {
      bad.wait();
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).toContain(joinPath(dir, "f"));
    expect((err as { code?: string }).code).toBe("EBADF");
    expect(() => bad.poll()).toThrow("EBADF");
    expect(() => h.close()).toThrow(); // the descriptor is gone (EBADF): after waiting for the sync
  } finally {
    nodeFs.rmSync(dir, { recursive: true, force: true });
  }
});

test("a helper sync that is not answered in time is done by the caller (a busy or dead helper never hangs a writer)", () => {
  const dir = nodeFs.mkdtempSync(joinPath(os.tmpdir(), "zt-helper-sync-"));
  setHelperSyncPatience(20);
  try {
    const h = localFileSystem().openFile(joinPath(dir, "f"), { create: true });
    h.append(new Uint8Array(100));
    // Keep the sync helper busy: it touches a 128 MiB buffer (~0.4 s here) before it gets to the
    // sync.
    expect(touchForTest(new SharedArrayBuffer(128 << 20))).toBe(true);
    const ticket = h.startSync!()!;
    const t0 = performance.now();
    ticket.wait(); // gives up after 20 ms and syncs on this thread
    expect(performance.now() - t0).toBeLessThan(300);
    expect(ticket.poll()).toBe(true);
    h.close(); // does not wait for the helper past its patience either
  } finally {
    setHelperSyncPatience(10_000);
    nodeFs.rmSync(dir, { recursive: true, force: true });
  }
});

/** The handle's helper file (syncs by path): its id and open cell, or null/undefined. */
function remoteOf(h: FileHandle): { id: number; cell: Int32Array } | null | undefined {
  return (h as unknown as { remote: { id: number; cell: Int32Array } | null | undefined }).remote;
}

/** Waits (at most 5 s) until the helper has answered the handle's open. */
function awaitRemoteOpen(h: FileHandle): number {
  const remote = remoteOf(h);
  if (!remote) throw new Error("no open was asked of the helper");
  Atomics.wait(remote.cell, 0, 0, 5000);
  return Atomics.load(remote.cell, 0);
}

/** Descriptors of this process (the helper's included: Bun's are the process's) open on `path`. */
function descriptorsOn(path: string): number {
  const real = nodeFs.realpathSync(path);
  let n = 0;
  for (const fd of nodeFs.readdirSync("/proc/self/fd")) {
    try {
      if (nodeFs.readlinkSync(`/proc/self/fd/${fd}`) === real) n++;
    } catch {
      // closed while listing
    }
  }
  return n;
}

/** Waits (at most 5 s) until no descriptor is open on `path`: the helper closes its own after a close. */
function awaitNoDescriptors(path: string): number {
  const deadline = performance.now() + 5000;
  while (descriptorsOn(path) > 0 && performance.now() < deadline) Bun.sleepSync(5);
  return descriptorsOn(path);
}

/** Runs `fn` in a fresh directory with the helper syncing files it opened by path (Deno's way). */
async function byPath(fn: (dir: string) => Promise<void> | void): Promise<void> {
  setHelperThread({ syncByPath: true });
  const dir = nodeFs.mkdtempSync(joinPath(os.tmpdir(), "zt-helper-sync-"));
  try {
    await fn(dir);
  } finally {
    nodeFs.rmSync(dir, { recursive: true, force: true });
  }
}

test("by path: the helper opens the file, and takes syncs only after one here covered the time before it opened", () =>
  byPath((dir) => {
    const path = joinPath(dir, "f");
    const h = localFileSystem().openFile(path, { create: true });
    h.append(new Uint8Array(100));
    h.sync(); // before the helper opened the file: covers nothing of what comes after
    const before = helperStats().syncsStarted;
    expect(h.startSync!()).toBeUndefined(); // asks the helper to open the file: sync here
    expect(awaitRemoteOpen(h)).toBe(SYNC_DONE);
    expect(descriptorsOn(path)).toBe(2); // ours and the helper's
    // Opened, but a write-back error from before that would not reach the helper's descriptor:
    // still here until a sync of our own descriptor began after the open.
    expect(h.startSync!()).toBeUndefined();
    expect(helperStats().syncsStarted).toBe(before);
    h.sync();
    h.append(new Uint8Array(100));
    const ticket = h.startSync!()!;
    expect(ticket).toBeDefined();
    ticket.wait();
    expect(ticket.poll()).toBe(true);
    expect(helperStats().syncsStarted).toBe(before + 1);
    h.close();
    // The helper closes its descriptor after the close (a message behind the syncs).
    expect(awaitNoDescriptors(path)).toBe(0);
  }));

test("by path: an async sync here that began after the open also covers it", () =>
  byPath(async (dir) => {
    const h = localFileSystem().openFile(joinPath(dir, "f"), { create: true });
    h.append(new Uint8Array(100));
    const early = h.syncAsync(); // began before the helper opened the file: covers nothing
    expect(h.startSync!()).toBeUndefined();
    expect(awaitRemoteOpen(h)).toBe(SYNC_DONE);
    await early;
    expect(h.startSync!()).toBeUndefined();
    await h.syncAsync();
    const ticket = h.startSync!()!;
    expect(ticket).toBeDefined();
    ticket.wait();
    h.close();
  }));

test("by path: a file renamed over the path before the helper opened it is never synced in its stead", () =>
  byPath((dir) => {
    const path = joinPath(dir, "f");
    const h = localFileSystem().openFile(path, { create: true });
    h.append(new Uint8Array(100));
    nodeFs.writeFileSync(joinPath(dir, "other"), "other file");
    nodeFs.renameSync(joinPath(dir, "other"), path); // our handle's file is now unlinked
    const before = helperStats().syncsStarted;
    expect(h.startSync!()).toBeUndefined();
    expect(awaitRemoteOpen(h)).toBe(SYNC_FAILED); // another inode: refused, and closed there
    for (let i = 0; i < 3; i++) {
      h.sync(); // here, on our own descriptor
      expect(h.startSync!()).toBeUndefined();
    }
    expect(remoteOf(h)).toBe(null);
    expect(helperStats().syncsStarted).toBe(before);
    expect(descriptorsOn(path)).toBe(0);
    h.close();
  }));

test("by path: the async WAL's overflow syncs run on the helper; everything replays and no descriptor is left", () =>
  byPath(async (dir) => {
    const fs = localFileSystem();
    const path = joinPath(dir, "w.wal");
    const before = helperStats().syncsStarted;
    const wal = WalWriter.create(fs, path, 1, "async-compressed");
    const n = appendMiB(wal, 6.5);
    // The first overflows sync here (the open, then a sync here after it); the rest on the helper.
    expect(helperStats().syncsStarted - before).toBeGreaterThanOrEqual(2);
    await wal.close();
    expect(replayAll(fs, path).ops.length).toBe(n);
    expect(awaitNoDescriptors(path)).toBe(0);
  }));
