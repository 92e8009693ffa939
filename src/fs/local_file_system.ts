/**
 * The local-files storage provider, on synchronous `node:fs` calls (Bun and Deno both implement
 * them, so the same code and the same files work in both runtimes). This is the only module of
 * the engine that imports `node:fs` or `node:process`; everything else sees `FileSystem`.
 *
 * Invariants:
 * - A handle tracks the file's size itself (`append` writes at that size), so no call needs a
 *   shared file cursor and positional writes never race with appends of the same handle.
 * - `write` loops until every byte is written: a short `writeSync` never silently drops bytes.
 * - `sync` is `fdatasync`; `syncDir` opens the directory read-only and `fsync`s it.
 * - The lock is an exclusively created file holding `pid token bootId`. A holder that no longer
 *   runs (or ran before the last reboot) is stale and its lock is taken over; a second lock of
 *   the same path inside this process is refused without touching the file.
 *
 * Called by the engine (through `ZoneTree.open`'s `fs` option default) and by tests.
 *
 * @module
 */
import * as nodeFs from "node:fs";
import * as nodeOs from "node:os";
import * as nodePath from "node:path";
import process from "node:process";
import { DatabaseLockedError } from "../api/errors.ts";
import type {
  FileHandle,
  FileLock,
  FileStat,
  FileSystem,
  OpenFileOptions,
  SyncTicket,
} from "./file_system.ts";
import {
  closeOnHelper,
  helperSyncsByPath,
  openOnHelper,
  SYNC_DONE,
  SYNC_FAILED,
  SYNC_PENDING,
  syncOnHelper,
} from "../util/helper_thread.ts";

/** A lock file whose content cannot be parsed is treated as stale once it is this old. */
const GARBLED_LOCK_STALE_MS = 3000;
/** Upper bound on the bytes read from a lock file (it holds one short line). */
const LOCK_FILE_MAX_BYTES = 256;

/**
 * The storage provider over local files (synchronous `node:fs` calls, the same under Bun and
 * Deno). It is the default `fs` of `ZoneTree.open`; pass it explicitly to share one provider.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { defineKeyspace, localFileSystem, ZoneTree } from "@zonetree/zonetree";
 *
 * const root = mkdtempSync(join(tmpdir(), "zonetree-"));
 * const fs = localFileSystem();
 * const ks = defineKeyspace({ key: "<str>", value: "utf8" });
 * const tree = await ZoneTree.open({ dir: join(root, "db"), keyspace: ks, fs });
 * tree.upsert("a", "1");
 * await tree.close();
 * assert.ok(fs.list(join(root, "db")).includes("meta")); // plus WAL files: wal-*.log
 * rmSync(root, { recursive: true });
 * ```
 */
export function localFileSystem(): FileSystem {
  return new LocalFileSystem();
}

/**
 * Whether `fs` is a provider made by `localFileSystem()`: files it writes can be reached by path
 * from another thread (the engine's merge Worker).
 */
export function isLocalFileSystem(fs: FileSystem): boolean {
  return fs instanceof LocalFileSystem;
}

/** Lock paths (absolute) held by this process, shared by every `localFileSystem()` instance. */
const heldLocks = new Set<string>();

function errorCode(e: unknown): string | undefined {
  return typeof e === "object" && e !== null ? (e as { code?: string }).code : undefined;
}

function openFlags(options: OpenFileOptions): number {
  const C = nodeFs.constants;
  if (options.readOnly) return C.O_RDONLY;
  let flags = C.O_RDWR;
  if (options.create) flags |= C.O_CREAT;
  if (options.create && options.exclusive) flags |= C.O_EXCL;
  if (options.truncate) flags |= C.O_TRUNC;
  return flags;
}

/**
 * How long a caller waits for the helper's `fdatasync` before doing it itself. A sync that the
 * helper never answers (it died, or waits behind a stuck job) must not hang the writer: after
 * this the caller syncs on its own thread and carries on. Whatever the helper then does with
 * the descriptor is harmless (a sync of this file, or of whichever file reuses the number once
 * closed); its answer is no longer read.
 */
let helperSyncPatienceMs = 10_000;

/** Tests: shortens {@link helperSyncPatienceMs}. */
export function setHelperSyncPatience(ms: number): void {
  helperSyncPatienceMs = ms;
}

