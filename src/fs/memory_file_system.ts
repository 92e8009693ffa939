/**
 * An in-memory storage provider that can simulate a crash, in the manner of LevelDB's
 * `fault_injection_test` and Pebble's `vfs.NewCrashableMem`: after `crash()`, every file holds
 * what it held at its last `sync()`, and every directory holds the entries it had at its last
 * `syncDir()`. Used by tests (and by users who want a throwaway tree).
 *
 * Model:
 * - A file is an inode with its current bytes and its durable bytes (a copy taken at `sync`).
 *   Directory entries point at inodes, so hard links share one inode.
 * - A directory has its current entries and its durable entries (copied at `syncDir`). A crash
 *   restores the durable entries; an inode that is reachable again gets its durable bytes back.
 * - Directories made by `mkdirp` are durable at once (a simplification: real file systems need
 *   the parent synced too, but the engine never depends on a fresh directory surviving alone).
 * - Every handle and lock belongs to an epoch; `crash()` starts a new one, so handles opened
 *   before it throw and locks taken before it are stale (their process "died").
 *
 * Invariants: `durLength <= dur.length`; while `appendOnly` holds, the first `durLength` bytes of
 * `data` equal the durable bytes, so `sync` only copies the new tail (a WAL synced after every
 * append costs O(bytes appended), not O(file size) per sync).
 *
 * @module
 */
import { DatabaseLockedError } from "../api/errors.ts";
import { Prng } from "../util/prng.ts";
import type { FileHandle, FileLock, FileStat, FileSystem, OpenFileOptions } from "./file_system.ts";

/** What `crash()` keeps of bytes written since a file's last sync. */
export interface CrashOptions {
  /**
   * "none" (default): nothing unsynced survives. "random": each file keeps a random prefix of the
   * bytes appended since its last sync (overwrites inside synced bytes are always dropped).
   */
  keepUnsynced?: "none" | "random";
  /** Seed for "random". */
  seed?: number;
}

/** An in-memory `FileSystem` that can crash, fork and report its size. */
export interface MemoryFileSystem extends FileSystem {
  /**
   * Simulates a power loss: unsynced file bytes and unsynced directory changes are dropped, open
   * handles become invalid and held locks are abandoned (stale).
   */
  crash(options?: CrashOptions): void;
  /** A deep copy of the current state (not of the durable state), with no handles or locks. */
  clone(): MemoryFileSystem;
  /** Bytes held by all files reachable from the root (current state, hard links counted once). */
  totalBytes(): number;
}

/**
 * A new, empty in-memory file system: pass it as the `fs` option of `ZoneTree.open` for a
 * throwaway tree (tests, examples, caches). `crash()` simulates a power loss: only what was
 * synced survives.
 *
 * @example A tree in memory
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineKeyspace, memoryFileSystem, ZoneTree } from "@zonetree/zonetree";
 *
 * const fs = memoryFileSystem();
 * const ks = defineKeyspace({ key: "<str>", value: "utf8" });
 * const tree = await ZoneTree.open({ dir: "/db", keyspace: ks, fs, wal: "sync" });
 * tree.upsert("a", "synced before the crash");
 * fs.crash(); // power loss: the process "dies" without closing the tree
 * const after = await ZoneTree.open({ dir: "/db", keyspace: ks, fs });
 * assert.equal(after.get("a"), "synced before the crash");
 * await after.close();
 * ```
 *
 * @example The file system itself
 * ```ts
 * import assert from "node:assert/strict";
 * import { memoryFileSystem } from "@zonetree/zonetree";
 *
 * const fs = memoryFileSystem();
 * fs.mkdirp("/db");
 * const f = fs.openFile("/db/a", { create: true });
 * f.append(new Uint8Array([1, 2, 3]));
 * f.sync(); // the bytes are durable...
 * fs.syncDir("/db"); // ...and so is the file's name
 * f.append(new Uint8Array([4]));
 * fs.crash();
 * assert.equal(fs.readFile("/db/a").length, 3);
 * ```
 */
export function memoryFileSystem(): MemoryFileSystem {
  return new MemFs(new DirNode());
}

