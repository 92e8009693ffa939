/**
 * The storage provider interface. All engine I/O goes through it; `local_file_system.ts` is the
 * only module that touches runtime globals (`node:fs`), and `memory_file_system.ts` keeps files
 * in memory and can simulate a crash that keeps only what was synced.
 *
 * Contract (every implementation):
 * - Paths are POSIX-style strings; `dir` + "/" + name joins them.
 * - Positional `read`/`write` never move a shared cursor; `append` writes at the current size.
 * - `sync()` makes the file's bytes durable; `syncDir(dir)` makes creations, renames and removals
 *   of entries in `dir` durable. Until then a crash may undo them.
 * - Errors are thrown as-is from the provider (engine code wraps them in `IOError` with context),
 *   except "not found", which `stat` reports as `undefined`.
 *
 * @module
 */

/** An open file. */
export interface FileHandle {
  /** The path the file was opened with. */
  readonly path: string;
  /** Current size in bytes (including unsynced writes). */
  size(): number;
  /** Reads up to `length` bytes (default: to the end of `buf`) at `position` into `buf`; returns the bytes read. */
  read(buf: Uint8Array, position: number, length?: number): number;
  /** Writes all of `buf` at `position`. */
  write(buf: Uint8Array, position: number): void;
  /** Writes all of `buf` at the end of the file. */
  append(buf: Uint8Array): void;
  /** Makes every write so far durable (fdatasync). Blocks the caller. */
  sync(): void;
  /** Like `sync`, without blocking the event loop where the runtime allows it. */
  syncAsync(): Promise<void>;
  /**
   * Optional: starts a sync of every write so far on another thread and returns at once, or
   * returns undefined where that is not possible (then call `sync`). The ticket can be polled or
   * waited for without an event-loop turn. `close` waits for started syncs.
   */
  startSync?(): SyncTicket | undefined;
  /** Cuts or extends the file to `size` bytes. */
  truncate(size: number): void;
  /** Closes the handle. Idempotent. */
  close(): void;
}

/** A sync started by {@link FileHandle.startSync}. */
export interface SyncTicket {
  /** True once the sync has finished; throws its error if it failed. */
  poll(): boolean;
  /** Blocks until the sync has finished; throws its error if it failed. */
  wait(): void;
}

/** How to open a file. */
export interface OpenFileOptions {
  /** Create the file if it does not exist (default false). */
  create?: boolean;
  /** With `create`: fail if the file exists. */
  exclusive?: boolean;
  /** Cut the file to 0 bytes on open. */
  truncate?: boolean;
  /** Open for reading only (default false). */
  readOnly?: boolean;
}

/** What `stat` reports. */
export interface FileStat {
  /** Size in bytes. */
  size: number;
  /** True for a directory. */
  isDirectory: boolean;
}

/** A held lock; `release` gives it up. */
export interface FileLock {
  /** Releases the lock and removes its file. Idempotent. */
  release(): void;
}

/** A storage provider: local files, memory, or a fault-injecting wrapper. */
export interface FileSystem {
  /** Opens (or creates) a file. */
  openFile(path: string, options?: OpenFileOptions): FileHandle;
  /** Size and kind of `path`, or `undefined` if it does not exist. */
  stat(path: string): FileStat | undefined;
  /** Reads a whole file. */
  readFile(path: string): Uint8Array;
  /** Names (not paths) of the entries of `dir`, sorted. */
  list(dir: string): string[];
  /** Creates `dir` and its parents if missing. */
  mkdirp(dir: string): void;
  /** Renames `from` to `to`, replacing `to` atomically if it exists. */
  rename(from: string, to: string): void;
  /** Removes a file; no error if it is already gone. */
  remove(path: string): void;
  /**
   * Optional: like `remove`, without blocking the event loop (unlinking a large file can take
   * tens of milliseconds). The engine uses it, where present, for files nothing reads any more.
   */
  removeAsync?(path: string): Promise<void>;
  /**
   * Optional: like `openFile`, without blocking the event loop. Creating a file is a directory
   * change: under heavy write I/O (a merge) it took up to 70 ms. Used, where present, for the
   * WAL of a new mutable segment in "async-compressed" mode.
   */
  openFileAsync?(path: string, options?: OpenFileOptions): Promise<FileHandle>;
  /** Optional: like `syncDir`, without blocking the event loop (see `openFileAsync`). */
  syncDirAsync?(dir: string): Promise<void>;
  /** Removes a directory and everything in it; no error if it is gone. */
  removeDir(path: string): void;
  /** Makes entry changes in `dir` durable (fsync of the directory). */
  syncDir(dir: string): void;
  /** Creates `to` with the same content as `from`: a hard link where possible, else a copy. */
  link(from: string, to: string): void;
  /**
   * Takes the exclusive lock file `path` for this process. Throws `DatabaseLockedError` if a live
   * holder has it; a lock left by a process that no longer runs is taken over.
   */
  lock(path: string): FileLock;
}

/** Joins path segments with "/". */
export function joinPath(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : dir + "/" + name;
}