/**
 * How long a caller waiting for the helper's sync checks its cell in a loop before it sleeps on
 * it (`Atomics.wait`). A sleeping caller wakes late after the helper's answer: the woken thread
 * waits to be scheduled. A waiting writer has nothing else to do, and the sync runs in the
 * kernel, so the loop takes no time anyone needs; past this the caller sleeps (a slow disk, a
 * stuck helper). Measured with `bun bench/sync_handoff.ts` (a 116 KB frame's sync handed off,
 * ~0.3 ms of work meanwhile; five runs): 300-490 us a round with the loop, 350-670 us without,
 * 500-830 us with the sync done inline.
 */
const SPIN_MS = 2;

/** A `fdatasync` running on the helper thread: its shared cell, read without an event loop. */
class HelperSync implements SyncTicket {
  /** Set when the caller gave up waiting and synced itself: the cell is no longer read. */
  private abandoned = false;

  constructor(
    private readonly path: string,
    private readonly cell: Int32Array,
    private readonly fd: number,
  ) {}

  finished(): boolean {
    return this.abandoned || Atomics.load(this.cell, 0) !== SYNC_PENDING;
  }

  /** Waits until the helper answers, at most {@link helperSyncPatienceMs}; true if it did. */
  settle(): boolean {
    const cell = this.cell;
    if (this.abandoned || Atomics.load(cell, 0) !== SYNC_PENDING) return true;
    const start = performance.now();
    const spinUntil = start + Math.min(SPIN_MS, helperSyncPatienceMs);
    do {
      for (let i = 0; i < 64; i++) if (Atomics.load(cell, 0) !== SYNC_PENDING) return true;
    } while (performance.now() < spinUntil);
    const deadline = start + helperSyncPatienceMs;
    while (Atomics.load(cell, 0) === SYNC_PENDING) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      Atomics.wait(cell, 0, SYNC_PENDING, left);
    }
    return true;
  }

  poll(): boolean {
    if (this.abandoned) return true;
    const state = Atomics.load(this.cell, 0);
    if (state === SYNC_PENDING) return false;
    if (state === SYNC_FAILED) {
      const errno = Atomics.load(this.cell, 1);
      const code = errnoName(errno);
      throw Object.assign(new Error(`fdatasync of ${this.path} failed (${code})`), { code, errno });
    }
    return true;
  }

  wait(): void {
    if (!this.settle()) {
      // No answer in time: make the writes durable here (an error is this sync's error).
      this.abandoned = true;
      nodeFs.fdatasyncSync(this.fd);
      return;
    }
    this.poll();
  }
}

/** "EIO" for -5 (or 5), as node:fs errors name them; "errno N" if unknown. */
function errnoName(errno: number): string {
  const names = nodeOs.constants.errno as Record<string, number>;
  for (const name in names) if (names[name] === Math.abs(errno)) return name;
  return `errno ${errno}`;
}

class LocalFileHandle implements FileHandle {
  readonly path: string;
  private fd: number;
  private sizeBytes: number;
  private closed = false;
  /** Syncs started on the helper thread that may still run (`close` waits for them). */
  private readonly started: HelperSync[] = [];
  /**
   * Where the helper syncs files it opened by path (Deno): this file there (its id, and a cell
   * that says whether it opened), null when it cannot be, undefined until first asked.
   */
  private remote: { id: number; cell: Int32Array } | null | undefined;
  /**
   * Whether a sync of this handle's own descriptor began after the helper had opened the file.
   * Until then syncs stay here: Linux reports a write-back error to the descriptors open when it
   * happened, so one that happened before the helper opened the file would pass its syncs by;
   * a sync here after that point reports any such error, and the helper's own descriptor sees
   * every later one.
   */
  private remoteCovered = false;

  constructor(path: string, fd: number) {
    this.path = path;
    this.fd = fd;
    this.sizeBytes = nodeFs.fstatSync(fd).size;
  }

  size(): number {
    return this.sizeBytes;
  }

  read(buf: Uint8Array, position: number, length = buf.length): number {
    this.checkOpen();
    let done = 0;
    // readSync may return fewer bytes than asked before EOF; loop until EOF or `length`.
    while (done < length) {
      const n = nodeFs.readSync(this.fd, buf, done, length - done, position + done);
      if (n <= 0) break;
      done += n;
    }
    return done;
  }