/** An error shaped like a Node.js system error, so callers can match on `code`. */
function fsError(code: string, syscall: string, path: string): Error {
  const e = new Error(`${code}: ${syscall} '${path}'`) as Error & { code: string; path: string };
  e.code = code;
  e.path = path;
  return e;
}

class FileNode {
  data: Uint8Array = new Uint8Array(0);
  length = 0;
  dur: Uint8Array = new Uint8Array(0);
  durLength = 0;
  /** True while every change since the last sync only appended past `durLength`. */
  appendOnly = true;

  ensureCapacity(n: number): void {
    if (n <= this.data.length) return;
    const next = new Uint8Array(Math.max(n, this.data.length * 2, 64));
    next.set(this.data.subarray(0, this.length));
    this.data = next;
  }

  write(buf: Uint8Array, position: number): void {
    const end = position + buf.length;
    this.ensureCapacity(end);
    // Bytes between the old end and `position` read as zeros (a hole).
    if (position > this.length) this.data.fill(0, this.length, position);
    this.data.set(buf, position);
    if (position < this.durLength && buf.length > 0) this.appendOnly = false;
    if (end > this.length) this.length = end;
  }

  truncate(size: number): void {
    if (size > this.length) {
      this.ensureCapacity(size);
      this.data.fill(0, this.length, size);
    }
    if (size < this.durLength) this.appendOnly = false;
    this.length = size;
  }

  sync(): void {
    if (this.appendOnly && this.length >= this.durLength) {
      if (this.dur.length < this.length) {
        const next = new Uint8Array(Math.max(this.length, this.dur.length * 2));
        next.set(this.dur.subarray(0, this.durLength));
        this.dur = next;
      }
      this.dur.set(this.data.subarray(this.durLength, this.length), this.durLength);
    } else {
      this.dur = this.data.slice(0, this.length);
    }
    this.durLength = this.length;
    this.appendOnly = true;
  }

  /** Drops unsynced bytes, keeping up to `keepExtra` appended bytes past the durable length. */
  crash(keepExtra: number): void {
    let keep = this.durLength;
    if (this.appendOnly && this.length > this.durLength) {
      keep += Math.min(keepExtra, this.length - this.durLength);
      this.data.set(this.dur.subarray(0, this.durLength));
    } else {
      this.data = this.dur.slice(0, Math.max(this.durLength, 64));
    }
    this.length = keep;
    this.truncateDurableTo(keep);
  }

  /** After a crash the kept bytes are what the disk holds, so they are durable too. */
  private truncateDurableTo(keep: number): void {
    this.dur = this.data.slice(0, keep);
    this.durLength = keep;
    this.appendOnly = true;
  }

  cloneNode(): FileNode {
    const f = new FileNode();
    f.data = this.data.slice(0, this.length);
    f.length = this.length;
    f.dur = this.dur.slice(0, this.durLength);
    f.durLength = this.durLength;
    f.appendOnly = this.appendOnly;
    return f;
  }
}

type Node = FileNode | DirNode;

class DirNode {
  entries = new Map<string, Node>();
  durable = new Map<string, Node>();
}

/** Splits a path into its names, resolving "." and "..". Both "a/b" and "/a/b" name root/a/b. */
function splitPath(path: string): string[] {
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return out;
}

class MemFs implements MemoryFileSystem {
  root: DirNode;
  /** Incremented by `crash()`; handles and locks of older epochs are dead. */
  epoch = 0;
  /** Lock paths held in the current epoch. */
  held = new Set<string>();

  constructor(root: DirNode) {
    this.root = root;
  }

  /** The directory holding `path`'s last name, and that name. */
  private parentOf(path: string, syscall: string): { dir: DirNode; name: string } {
    const parts = splitPath(path);
    if (parts.length === 0) throw fsError("EISDIR", syscall, path);
    const name = parts.pop()!;
    return { dir: this.dirAt(parts, syscall, path), name };
  }

  private dirAt(parts: string[], syscall: string, path: string): DirNode {
    let dir = this.root;
    for (const p of parts) {
      const next = dir.entries.get(p);
      if (next === undefined) throw fsError("ENOENT", syscall, path);
      if (!(next instanceof DirNode)) throw fsError("ENOTDIR", syscall, path);
      dir = next;
    }
    return dir;
  }

