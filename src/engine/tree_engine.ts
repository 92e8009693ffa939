/**
 * The engine: owns a data directory's segment set and runs the write path, the read path,
 * recovery and segment movement. Works on encoded bytes only; the `ZoneTree` facade in
 * `src/api/zone_tree.ts` turns keys and values into bytes and back.
 *
 * Layers, newest first (a higher layer always wins for the same key):
 *   mutable segment  →  read-only segments (newest … oldest)  →  disk segment  →  bottom segments
 *
 * Invariants:
 * - Every write is logged in the mutable segment's WAL before it is applied in memory, and gets an
 *   opIndex strictly above every opIndex ever returned, also across crashes: numbers are leased in
 *   blocks recorded in the metadata (`opIndexReserved`) before any number of a block is used.
 * - A batch is one WAL record and is applied only after it was logged, so it is all or nothing.
 * - `layers` is replaced, never mutated in place, so cursors made from an old array stay valid.
 * - After an I/O failure on the write path the engine stops accepting writes (`failure`); reads
 *   go on. Nothing acknowledged is lost and nothing half-written is acknowledged.
 *
 * Called by: `src/api/zone_tree.ts` (every public operation), `src/api/transaction.ts`.
 *
 * @module
 */
import {
  ClosedError,
  ComparerMismatchError,
  CorruptionError,
  DatabaseAlreadyExistsError,
  DatabaseNotFoundError,
  InvalidOptionError,
  IOError,
  ReadOnlyError,
  ZoneTreeError,
} from "../api/errors.ts";
import type { EngineOptions } from "../api/options.ts";
import type { TreeEvents } from "../api/events.ts";
import { type FileLock, type FileSystem, joinPath } from "../fs/file_system.ts";
import { localFileSystem } from "../fs/local_file_system.ts";
import {
  type Comparer,
  KIND_DELETE,
  KIND_PUT,
  newSlot,
  type RecordCursor,
  type RecordSlot,
  type SegmentReader,
} from "../iter/record.ts";
import { MergingCursor } from "../iter/merging_cursor.ts";
import { MutableSegment } from "../memory/mutable_segment.ts";
import { WalWriter } from "../wal/wal_writer.ts";
import { replayWal } from "../wal/wal_reader.ts";
import {
  LOCK_FILE,
  META_TMP_FILE,
  parseSegmentFileName,
  parseWalFileName,
  walFileName,
} from "./file_names.ts";
import { FORMAT_VERSION, type Metadata, readMetadata, writeMetadata } from "./metadata.ts";

/** What the engine needs to know of a keyspace. */
export interface EngineKeyspace {
  compare: Comparer;
  identity: string;
  canonical: string;
  spec: unknown;
  keyFixedWidth: number | undefined;
  valueFixedWidth: number | undefined;
  layout: string;
}

/** One write of a batch, already encoded. */
export interface EncodedOp {
  kind: number;
  key: Uint8Array;
  value: Uint8Array;
  expiresAt: number;
}

/** An in-memory segment that is no longer written, with its WAL. */
interface ReadOnlyEntry {
  segment: MutableSegment;
  /** The WAL file holding this segment's records, or undefined (wal "none"). */
  walPath: string | undefined;
}

/** A cursor over a fixed set of layers, with what it pins. */
export interface LayerCursor {
  cursor: RecordCursor;
  /** Opened at this moment (epoch ms); snapshots judge expiry as of it. */
  openedAt: number;
}

/** Size of one opIndex lease: numbers are reserved in metadata this many at a time. */
const OP_INDEX_LEASE = 1 << 20;

/** The engine of one open tree. */
export class TreeEngine {
  readonly fs: FileSystem;
  readonly dir: string;
  readonly options: EngineOptions;
  readonly keyspace: EngineKeyspace;
  readonly events: TreeEvents;
  readonly compare: Comparer;

  #meta: Metadata;
  #lock: FileLock | undefined;
  #mutable!: MutableSegment;
  #mutableWal!: WalWriter;
  #mutableWalPath: string | undefined;
  #readOnly: ReadOnlyEntry[] = [];
  /** Every layer, newest first. Replaced (never mutated) when the segment set changes. */
  #layers: SegmentReader[] = [];
  #nextSegmentId = 1;
  #lastOpIndex = 0;
  #closed = false;
  #failure: Error | undefined;
  /** WAL closes (flush + sync) still running for segments that moved forward. */
  #pendingWalCloses = new Set<Promise<void>>();
  readonly #slot: RecordSlot = newSlot();