  write(buf: Uint8Array, position: number): void {
    this.checkOpen();
    let done = 0;
    while (done < buf.length) {
      done += nodeFs.writeSync(this.fd, buf, done, buf.length - done, position + done);
    }
    if (position + buf.length > this.sizeBytes) this.sizeBytes = position + buf.length;
  }

  append(buf: Uint8Array): void {
    this.write(buf, this.sizeBytes);
  }

  sync(): void {
    this.checkOpen();
    const covers = this.remoteOpened();
    nodeFs.fdatasyncSync(this.fd);
    if (covers) this.remoteCovered = true;
  }

  syncAsync(): Promise<void> {
    this.checkOpen();
    const covers = this.remoteOpened();
    return new Promise((resolve, reject) => {
      nodeFs.fdatasync(this.fd, (e) => {
        if (e) return reject(e);
        if (covers) this.remoteCovered = true;
        resolve();
      });
    });
  }

  /**
   * `fdatasync` on the helper thread, see helper_thread.ts: of this descriptor (Bun: descriptors
   * are the process's), or of the helper's own descriptor of this file (Deno), once it has
   * opened it and a sync here has covered what came before (see {@link remoteCovered}).
   */
  startSync(): SyncTicket | undefined {
    this.checkOpen();
    let cell: Int32Array | undefined;
    if (!helperSyncsByPath()) cell = syncOnHelper(this.fd);
    else {
      const id = this.remoteId();
      if (id !== undefined) cell = syncOnHelper(id, true);
    }
    if (cell === undefined) return undefined;
    const ticket = new HelperSync(this.path, cell, this.fd);
    const started = this.started;
    started.push(ticket);
    if (started.length > 8) {
      let live = 0;
      for (const t of started) if (!t.finished()) started[live++] = t;
      started.length = live;
    }
    return ticket;
  }

  /**
   * The helper's id of this file once it can sync it there (see {@link remote}); asks it to open
   * the file the first time, and says undefined (sync here) until it has.
   */
  private remoteId(): number | undefined {
    const remote = this.remote;
    if (remote === undefined) {
      let st: nodeFs.BigIntStats;
      try {
        st = nodeFs.fstatSync(this.fd, { bigint: true });
      } catch {
        this.remote = null;
        return undefined;
      }
      this.remote = openOnHelper(this.path, st.dev, st.ino) ?? null;
      return undefined;
    }
    if (remote === null) return undefined;
    const state = Atomics.load(remote.cell, 0);
    if (state === SYNC_PENDING) return undefined;
    if (state !== SYNC_DONE) {
      this.remote = null; // could not open it, or another file has the path: sync here
      return undefined;
    }
    return this.remoteCovered ? remote.id : undefined;
  }

  /** Whether the helper has opened this file (see {@link remote}). */
  private remoteOpened(): boolean {
    const remote = this.remote;
    return remote !== undefined && remote !== null && Atomics.load(remote.cell, 0) === SYNC_DONE;
  }

  truncate(size: number): void {
    this.checkOpen();
    nodeFs.ftruncateSync(this.fd, size);
    this.sizeBytes = size;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // A sync still running on the helper must not outlive the descriptor: once closed, its
    // number can name another file. (Its outcome is its ticket's to report; one the helper
    // does not answer in time is harmless by then, see `helperSyncPatienceMs`.)
    for (const t of this.started) t.settle();
    this.started.length = 0;
    if (this.remote) closeOnHelper(this.remote.id);
    nodeFs.closeSync(this.fd);
  }

  private checkOpen(): void {
    if (this.closed) throw new Error(`file handle of ${this.path} is closed`);
  }
}

class LocalFileSystem implements FileSystem {
  openFile(path: string, options: OpenFileOptions = {}): FileHandle {
    const fd = nodeFs.openSync(path, openFlags(options), 0o644);
    try {
      return new LocalFileHandle(path, fd);
    } catch (e) {
      nodeFs.closeSync(fd);
      throw e;
    }
  }

  openFileAsync(path: string, options: OpenFileOptions = {}): Promise<FileHandle> {
    return new Promise((resolve, reject) => {
      nodeFs.open(path, openFlags(options), 0o644, (e, fd) => {
        if (e) return reject(e);
        try {
          resolve(new LocalFileHandle(path, fd));
        } catch (err) {
          nodeFs.close(fd, () => reject(err));
        }
      });
    });
  }