  private lookup(path: string): Node | undefined {
    let node: Node = this.root;
    for (const p of splitPath(path)) {
      if (!(node instanceof DirNode)) return undefined;
      const next: Node | undefined = node.entries.get(p);
      if (next === undefined) return undefined;
      node = next;
    }
    return node;
  }

  openFile(path: string, options: OpenFileOptions = {}): FileHandle {
    const { dir, name } = this.parentOf(path, "open");
    let node = dir.entries.get(name);
    if (node instanceof DirNode) throw fsError("EISDIR", "open", path);
    if (node !== undefined && options.create && options.exclusive) {
      throw fsError("EEXIST", "open", path);
    }
    if (node === undefined) {
      if (!options.create || options.readOnly) throw fsError("ENOENT", "open", path);
      node = new FileNode();
      dir.entries.set(name, node);
    }
    if (options.truncate && !options.readOnly) node.truncate(0);
    return new MemHandle(this, path, node, options.readOnly === true);
  }

  stat(path: string): FileStat | undefined {
    const node = this.lookup(path);
    if (node === undefined) return undefined;
    return node instanceof DirNode
      ? { size: 0, isDirectory: true }
      : { size: node.length, isDirectory: false };
  }

  readFile(path: string): Uint8Array {
    const node = this.lookup(path);
    if (node === undefined) throw fsError("ENOENT", "open", path);
    if (node instanceof DirNode) throw fsError("EISDIR", "read", path);
    return node.data.slice(0, node.length);
  }

  list(dir: string): string[] {
    const node = this.dirAt(splitPath(dir), "scandir", dir);
    return [...node.entries.keys()].sort();
  }

  mkdirp(dir: string): void {
    let cur = this.root;
    for (const p of splitPath(dir)) {
      let next = cur.entries.get(p);
      if (next === undefined) {
        next = new DirNode();
        cur.entries.set(p, next);
        cur.durable.set(p, next);
      }
      if (!(next instanceof DirNode)) throw fsError("ENOTDIR", "mkdir", dir);
      cur = next;
    }
  }

  rename(from: string, to: string): void {
    const src = this.parentOf(from, "rename");
    const node = src.dir.entries.get(src.name);
    if (node === undefined) throw fsError("ENOENT", "rename", from);
    const dst = this.parentOf(to, "rename");
    const existing = dst.dir.entries.get(dst.name);
    if (existing instanceof DirNode && existing !== node) throw fsError("EISDIR", "rename", to);
    src.dir.entries.delete(src.name);
    dst.dir.entries.set(dst.name, node);
  }

  remove(path: string): void {
    const { dir, name } = this.parentOf(path, "unlink");
    const node = dir.entries.get(name);
    if (node === undefined) return;
    if (node instanceof DirNode) throw fsError("EISDIR", "unlink", path);
    dir.entries.delete(name);
  }

  removeDir(path: string): void {
    const parts = splitPath(path);
    if (parts.length === 0) {
      this.root.entries.clear();
      return;
    }
    const name = parts.pop()!;
    let dir: DirNode;
    try {
      dir = this.dirAt(parts, "rmdir", path);
    } catch {
      return;
    }
    dir.entries.delete(name);
  }

  syncDir(dir: string): void {
    const node = this.dirAt(splitPath(dir), "fsync", dir);
    node.durable = new Map(node.entries);
  }

  /** `openFile`, one turn later (the engine's deferred WAL creation runs here too). */
  openFileAsync(path: string, options?: OpenFileOptions): Promise<FileHandle> {
    return Promise.resolve().then(() => this.openFile(path, options));
  }

  /** `syncDir`, one turn later. */
  syncDirAsync(dir: string): Promise<void> {
    return Promise.resolve().then(() => this.syncDir(dir));
  }

  link(from: string, to: string): void {
    const node = this.lookup(from);
    if (node === undefined) throw fsError("ENOENT", "link", from);
    if (node instanceof DirNode) throw fsError("EPERM", "link", from);
    const dst = this.parentOf(to, "link");
    if (dst.dir.entries.has(dst.name)) throw fsError("EEXIST", "link", to);
    dst.dir.entries.set(dst.name, node);
  }