  private constructor(
    fs: FileSystem,
    options: EngineOptions,
    keyspace: EngineKeyspace,
    events: TreeEvents,
    meta: Metadata,
  ) {
    this.fs = fs;
    this.dir = options.dir;
    this.options = options;
    this.keyspace = keyspace;
    this.events = events;
    this.compare = keyspace.compare;
    this.#meta = meta;
  }

  /** Opens or creates the tree in `options.dir`, recovering from its WALs. */
  static open(options: EngineOptions, keyspace: EngineKeyspace, events: TreeEvents): TreeEngine {
    const fs = options.fs ?? localFileSystem();
    const dir = options.dir;
    const existing = checkOpenMode(fs, options, keyspace);
    if (!existing) {
      try {
        fs.mkdirp(dir);
      } catch (e) {
        throw new IOError(`cannot create data directory ${dir}: ${(e as Error).message}`, {
          cause: e,
        });
      }
    }
    const lock = fs.lock(joinPath(dir, LOCK_FILE));
    try {
      // Read again under the lock: another process may have created the database meanwhile.
      let meta = readMetadata(fs, dir);
      if (meta) checkIdentity(meta, keyspace, dir);
      else {
        if (options.mode === "open" || options.readOnly) throw notFound(dir);
        meta = newMetadata(keyspace);
        writeMetadata(fs, dir, meta);
      }
      const engine = new TreeEngine(fs, options, keyspace, events, meta);
      engine.#lock = lock;
      engine.#recover();
      return engine;
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Recovery

  #recover(): void {
    const names = this.fs.list(this.dir);
    const readOnly = this.options.readOnly;
    if (!readOnly && names.includes(META_TMP_FILE)) this.fs.remove(joinPath(this.dir, META_TMP_FILE));
    let maxId = this.#meta.nextSegmentId - 1;
    const walIds: number[] = [];
    for (const name of names) {
      const walId = parseWalFileName(name);
      const segId = walId ?? parseSegmentFileName(name);
      if (segId !== undefined && segId > maxId) maxId = segId;
      if (walId === undefined) continue;
      if (walId <= this.#meta.persistedSegmentId) {
        // Persisted in a disk segment already: a crash came between publish and delete.
        if (!readOnly) this.fs.remove(joinPath(this.dir, name));
      } else walIds.push(walId);
    }
    walIds.sort((a, b) => a - b);
    this.#nextSegmentId = maxId + 1;

    let maxOpIndex = 0;
    const replayed: { segment: MutableSegment; path: string; validLength: number }[] = [];
    for (const id of walIds) {
      const path = joinPath(this.dir, walFileName(id));
      const segment = new MutableSegment(id, this.compare);
      const result = replayWal(this.fs, path, (opIndex, kind, key, value, expiresAt) => {
        segment.put(key, value, opIndex, kind, expiresAt);
        if (opIndex > maxOpIndex) maxOpIndex = opIndex;
      });
      if (result.tornTail) {
        this.events.emit(
          "error",
          new CorruptionError(
            path,
            result.tornTail.offset,
            `torn record at the end of the write-ahead log discarded (${result.tornTail.reason}); ` +
              "everything before it was recovered",
          ),
        );
      }
      replayed.push({ segment, path, validLength: result.validLength });
    }

    if (readOnly) {
      this.#lastOpIndex = Math.max(maxOpIndex, this.#meta.lastOpIndex);
      for (const r of replayed) {
        r.segment.freeze();
        this.#readOnly.unshift({ segment: r.segment, walPath: r.path });
      }
      this.#mutable = new MutableSegment(0, this.compare);
      this.#mutable.freeze();
      this.#mutableWal = WalWriter.create(this.fs, "", 0, "none");
      this.#rebuildLayers();
      return;
    }

    this.#lastOpIndex = Math.max(maxOpIndex, this.#meta.opIndexReserved);
    const last = this.options.wal !== "none" ? replayed.pop() : undefined;
    for (const r of replayed) {
      r.segment.freeze();
      this.#readOnly.unshift({ segment: r.segment, walPath: r.path });
    }
    if (last) {
      this.#mutable = last.segment;
      this.#mutableWal = WalWriter.openForAppend(this.fs, last.path, this.options.wal, last.validLength);
      this.#mutableWalPath = last.path;
    } else {
      this.#startMutableSegment();
    }
    this.#attachWalErrors(this.#mutableWal);
    // Reserve the next block of opIndexes; also records nextSegmentId.
    this.#meta.opIndexReserved = this.#lastOpIndex + OP_INDEX_LEASE;
    this.#publishMetadata();
    this.#rebuildLayers();
  }

  #startMutableSegment(): void {
    const id = this.#nextSegmentId++;
    const mode = this.options.wal;
    const path = mode === "none" ? undefined : joinPath(this.dir, walFileName(id));
    this.#mutableWal = WalWriter.create(this.fs, path ?? "", id, mode);
    this.#mutableWalPath = path;
    this.#mutable = new MutableSegment(id, this.compare);
  }