  syncDirAsync(dir: string): Promise<void> {
    return new Promise((resolve, reject) => {
      nodeFs.open(dir, "r", (e, fd) => {
        if (e) return reject(e);
        nodeFs.fsync(fd, (syncError) => {
          nodeFs.close(fd, (closeError) => {
            const err = syncError ?? closeError;
            if (err) reject(err);
            else resolve();
          });
        });
      });
    });
  }

  stat(path: string): FileStat | undefined {
    try {
      const s = nodeFs.statSync(path);
      return { size: s.size, isDirectory: s.isDirectory() };
    } catch (e) {
      if (errorCode(e) === "ENOENT") return undefined;
      throw e;
    }
  }

  readFile(path: string): Uint8Array {
    const b = nodeFs.readFileSync(path);
    // A plain Uint8Array view: callers must not depend on Buffer methods.
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  }

  list(dir: string): string[] {
    return nodeFs.readdirSync(dir).map(String).sort();
  }

  mkdirp(dir: string): void {
    nodeFs.mkdirSync(dir, { recursive: true });
  }

  rename(from: string, to: string): void {
    nodeFs.renameSync(from, to);
  }

  remove(path: string): void {
    try {
      nodeFs.unlinkSync(path);
    } catch (e) {
      if (errorCode(e) !== "ENOENT") throw e;
    }
  }

  removeAsync(path: string): Promise<void> {
    return nodeFs.promises.unlink(path).catch((e: unknown) => {
      if (errorCode(e) !== "ENOENT") throw e;
    });
  }

  removeDir(path: string): void {
    nodeFs.rmSync(path, { recursive: true, force: true });
  }

  syncDir(dir: string): void {
    const fd = nodeFs.openSync(dir, "r");
    try {
      nodeFs.fsyncSync(fd);
    } finally {
      nodeFs.closeSync(fd);
    }
  }

  link(from: string, to: string): void {
    try {
      nodeFs.linkSync(from, to);
      return;
    } catch (e) {
      // An existing target or a missing source is the caller's error, not a reason to copy.
      const code = errorCode(e);
      if (code === "EEXIST" || code === "ENOENT") throw e;
    }
    copyDurably(from, to);
  }

  lock(path: string): FileLock {
    return takeLock(nodePath.resolve(path));
  }
}

/** Copies `from` to a new file `to` and syncs it, so the copy is as durable as a hard link. */
function copyDurably(from: string, to: string): void {
  const C = nodeFs.constants;
  const src = nodeFs.openSync(from, C.O_RDONLY);
  let dst: number | undefined;
  try {
    dst = nodeFs.openSync(to, C.O_RDWR | C.O_CREAT | C.O_EXCL, 0o644);
    const buf = new Uint8Array(1 << 20);
    let pos = 0;
    for (;;) {
      const n = nodeFs.readSync(src, buf, 0, buf.length, pos);
      if (n <= 0) break;
      let done = 0;
      while (done < n) done += nodeFs.writeSync(dst, buf, done, n - done, pos + done);
      pos += n;
    }
    nodeFs.fdatasyncSync(dst);
  } finally {
    nodeFs.closeSync(src);
    if (dst !== undefined) nodeFs.closeSync(dst);
  }
}

// ---------------------------------------------------------------------------------------------
// The lock file.

/** The current boot's id (Linux), so a lock written before a reboot is known to be stale. */
function currentBootId(): string {
  try {
    return nodeFs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    return "-";
  }
}

function randomToken(): string {
  const b = new Uint8Array(8);
  crypto.getRandomValues(b);
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

/** What a lock file says about its holder. */
interface LockHolder {
  pid: number;
  bootId: string;
}

function parseLock(text: string): LockHolder | undefined {
  const m = /^(\d+) ([0-9a-f]+) (\S+)\n?$/.exec(text);
  if (!m) return undefined;
  const pid = Number(m[1]);
  return pid > 0 && Number.isSafeInteger(pid) ? { pid, bootId: m[3] } : undefined;
}

function readLockText(path: string): string | undefined {
  let fd: number;
  try {
    fd = nodeFs.openSync(path, "r");
  } catch (e) {
    if (errorCode(e) === "ENOENT") return undefined;
    throw e;
  }
  try {
    const buf = new Uint8Array(LOCK_FILE_MAX_BYTES);
    const n = nodeFs.readSync(fd, buf, 0, buf.length, 0);
    return new TextDecoder().decode(buf.subarray(0, n));
  } finally {
    nodeFs.closeSync(fd);
  }
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    return errorCode(e) === "EPERM";
  }
}