  lock(path: string): FileLock {
    const key = splitPath(path).join("/");
    if (this.held.has(key)) {
      throw new DatabaseLockedError(`${path} is already held (memory file system)`);
    }
    // A lock file that exists but is not held in this epoch was left by a "crashed process".
    const handle = this.openFile(path, { create: true, truncate: true });
    handle.append(new TextEncoder().encode("memory-lock\n"));
    handle.close();
    this.held.add(key);
    const epoch = this.epoch;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        if (this.epoch !== epoch) return;
        this.held.delete(key);
        this.remove(path);
      },
    };
  }

  crash(options: CrashOptions = {}): void {
    const prng = options.keepUnsynced === "random" ? new Prng(options.seed ?? 0) : undefined;
    this.epoch++;
    this.held.clear();
    const seen = new Set<Node>();
    const visit = (dir: DirNode): void => {
      dir.entries = new Map(dir.durable);
      // Sorted names keep "random" reproducible for a given seed.
      for (const name of [...dir.entries.keys()].sort()) {
        const node = dir.entries.get(name)!;
        if (seen.has(node)) continue;
        seen.add(node);
        if (node instanceof DirNode) visit(node);
        else node.crash(prng ? prng.int(node.length - node.durLength + 1) : 0);
      }
    };
    visit(this.root);
  }

  clone(): MemoryFileSystem {
    const copies = new Map<Node, Node>();
    const copy = (node: Node): Node => {
      let c = copies.get(node);
      if (c !== undefined) return c;
      if (node instanceof FileNode) {
        c = node.cloneNode();
        copies.set(node, c);
        return c;
      }
      const d = new DirNode();
      copies.set(node, d);
      for (const [k, v] of node.entries) d.entries.set(k, copy(v));
      for (const [k, v] of node.durable) d.durable.set(k, copy(v));
      return d;
    };
    return new MemFs(copy(this.root) as DirNode);
  }

  totalBytes(): number {
    const seen = new Set<Node>();
    let total = 0;
    const visit = (dir: DirNode): void => {
      for (const node of dir.entries.values()) {
        if (seen.has(node)) continue;
        seen.add(node);
        if (node instanceof DirNode) visit(node);
        else total += node.length;
      }
    };
    visit(this.root);
    return total;
  }
}

class MemHandle implements FileHandle {
  readonly path: string;
  private closed = false;
  private readonly epoch: number;

  constructor(
    private readonly fs: MemFs,
    path: string,
    private readonly node: FileNode,
    private readonly readOnly: boolean,
  ) {
    this.path = path;
    this.epoch = fs.epoch;
  }

  size(): number {
    this.check("fstat");
    return this.node.length;
  }

  read(buf: Uint8Array, position: number, length = buf.length): number {
    this.check("read");
    const n = Math.max(0, Math.min(length, this.node.length - position));
    buf.set(this.node.data.subarray(position, position + n));
    return n;
  }

  write(buf: Uint8Array, position: number): void {
    this.checkWritable("write");
    this.node.write(buf, position);
  }

  append(buf: Uint8Array): void {
    this.checkWritable("write");
    this.node.write(buf, this.node.length);
  }

  sync(): void {
    this.check("fdatasync");
    this.node.sync();
  }

  /**
   * Takes effect a macrotask later, like a real fdatasync that completes on another thread: a
   * crash before then loses the bytes, which gives crash tests a window where a write is not yet
   * durable. Writes made after the call may become durable too (as on a real disk).
   */
  syncAsync(): Promise<void> {
    try {
      this.check("fdatasync");
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      setTimeout(() => {
        try {
          this.sync();
          resolve();
        } catch (e) {
          reject(e);
        }
      }, 0);
    });
  }

  truncate(size: number): void {
    this.checkWritable("ftruncate");
    this.node.truncate(size);
  }

  close(): void {
    this.closed = true;
  }

  private check(syscall: string): void {
    if (this.closed) throw fsError("EBADF", syscall, this.path);
    if (this.epoch !== this.fs.epoch) {
      throw fsError("EBADF", `${syscall} (handle invalidated by crash)`, this.path);
    }
  }

  private checkWritable(syscall: string): void {
    this.check(syscall);
    if (this.readOnly) throw fsError("EBADF", `${syscall} (read-only handle)`, this.path);
  }
}