  #attachWalErrors(wal: WalWriter): void {
    wal.onError = (e) => this.#fail(e);
  }

  #rebuildLayers(): void {
    const layers: SegmentReader[] = [this.#mutable];
    for (const r of this.#readOnly) layers.push(r.segment);
    this.#layers = layers;
  }

  #publishMetadata(): void {
    this.#meta.nextSegmentId = this.#nextSegmentId;
    writeMetadata(this.fs, this.dir, this.#meta);
  }

  // ---------------------------------------------------------------------------------------------
  // State checks

  /** Throws `ClosedError` if the tree is closed. */
  checkOpen(): void {
    if (this.#closed) throw new ClosedError(`tree ${this.dir} is closed`);
  }

  /** Throws unless writes are allowed now. */
  checkWritable(): void {
    this.checkOpen();
    if (this.options.readOnly) throw new ReadOnlyError(`tree ${this.dir} was opened read-only`);
    if (this.#failure) {
      throw new ReadOnlyError(
        `tree ${this.dir} stopped accepting writes after an I/O failure: ${this.#failure.message}`,
        { cause: this.#failure },
      );
    }
  }

  #fail(e: unknown): void {
    const error = e instanceof Error ? e : new Error(String(e));
    if (!this.#failure) {
      this.#failure = error;
      this.events.emit("error", error);
    }
  }

  /** The error that stopped writes, if any. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /** True once `close()` has started. */
  get closed(): boolean {
    return this.#closed;
  }

  // ---------------------------------------------------------------------------------------------
  // Write path

  /** Highest opIndex assigned so far. */
  get lastOpIndex(): number {
    return this.#lastOpIndex;
  }

  #takeOpIndexes(count: number): number {
    const first = this.#lastOpIndex + 1;
    const last = this.#lastOpIndex + count;
    if (last > this.#meta.opIndexReserved) {
      this.#meta.opIndexReserved = last + OP_INDEX_LEASE;
      this.#guardIO("reserve opIndexes in the metadata", () => this.#publishMetadata());
    }
    this.#lastOpIndex = last;
    return first;
  }

  #guardIO<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof ZoneTreeError && !(e instanceof IOError)) throw e;
      const error = e instanceof IOError ? e : new IOError(`cannot ${what} in ${this.dir}: ${
        (e as Error).message
      }`, { cause: e });
      this.#fail(error);
      throw error;
    }
  }

  /** Logs and applies one write; returns its opIndex. */
  write(kind: number, key: Uint8Array, value: Uint8Array, expiresAt: number): number {
    this.checkWritable();
    const opIndex = this.#takeOpIndexes(1);
    this.#guardIO("append to the write-ahead log", () =>
      this.#mutableWal.appendOne(opIndex, kind, key, value, expiresAt));
    this.#mutable.put(key, value, opIndex, kind, expiresAt);
    this.#afterWrite();
    return opIndex;
  }

  /** Logs `ops` as one WAL record and applies them in order; returns the last opIndex. */
  writeBatch(ops: readonly EncodedOp[]): number {
    this.checkWritable();
    if (ops.length === 0) return this.#lastOpIndex;
    const first = this.#takeOpIndexes(ops.length);
    this.#guardIO("append to the write-ahead log", () =>
      this.#mutableWal.appendBatch(first, ops as EncodedOp[]));
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i];
      this.#mutable.put(op.key, op.value, first + i, op.kind, op.expiresAt);
    }
    this.#afterWrite();
    return first + ops.length - 1;
  }

  #afterWrite(): void {
    if (this.options.maintenance !== "auto") return;
    const m = this.#mutable;
    if (
      m.recordCount >= this.options.mutableSegmentMaxItemCount ||
      m.byteSize >= this.options.mutableSegmentMaxBytes
    ) this.moveMutableSegmentForward();
  }

  /**
   * Freezes the mutable segment into the read-only queue and starts a new one with its own WAL.
   * Does nothing when the mutable segment is empty.
   */
  moveMutableSegmentForward(): void {
    this.checkWritable();
    const old = this.#mutable;
    if (old.recordCount === 0) return;
    const oldWal = this.#mutableWal;
    const oldPath = this.#mutableWalPath;
    // Create the new WAL first: if that fails, nothing has changed.
    this.#guardIO("create a write-ahead log", () => this.#startMutableSegment());
    this.#attachWalErrors(this.#mutableWal);
    old.freeze();
    this.#readOnly.unshift({ segment: old, walPath: oldPath });
    this.#rebuildLayers();
    const closing = oldWal.close().catch((e) => this.#fail(e));
    this.#pendingWalCloses.add(closing);
    closing.finally(() => this.#pendingWalCloses.delete(closing));
    this.events.emit("segment-moved", {
      segmentId: old.id,
      recordCount: old.recordCount,
      readOnlySegmentsCount: this.#readOnly.length,
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Read path

  /**
   * Finds the newest record of `key` in any layer (deletion markers and expired records
   * included) and copies it into `out`. Returns false if no layer has the key.
   */
  getRecord(key: Uint8Array, out: RecordSlot): boolean {
    const layers = this.#layers;
    for (let i = 0; i < layers.length; i++) {
      if (layers[i].get(key, out)) return true;
    }
    return false;
  }

  /** The live value of `key`, or undefined if absent, deleted or expired. */
  getValue(key: Uint8Array): Uint8Array | undefined {
    const slot = this.#slot;
    if (!this.getRecord(key, slot)) return undefined;
    if (slot.kind !== KIND_PUT) return undefined;
    if (slot.expiresAt !== 0 && slot.expiresAt <= Date.now()) return undefined;
    return slot.value;
  }

  /** The opIndex of the newest record of `key` (any kind), or 0 when no layer has it. */
  versionOf(key: Uint8Array): number {
    const slot = this.#slot;
    return this.getRecord(key, slot) ? slot.opIndex : 0;
  }

  /**
   * A merging cursor over every layer. With `snapshot`, the mutable segment is first moved
   * forward so that the cursor reads only frozen segments: it then sees exactly the records
   * present now, whatever is written later.
   */
  openCursor(reverse: boolean, snapshot: boolean): LayerCursor {
    this.checkOpen();
    if (snapshot && !this.options.readOnly && !this.#failure && this.#mutable.recordCount > 0) {
      this.moveMutableSegmentForward();
    }
    const layers = snapshot ? this.#layers.slice(1) : this.#layers;
    const children: RecordCursor[] = [];
    for (const layer of layers) children.push(layer.cursor(reverse));
    return { cursor: new MergingCursor(children, reverse, this.compare), openedAt: Date.now() };
  }

  // ---------------------------------------------------------------------------------------------
  // Durability and lifecycle

  /** Resolves when every write made before the call is durable. */
  async flush(): Promise<void> {
    this.checkOpen();
    await Promise.all([this.#mutableWal.flush(), ...this.#pendingWalCloses]);
    if (this.#failure) throw this.#failure;
  }

  /** Flushes, syncs, records the exact opIndex, and releases the lock. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await Promise.all([...this.#pendingWalCloses]);
      if (!this.options.readOnly && !this.#failure) {
        if (this.options.wal === "none") await this.#persistUnloggedSegments();
        await this.#mutableWal.close();
        this.#meta.lastOpIndex = this.#lastOpIndex;
        this.#meta.opIndexReserved = this.#lastOpIndex;
        this.#publishMetadata();
      } else {
        this.#mutableWal.closeSync();
      }
    } finally {
      this.#lock?.release();
      this.#lock = undefined;
    }
  }

  /**
   * With `wal: "none"` nothing was logged; a clean close must still keep the data. Until disk
   * segments take this over, every in-memory segment without a WAL file is written to one.
   */
  async #persistUnloggedSegments(): Promise<void> {
    // Oldest first, so that the new WAL ids keep newer segments on top when they are replayed.
    const unlogged = this.#readOnly.filter((r) => !r.walPath).map((r) => r.segment).reverse();
    unlogged.push(this.#mutable);
    for (const segment of unlogged) {
      if (segment.recordCount === 0) continue;
      const id = this.#nextSegmentId++;
      const wal = WalWriter.create(this.fs, joinPath(this.dir, walFileName(id)), id, "async-compressed");
      const c = segment.cursor(false);
      for (let ok = c.seek(undefined); ok; ok = c.next()) {
        wal.appendOne(c.opIndex, c.kind, c.key, c.value, c.expiresAt);
      }
      c.close();
      await wal.close();
    }
  }

  /** Layer statistics for `tree.stats()`. */
  stats(): {
    mutableSegmentRecordCount: number;
    readOnlySegmentsCount: number;
    readOnlySegmentsRecordCount: number;
    walBytes: number;
  } {
    let readOnlyRecords = 0;
    let walBytes = this.#mutableWal.sizeBytes;
    for (const r of this.#readOnly) {
      readOnlyRecords += r.segment.recordCount;
      if (r.walPath) walBytes += this.fs.stat(r.walPath)?.size ?? 0;
    }
    return {
      mutableSegmentRecordCount: this.#mutable.recordCount,
      readOnlySegmentsCount: this.#readOnly.length,
      readOnlySegmentsRecordCount: readOnlyRecords,
      walBytes,
    };
  }
}

// -----------------------------------------------------------------------------------------------
// Open-mode checks (no file is changed before these pass)

function notFound(dir: string): DatabaseNotFoundError {
  return new DatabaseNotFoundError(`no database in ${dir} (no metadata file)`);
}

function checkIdentity(meta: Metadata, keyspace: EngineKeyspace, dir: string): void {
  if (meta.keyspace.identity !== keyspace.identity) {
    throw new ComparerMismatchError(meta.keyspace.identity, keyspace.identity, dir);
  }
}

/** Validates `mode`/`readOnly` against what is on disk. Returns true if the directory exists. */
function checkOpenMode(fs: FileSystem, options: EngineOptions, keyspace: EngineKeyspace): boolean {
  const dir = options.dir;
  let stat;
  try {
    stat = fs.stat(dir);
  } catch (e) {
    throw new IOError(`cannot read data directory ${dir}: ${(e as Error).message}`, { cause: e });
  }
  if (stat && !stat.isDirectory) {
    throw new InvalidOptionError("dir", `option "dir": ${JSON.stringify(dir)} is a file, not a directory`);
  }
  const meta = stat ? readMetadata(fs, dir) : undefined;
  if (!meta && (options.mode === "open" || options.readOnly)) throw notFound(dir);
  if (meta && options.mode === "create") {
    throw new DatabaseAlreadyExistsError(`a database already exists in ${dir}`);
  }
  if (meta) checkIdentity(meta, keyspace, dir);
  return stat !== undefined;
}

function newMetadata(keyspace: EngineKeyspace): Metadata {
  return {
    formatVersion: FORMAT_VERSION,
    keyspace: { identity: keyspace.identity, canonical: keyspace.canonical, spec: keyspace.spec },
    shape: {
      keyFixedWidth: keyspace.keyFixedWidth ?? null,
      valueFixedWidth: keyspace.valueFixedWidth ?? null,
      layout: keyspace.layout,
    },
    opIndexReserved: 0,
    lastOpIndex: 0,
    nextSegmentId: 1,
    persistedSegmentId: 0,
    diskSegment: null,
    bottomSegments: [],
  };
}

export { KIND_DELETE, KIND_PUT };