/** Why the lock at `path` (holding `text`) is stale, or `undefined` if its holder may be live. */
function staleReason(path: string, text: string): string | undefined {
  const holder = parseLock(text);
  if (holder === undefined) {
    // Empty or garbled: maybe a holder is between create and write. Wait until it is old.
    const s = nodeFs.statSync(path);
    return Date.now() - s.mtimeMs > GARBLED_LOCK_STALE_MS ? "unreadable and old" : undefined;
  }
  const bootId = currentBootId();
  if (holder.bootId !== bootId && holder.bootId !== "-" && bootId !== "-") {
    return `written before a reboot by pid ${holder.pid}`;
  }
  // Our own pid, but not in `heldLocks`: a previous process that had the same pid.
  if (holder.pid === process.pid) return `left by an earlier process with pid ${holder.pid}`;
  return processIsAlive(holder.pid) ? undefined : `pid ${holder.pid} no longer runs`;
}

function lockedError(path: string, text: string | undefined): DatabaseLockedError {
  const holder = text === undefined ? undefined : parseLock(text);
  const who = holder ? `process ${holder.pid}` : "another process";
  return new DatabaseLockedError(
    `${nodePath.dirname(path)} is locked by ${who} (lock file ${path})`,
  );
}

/** Creates the lock file exclusively; returns false if it already exists. */
function tryCreateLock(path: string, content: string): boolean {
  let fd: number;
  try {
    fd = nodeFs.openSync(path, "wx", 0o644);
  } catch (e) {
    if (errorCode(e) === "EEXIST") return false;
    throw e;
  }
  try {
    nodeFs.writeSync(fd, content);
  } finally {
    nodeFs.closeSync(fd);
  }
  return true;
}

/**
 * Removes the stale lock that held `staleText`. Renaming first, then checking what was moved,
 * means a lock that a third process created in between is put back rather than deleted.
 */
function removeStaleLock(path: string, staleText: string): boolean {
  const aside = `${path}.stale-${randomToken()}`;
  try {
    nodeFs.renameSync(path, aside);
  } catch (e) {
    if (errorCode(e) === "ENOENT") return true;
    throw e;
  }
  const moved = readLockText(aside);
  if (moved === staleText) {
    nodeFs.unlinkSync(aside);
    return true;
  }
  try {
    nodeFs.linkSync(aside, path);
  } catch {
    // Someone created a new lock meanwhile; theirs stands.
  }
  nodeFs.unlinkSync(aside);
  return false;
}

function takeLock(path: string): FileLock {
  if (heldLocks.has(path)) {
    throw new DatabaseLockedError(
      `${nodePath.dirname(path)} is already open in this process (lock file ${path})`,
    );
  }
  const token = randomToken();
  const content = `${process.pid} ${token} ${currentBootId()}\n`;
  // Two attempts: the second only after removing a stale lock.
  for (let attempt = 0; attempt < 2; attempt++) {
    if (tryCreateLock(path, content)) {
      heldLocks.add(path);
      return new LocalLock(path, content);
    }
    const text = readLockText(path);
    if (text === undefined) continue; // Released between our create and read.
    if (attempt === 1 || staleReason(path, text) === undefined) throw lockedError(path, text);
    if (!removeStaleLock(path, text)) throw lockedError(path, readLockText(path));
  }
  throw lockedError(path, readLockText(path));
}

class LocalLock implements FileLock {
  private released = false;
  constructor(private readonly path: string, private readonly content: string) {}

  release(): void {
    if (this.released) return;
    this.released = true;
    heldLocks.delete(this.path);
    // Remove the file only while it is still ours (a takeover by others must stand).
    if (readLockText(this.path) === this.content) {
      try {
        nodeFs.unlinkSync(this.path);
      } catch (e) {
        if (errorCode(e) !== "ENOENT") throw e;
      }
    }
  }
}
