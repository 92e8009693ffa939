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
  KeyEncodingError,
  ReadOnlyError,
  ValueEncodingError,
  ZoneTreeError,
} from "../api/errors.ts";
import type { EngineOptions } from "../api/options.ts";
import type { TreeEvents } from "../api/events.ts";
import { type FileLock, type FileSystem, joinPath } from "../fs/file_system.ts";
import { isLocalFileSystem, localFileSystem } from "../fs/local_file_system.ts";
import {
  type Comparer,
  KIND_DELETE,
  KIND_RANGE_DELETE,
  KIND_PUT,
  newSlot,
  type RecordCursor,
  type RecordSlot,
  type SegmentReader,
} from "../iter/record.ts";
import { MergingCursor } from "../iter/merging_cursor.ts";
import { type RangeTombstone, TombstoneCursor, TombstoneSet } from "../iter/range_tombstones.ts";
import { filterCapacity, MutableSegment, type MutableSegmentTuning } from "../memory/mutable_segment.ts";
import { DEFAULT_INLINE_KEY_BYTES, RELAYOUT_MIN_RECORDS } from "../memory/bplus_tree.ts";
import { CombinedRun } from "../memory/combined_run.ts";
import {
  type RelayoutInput,
  relayoutOnHelper,
  type RelayoutResult,
  relayoutsAvailable,
  type RelayoutTicket,
  takeRelayout,
} from "../util/helper_thread.ts";
import { keyHash } from "../memory/key_filter.ts";
import { AssertionError } from "../util/assert.ts";
import { COPY_OVERHEAD_BYTES, pace } from "../util/gc_pacer.ts";
import { WalWriter } from "../wal/wal_writer.ts";
import type { WalBatch } from "../wal/wal_format.ts";
import { replayWal } from "../wal/wal_reader.ts";
import { changeFeedFilePath, type ChangeFeedView, planRetention } from "./change_feed.ts";
import { BlockCache } from "../disk/block_cache.ts";
import type { DiskSegment, DiskSegmentWriteOptions } from "../disk/disk_segment.ts";
import { type MergeJob, type MergeResult, nextTurn, runMerge } from "../merge/merger.ts";
import { prewarmMergeWorker, runMergeInWorker, workerMergeAvailable } from "../merge/worker_merge.ts";
import { movesToBottom } from "../merge/merge_policy.ts";
import {
  LOCK_FILE,
  META_FILE,
  META_TMP_FILE,
  parseSegmentFileName,
  parseRetainedWalFileName,
  parseWalFileName,
  retainedWalFileName,
  walFileName,
} from "./file_names.ts";
import {
  type DiskSegmentRecord,
  encodeMetadata,
  FORMAT_VERSION,
  type Metadata,
  MetadataSyncError,
  readMetadata,
  type RetainedWal,
  type StoredTombstone,
  writeMetadata,
} from "./metadata.ts";
import { type DiskHandle, DiskSet, filesOf, openRecordedSegment } from "./disk_set.ts";
import type { PreloadedIndex } from "../disk/segment_reader.ts";
import { copyBytes } from "../util/bytes.ts";

/** What the engine needs to know of a keyspace. */
export interface EngineKeyspace {
  compare: Comparer;
  identity: string;
  canonical: string;
  spec: unknown;
  keyFixedWidth: number | undefined;
  valueFixedWidth: number | undefined;
  layout: string;
  /**
   * Bytes of the last key field when the layout has two or more fields and the last is
   * fixed-width (1..16 bytes): every key is then a prefix-free prefix plus that many bytes, and
   * in-memory segments keep one sorted run per prefix (see `memory/run_tree.ts`). Absent or 0:
   * B+trees only (and for any comparer that is not a layout's).
   */
  keySuffixWidth?: number;
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
  /** Every op of the segment is <= this (the tree's lastOpIndex when it froze): for the change feed. */
  lastOpIndex: number;
  /** The close (flush + sync) of its WAL while that runs; never rejects (a failure stops the tree). */
  closing?: Promise<void>;
}

/** A combined run and the read-only segments (newest first, adjacent) it stands in for. */
interface CombinedGroup {
  run: CombinedRun;
  covers: ReadOnlyEntry[];
}

/**
 * A relayout of several read-only segments together (`TreeEngine`'s `#combineStep`), one step
 * per read: each segment's records listed, then the job posted to the helper, then its result
 * taken (the combined run installed), then each segment pointed at the new places.
 */
interface Combining {
  covers: ReadOnlyEntry[];
  /** The segments' records listed so far (`covers[0 .. inputs.length)`), and their bytes. */
  inputs: RelayoutInput[];
  bytes: number[];
  ticket?: RelayoutTicket;
  result?: RelayoutResult;
  /** Segments pointed at the result's places so far. */
  applied: number;
}

/** Largest buffer a combine copies records into (the B+tree arena's chunk size). */
const COMBINE_CHUNK_BYTES = 1 << 20;

/** Key filter capacity of a tree's first mutable segment (32 KiB of filter). */
const FIRST_FILTER_CAPACITY = 16_384;

/** A cursor over a fixed set of layers, with what it pins. */
export interface LayerCursor {
  cursor: RecordCursor;
  /** For a snapshot: opened at this moment (epoch ms), expiry is judged as of it; else 0. */
  openedAt: number;
}

/** Largest encoded key, in bytes (documented in README "Limits"). */
export const KEY_MAX_BYTES = 65_535;
/** Largest encoded value, in bytes (documented in README "Limits"). */
export const VALUE_MAX_BYTES = 64 * 1024 * 1024;

/** Throws unless the encoded key and value fit the limits. */
function checkSizes(key: Uint8Array, value: Uint8Array): void {
  if (key.length > KEY_MAX_BYTES) {
    throw new KeyEncodingError(`key is ${key.length} bytes encoded, above the maximum of ${KEY_MAX_BYTES}`);
  }
  if (value.length > VALUE_MAX_BYTES) {
    throw new ValueEncodingError(`value is ${value.length} bytes encoded, above the maximum of ${VALUE_MAX_BYTES}`);
  }
}

/** Size of one opIndex lease: numbers are reserved in metadata this many at a time. */
const OP_INDEX_LEASE = 1 << 20;

/** What `#diskHandles` returns when there is no disk segment (shared: never written to). */
const NO_DISK_HANDLES: DiskHandle[] = [];

/**
 * In the sync WAL modes, a batch of at least this many ops has its log synced on the helper
 * thread while it is applied here (`WalWriter.appendBatchOverlapped`); smaller batches sync here
 * first: the handoff to the helper and back costs ~90 µs on the 2-core VM we measure on, more
 * than applying a few ops saves. Measured (a sync-mode tree, 100-byte values, alternating runs),
 * overlapped against not: batches of 8 ops 26k against 37k ops/s, 64 about even, 128 276-279k
 * against 246-266k, 256 506-519k against 417-434k, 1,000 708-984k against 692-782k.
 */
const OVERLAP_MIN_OPS = 128;

/** Longest stretch a merge works before it yields to the event loop. */
const MERGE_SLICE_MS = 8;

/** A merging cursor that releases the disk segments it pins when closed. */
class PinnedCursor extends MergingCursor {
  #pinned: DiskHandle[] | undefined;
  readonly #diskSet: DiskSet;
  constructor(
    children: RecordCursor[],
    reverse: boolean,
    compare: Comparer,
    pinned: DiskHandle[],
    diskSet: DiskSet,
  ) {
    super(children, reverse, compare);
    this.#pinned = pinned;
    this.#diskSet = diskSet;
  }
  override close(): void {
    super.close();
    const pinned = this.#pinned;
    this.#pinned = undefined;
    if (pinned !== undefined) for (let i = 0; i < pinned.length; i++) this.#diskSet.release(pinned[i]);
  }
}

/** Range tombstones as metadata stores them (hex). */
function encodeTombstones(list: readonly RangeTombstone[]): StoredTombstone[] {
  const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return list.map((t) => ({ start: hex(t.start), end: hex(t.end), opIndex: t.opIndex }));
}

/** Range tombstones from metadata. */
function decodeTombstones(list: readonly StoredTombstone[] | undefined): RangeTombstone[] {
  if (!list) return [];
  const bytes = (h: string) => {
    const out = new Uint8Array(h.length >>> 1);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(h.substr(i * 2, 2), 16);
    return out;
  };
  return list.map((t) => ({ start: bytes(t.start), end: bytes(t.end), opIndex: t.opIndex }));
}

/** Copies `from` (its first `length` bytes, default all) to `to` and syncs it. */
function copyFile(fs: FileSystem, from: string, target: FileSystem, to: string, length?: number): void {
  const src = fs.openFile(from, { readOnly: true });
  const dst = target.openFile(to, { create: true, exclusive: true });
  try {
    const total = length ?? src.size();
    const buf = new Uint8Array(Math.min(total, 1 << 20));
    for (let pos = 0; pos < total;) {
      const n = src.read(buf, pos, Math.min(buf.length, total - pos));
      if (n <= 0) throw new IOError(`cannot copy ${from}: file ended at ${pos} of ${total} bytes`);
      dst.write(n === buf.length ? buf : buf.subarray(0, n), pos);
      pos += n;
    }
    dst.sync();
  } finally {
    src.close();
    dst.close();
  }
}

/**
 * Writes every record and range tombstone of an in-memory segment into a new WAL file named
 * after the segment. Synchronous, so that several segments are captured at one moment; the
 * caller awaits the returned writer's `close()`.
 */
function dumpSegmentToWal(
  segment: MutableSegment,
  tombstones: readonly RangeTombstone[],
  fs: FileSystem,
  dir: string,
): WalWriter {
  const wal = WalWriter.create(fs, joinPath(dir, walFileName(segment.id)), segment.id, "async-compressed");
  const c = segment.cursor(false, false);
  try {
    for (let ok = c.seek(undefined); ok; ok = c.next()) {
      wal.appendOne(c.opIndex, c.kind, c.key, c.value, c.expiresAt);
    }
    for (const t of tombstones) wal.appendOne(t.opIndex, KIND_RANGE_DELETE, t.start, t.end, 0);
  } catch (e) {
    try {
      wal.closeSync();
    } catch {
      // The write failed already; that is the error to report.
    }
    throw e;
  } finally {
    c.close();
  }
  return wal;
}

/** The engine of one open tree. */
export class TreeEngine {
  /**
   * Merges of read-only segments that involve at least this many records (newer plus the disk
   * segment's) run in a Worker when the tree is on local files; smaller ones run in this thread
   * (starting a Worker costs more than they do). Tests set it to 0 to drive every merge through
   * the Worker.
   */
  static workerMergeMinRecords = 65_536;
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
  /**
   * What range queries read: {@link #layers} with combined runs standing in for the read-only
   * segments they cover (see {@link #combineStep}).
   */
  #scanLayers: (SegmentReader | CombinedRun)[] = [];
  /** Combined runs whose segments are all still in the read-only queue. */
  #combined: CombinedGroup[] = [];
  /** The relayout of several read-only segments under way (see {@link #combineStep}). */
  #combining: Combining | undefined;
  /** Whether a read should call {@link #combineStep}: a segment moved forward, or one runs. */
  #combineCheck = false;
  #layersVersion = 0;
  #nextSegmentId = 1;
  #lastOpIndex = 0;
  #closed = false;
  #failure: Error | undefined;
  /** WAL closes (flush + sync) still running for segments that moved forward. */
  #pendingWalCloses = new Set<Promise<void>>();
  readonly #slot: RecordSlot = newSlot();
  readonly #blockCache: BlockCache;
  readonly #diskSet: DiskSet;
  /** The disk segment slot. */
  #disk: DiskHandle | undefined;
  /** Bottom segments, oldest first. */
  #bottom: DiskHandle[] = [];
  /** The merge running now, if any (merges run one at a time). */
  #merging: Promise<unknown> | undefined;
  #mergeScheduled = false;
  /** The close in progress or done. */
  #closing: Promise<void> | undefined;
  /** Range tombstones of in-memory segments, by segment id. */
  #memTombstones = new Map<number, RangeTombstone[]>();
  /** Records of the last segment moved forward: sizes the next segment's key filter. */
  #lastMovedRecords = 0;
  /** True once a segment left runs for a B+tree (see `MutableSegment.leftRuns`). */
  #runsDeclined = false;
  /** Every live range tombstone (all layers). Replaced, never mutated. */
  #tombstones: TombstoneSet = TombstoneSet.EMPTY;

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
    this.#blockCache = new BlockCache(options.blockCacheMaxBytes);
    this.#diskSet = new DiskSet(fs, options.dir, options.readOnly);
    this.#diskSet.onError = (e) => {
      this.events.emit("error", asIOError("remove a file nothing reads any more (replaced segment or dropped WAL)", e));
    };
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
    let engine: TreeEngine | undefined;
    try {
      // Read again under the lock: another process may have created the database meanwhile.
      let meta = readMetadata(fs, dir);
      if (meta) checkIdentity(meta, keyspace, dir);
      else {
        if (options.mode === "open" || options.readOnly) throw notFound(dir);
        meta = newMetadata(keyspace);
        writeMetadata(fs, dir, meta);
      }
      engine = new TreeEngine(fs, options, keyspace, events, meta);
      engine.#lock = lock;
      engine.#recover();
      return engine;
    } catch (e) {
      if (engine) engine.#abandon();
      lock.release();
      throw asIOError(`open the tree in ${dir}`, e);
    }
  }

  /** After a failed open: closes what recovery opened (best effort, nothing is written). */
  #abandon(): void {
    this.#closeDiskSegments();
    try {
      (this.#mutableWal as WalWriter | undefined)?.closeSync();
    } catch {
      // The open failed already; that is the error to report.
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Recovery

  #recover(): void {
    this.#recoverChangeFeed();
    const names = this.fs.list(this.dir);
    const readOnly = this.options.readOnly;
    if (!readOnly && names.includes(META_TMP_FILE)) this.fs.remove(joinPath(this.dir, META_TMP_FILE));
    this.#openDiskSegments();
    let maxId = this.#meta.nextSegmentId - 1;
    const walIds: number[] = [];
    for (const name of names) {
      const walId = parseWalFileName(name);
      const segId = walId ?? parseSegmentFileName(name);
      if (segId !== undefined && segId > maxId) maxId = segId;
      if (walId === undefined) {
        // A segment file no published segment names: left by a merge that did not publish.
        if (segId !== undefined && !readOnly && !this.#diskSet.isLive(name)) {
          this.fs.remove(joinPath(this.dir, name));
        }
        continue;
      }
      if (walId <= this.#meta.persistedSegmentId) {
        // Persisted in a disk segment already: a crash came between publish and delete.
        if (!readOnly) this.fs.remove(joinPath(this.dir, name));
      } else walIds.push(walId);
    }
    walIds.sort((a, b) => a - b);
    this.#nextSegmentId = maxId + 1;

    // Each replayed segment's lastOpIndex is the highest opIndex seen up to and including its
    // WAL, starting from what merges persisted: a WAL with no op (its writes lost with an
    // unflushed buffer, or none made) must not claim 0, which would sort it below every file the
    // change feed keeps and drop them all when it is merged (see `planRetention`).
    let maxOpIndex = this.#changeFeedOpIndex();
    const replayed: {
      segment: MutableSegment;
      path: string;
      validLength: number;
      lastOpIndex: number;
      torn: boolean;
    }[] = [];
    for (const id of walIds) {
      const path = joinPath(this.dir, walFileName(id));
      const segment = new MutableSegment(id, this.compare, this.#segmentTuning());
      let result;
      try {
        result = replayWal(this.fs, path, (opIndex, kind, key, value, expiresAt) => {
          if (kind === KIND_RANGE_DELETE) this.#addMemTombstone(id, { start: key, end: value, opIndex });
          else segment.put(key, value, opIndex, kind, expiresAt);
          if (opIndex > maxOpIndex) maxOpIndex = opIndex;
        });
      } catch (e) {
        if (!(e instanceof CorruptionError) || !this.options.repair || e.file !== path) throw e;
        // Repair: keep the records before the damaged frame, drop it and everything after.
        result = { validLength: e.offset, tornTail: undefined };
        this.events.emit(
          "error",
          new CorruptionError(path, e.offset, `repaired: the log was cut at the damaged frame (${e.message})`, {
            cause: e,
          }),
        );
        if (!readOnly) this.#truncate(path, e.offset);
      }
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
      replayed.push({
        segment,
        path,
        validLength: result.validLength,
        lastOpIndex: maxOpIndex,
        torn: result.tornTail !== undefined,
      });
    }

    if (readOnly) {
      this.#lastOpIndex = Math.max(maxOpIndex, this.#meta.lastOpIndex, this.#maxDiskOpIndex());
      for (const r of replayed) {
        r.segment.freeze();
        this.#readOnly.unshift({ segment: r.segment, walPath: r.path, lastOpIndex: r.lastOpIndex });
      }
      this.#mutable = new MutableSegment(0, this.compare);
      this.#mutable.freeze();
      this.#mutableWal = WalWriter.create(this.fs, "", 0, "none");
      this.#rebuildLayers();
      return;
    }
    this.#lastOpIndex = Math.max(this.#lastOpIndex, this.#maxDiskOpIndex());

    this.#lastOpIndex = Math.max(maxOpIndex, this.#meta.opIndexReserved);
    // Every WAL replayed: cut the torn tails off, whichever WAL they are in. A WAL that is not the
    // newest is then complete, so the change feed can tell later damage to its tail from a torn
    // write (the newest is cut when it is opened for appending, below).
    for (const r of replayed) {
      if (r.torn) WalWriter.openForAppend(this.fs, r.path, "sync", r.validLength, r.segment.id).closeSync();
    }
    const last = this.options.wal !== "none" ? replayed.pop() : undefined;
    for (const r of replayed) {
      r.segment.freeze();
      this.#readOnly.unshift({ segment: r.segment, walPath: r.path, lastOpIndex: r.lastOpIndex });
    }
    if (last) {
      this.#mutable = last.segment;
      this.#mutableWal = WalWriter.openForAppend(
        this.fs,
        last.path,
        this.options.wal,
        last.validLength,
        last.segment.id,
      );
      this.#mutableWalPath = last.path;
    } else {
      this.#startMutableSegment();
    }
    this.#attachWalErrors(this.#mutableWal);
    // Reserve the next block of opIndexes; also records nextSegmentId.
    this.#meta.opIndexReserved = this.#lastOpIndex + OP_INDEX_LEASE;
    this.#publishMetadata();
    this.#rebuildLayers();
    // Large merges run in a pooled Worker; start it now, not in the middle of the first merge
    // (in Deno a Worker's constructor blocks its caller for tens of milliseconds).
    if (isLocalFileSystem(this.fs) && TreeEngine.workerMergeMinRecords !== Infinity) prewarmMergeWorker();
    if (this.#readOnly.length > 0 && this.options.maintenance === "auto") this.#scheduleMerge();
  }

  /** Cuts `path` to `length` bytes durably. */
  #truncate(path: string, length: number): void {
    const file = this.fs.openFile(path);
    try {
      file.truncate(length);
      file.sync();
    } finally {
      file.close();
    }
  }

  /** Opens the disk segment and bottom segments the metadata names. */
  #openDiskSegments(): void {
    const open = (record: DiskSegmentRecord) =>
      this.#diskSet.adopt(
        openRecordedSegment(this.fs, this.dir, record, this.compare, this.#blockCache),
        record,
      );
    try {
      if (this.#meta.diskSegment) this.#disk = open(this.#meta.diskSegment);
      for (const record of this.#meta.bottomSegments) this.#bottom.push(open(record));
    } catch (e) {
      this.#closeDiskSegments();
      throw e;
    }
  }

  #closeDiskSegments(): void {
    if (this.#disk) this.#diskSet.release(this.#disk);
    for (const h of this.#bottom) this.#diskSet.release(h);
    this.#disk = undefined;
    this.#bottom = [];
  }

  /** The highest opIndex the change feed's metadata knows of: its floor and its kept files. */
  #changeFeedOpIndex(): number {
    let n = this.#meta.changeFeedFloor ?? 0;
    for (const f of this.#meta.changeFeedFiles ?? []) n = Math.max(n, f.lastOpIndex);
    return n;
  }

  #maxDiskOpIndex(): number {
    let max = this.#disk?.segment.maxOpIndex ?? 0;
    for (const h of this.#bottom) max = Math.max(max, h.segment.maxOpIndex);
    return max;
  }

  /**
   * B+tree defaults, but inline key words no wider than a fixed-width key needs (16-byte keys:
   * 20 bytes a slot instead of 28; 1M random 16-byte keys with 100-byte values: 220 bytes a
   * record instead of 232), with a key filter first sized a quarter above the last segment that moved
   * forward (16,384 keys for a tree's first segment), growing up to the most records a segment
   * can hold. A steadily written tree gets right-sized filters that never rebuild; a tree of
   * small segments (a partition, a quiet tree) keeps a small one.
   */
  #segmentTuning(): MutableSegmentTuning {
    const o = this.options;
    // Runs until a segment shows that the keys do not suit them (then B+trees for good).
    const runSuffixWidth = this.#runsDeclined ? 0 : (this.keyspace.keySuffixWidth ?? 0);
    const max = filterCapacity(o.mutableSegmentMaxItemCount, o.mutableSegmentMaxBytes, runSuffixWidth);
    const hint = Math.ceil(this.#lastMovedRecords * 1.25);
    const fixed = this.keyspace.keyFixedWidth ?? 0;
    return {
      keyFilterCapacity: Math.min(max, Math.max(FIRST_FILTER_CAPACITY, hint)),
      keyFilterMaxCapacity: max,
      runSuffixWidth,
      relayout: true,
      inlineKeyBytes: fixed > 0 && fixed < DEFAULT_INLINE_KEY_BYTES ? Math.max(4, (fixed + 3) & ~3) : undefined,
    };
  }

  #startMutableSegment(): void {
    const id = this.#nextSegmentId++;
    const mode = this.options.wal;
    const path = mode === "none" ? undefined : joinPath(this.dir, walFileName(id));
    this.#mutableWal = WalWriter.createDeferred(this.fs, path ?? "", id, mode);
    this.#mutableWalPath = path;
    this.#mutable = new MutableSegment(id, this.compare, this.#segmentTuning());
  }

  #attachWalErrors(wal: WalWriter): void {
    wal.onError = (e) => this.#fail(e);
  }

  #rebuildLayers(): void {
    const layers: SegmentReader[] = [this.#mutable];
    for (const r of this.#readOnly) layers.push(r.segment);
    if (this.#disk) layers.push(this.#disk.segment);
    for (let i = this.#bottom.length - 1; i >= 0; i--) layers.push(this.#bottom[i].segment);
    this.#layers = layers;
    this.#layersVersion++;
    this.#rebuildScanLayers();
    // Tombstones of segments that left the set (merged) are gone with them.
    const all: RangeTombstone[] = [];
    for (const layer of layers) {
      const mem = this.#memTombstones.get(layer.id);
      if (mem) all.push(...mem);
    }
    for (const id of [...this.#memTombstones.keys()]) {
      if (!layers.some((l) => l.id === id)) this.#memTombstones.delete(id);
    }
    all.push(...decodeTombstones(this.#meta.rangeTombstones));
    this.#tombstones = all.length === 0 ? TombstoneSet.EMPTY : new TombstoneSet(all);
  }

  /**
   * {@link #scanLayers} from {@link #layers}: each combined run in place of its segments, while
   * all of them are in the read-only queue (a merge that took some of them drops the run).
   */
  #rebuildScanLayers(): void {
    const readOnly = this.#readOnly;
    this.#combined = this.#combined.filter((g) => g.covers.every((r) => readOnly.includes(r)));
    if (this.#combined.length === 0) {
      this.#scanLayers = this.#layers;
      return;
    }
    const layers: (SegmentReader | CombinedRun)[] = [this.#mutable];
    for (const r of readOnly) {
      const group = this.#combined.find((g) => g.covers.includes(r));
      if (group === undefined) layers.push(r.segment);
      else if (group.covers[0] === r) layers.push(group.run);
    }
    for (let i = 1 + readOnly.length; i < this.#layers.length; i++) layers.push(this.#layers[i]);
    this.#scanLayers = layers;
  }

  /**
   * Run by reads (point reads and range queries) while {@link #combineCheck} is set. When two or
   * more read-only segments that no read has laid out yet sit at the front of the queue (a load
   * that did not read: a million random records leave three), has the helper lay their records
   * out again together in key order (`relayoutOnHelper`) instead of each on its own, and puts
   * the combined run of their newest records in their place in {@link #scanLayers}: a scan then
   * reads one key-ordered layer where it merged one cursor per segment (`bench/scan_layers.ts`).
   * With auto maintenance, a mutable segment large enough to be laid out on its own moves
   * forward to join them (writes stopped for reads). A single segment is laid out on its own
   * (`MutableSegment.read`).
   *
   * One step per read, so that no read pays for all of it: list one segment's records (copies
   * of its leaves' arrays: ~20-30 ms for 280k records on the 2-core VM, mostly faulting in the
   * copies), then post the job, then take the result and install the run, then point one
   * segment at its new places (~5 ms). The reads between pay one atomic load.
   */
  #combineStep(): void {
    const c = this.#combining;
    if (c === undefined) {
      this.#startCombine();
      return;
    }
    const { covers } = c;
    if (c.ticket === undefined) {
      const input = covers[c.inputs.length].segment.relayoutInput();
      if (input === undefined) return this.#endCombine();
      c.inputs.push(input);
      c.bytes.push(input.bytes);
      if (c.inputs.length < covers.length) return;
      c.ticket = relayoutOnHelper(c.inputs, COMBINE_CHUNK_BYTES, true);
      c.inputs = []; // transferred
      if (c.ticket === undefined) this.#endCombine();
      return;
    }
    if (c.result === undefined) {
      const result = takeRelayout(c.ticket);
      if (result === undefined) return;
      if (result === null) return this.#endCombine();
      c.result = result;
      // A merge may have taken some of the segments meanwhile: then the run stands for none.
      if (result.run !== undefined && covers.every((r) => this.#readOnly.includes(r))) {
        this.#combined.push({ run: new CombinedRun(result.run, result.buffers), covers });
        // Not a change of the records: open iterators keep their cursors over the segments.
        this.#rebuildScanLayers();
      }
      return;
    }
    const i = c.applied++;
    const r = covers[i];
    if (this.#readOnly.includes(r)) r.segment.applyLayout(c.result.buffers, c.result.locs[i], c.bytes[i]);
    if (c.applied === covers.length) this.#endCombine();
  }

  /** Picks the segments of a combine (see {@link #combineStep}), or clears the check. */
  #startCombine(): void {
    this.#combineCheck = false;
    let readOnly = this.#readOnly;
    let n = 0;
    let records = 0;
    while (n < readOnly.length && readOnly[n].segment.combinable) records += readOnly[n++].segment.recordCount;
    const m = this.#mutable;
    if (
      n > 0 && m.recordCount >= RELAYOUT_MIN_RECORDS && m.combinableOnceFrozen && relayoutsAvailable() &&
      this.options.maintenance === "auto" && !this.options.readOnly && this.#failure === undefined
    ) {
      try {
        this.moveMutableSegmentForward();
      } catch (e) {
        // The tree stopped accepting writes (see #guardIO); this read goes on.
        if (!(e instanceof IOError)) throw e;
        return;
      }
      // A "segment-moved" listener that read the tree has picked the segments already.
      if (this.#combining !== undefined) return;
      readOnly = this.#readOnly;
      records += readOnly[0].segment.recordCount;
      n++;
    }
    if (n < 2 || records < RELAYOUT_MIN_RECORDS) return;
    const covers = readOnly.slice(0, n);
    // From now on none of them starts a relayout of its own.
    for (const r of covers) r.segment.joinRelayout();
    this.#combining = { covers, inputs: [], bytes: [], applied: 0 };
    this.#combineCheck = true;
  }

  /** Ends the combine under way; reads check again if segments moved forward meanwhile. */
  #endCombine(): void {
    this.#combining = undefined;
    this.#combineCheck = this.#readOnly.length > 0 && this.#readOnly[0].segment.combinable;
  }

  #addMemTombstone(segmentId: number, t: RangeTombstone): void {
    const list = this.#memTombstones.get(segmentId);
    if (list) list.push(t);
    else this.#memTombstones.set(segmentId, [t]);
  }

  /** Disk handles in layer order (disk segment, then bottom segments newest first). */
  #diskHandles(): DiskHandle[] {
    if (this.#disk === undefined && this.#bottom.length === 0) return NO_DISK_HANDLES;
    const out: DiskHandle[] = [];
    if (this.#disk) out.push(this.#disk);
    for (let i = this.#bottom.length - 1; i >= 0; i--) out.push(this.#bottom[i]);
    return out;
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

  /**
   * Changes whenever the set of segments that cursors read changes (the mutable segment moved
   * forward, a merge replaced segments): an open cursor does not see segments added after it.
   */
  get layersVersion(): number {
    return this.#layersVersion;
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
    checkSizes(key, value);
    const opIndex = this.#takeOpIndexes(1);
    try {
      this.#mutableWal.appendOne(opIndex, kind, key, value, expiresAt);
    } catch (e) {
      // No closure on the hot path (about 20% of an upsert's CPU); #guardIO converts and
      // records the failure.
      this.#guardIO("append to the write-ahead log", () => {
        throw e;
      });
    }
    this.#mutable.put(key, value, opIndex, kind, expiresAt);
    this.#afterWrite();
    return opIndex;
  }

  /**
   * Logs the ops of `batch` as one WAL record and applies them in order; returns the last
   * opIndex. The batch is read before this returns (the caller may reuse it then).
   */
  writeBatch(batch: WalBatch): number {
    this.checkWritable();
    const n = batch.count;
    if (n === 0) return this.#lastOpIndex;
    const { kinds, keys, values, expiresAt } = batch;
    for (let i = 0; i < n; i++) checkSizes(keys[i], values[i]);
    const first = this.#takeOpIndexes(n);
    const wal = this.#mutableWal;
    // Sync modes: the log's sync runs on the helper thread while the batch goes into the
    // mutable segment here; the call returns only once both are done (see OVERLAP_MIN_OPS).
    const syncing = this.#guardIO("append to the write-ahead log", () => {
      if (n >= OVERLAP_MIN_OPS) return wal.appendBatchOverlapped(first, batch);
      wal.appendBatch(first, batch);
      return false;
    });
    const m = this.#mutable;
    for (let i = 0; i < n; i++) m.put(keys[i], values[i], first + i, kinds[i], expiresAt[i]);
    if (syncing) this.#guardIO("sync the write-ahead log", () => wal.settleSync());
    this.#afterWrite();
    return first + n - 1;
  }

  /**
   * Deletes every key in [start, end) (empty end: no upper end) with one WAL record and one
   * range tombstone, whatever the number of keys. Returns its opIndex.
   */
  deleteRange(start: Uint8Array, end: Uint8Array): number {
    this.checkWritable();
    const opIndex = this.#takeOpIndexes(1);
    this.#guardIO("append to the write-ahead log", () =>
      this.#mutableWal.appendOne(opIndex, KIND_RANGE_DELETE, start, end, 0));
    this.#addMemTombstone(this.#mutable.id, { start, end, opIndex });
    this.#tombstones = this.#tombstones.with([{ start, end, opIndex }]);
    return opIndex;
  }

  #afterWrite(): void {
    if (this.options.maintenance !== "auto") return;
    const m = this.#mutable;
    if (
      m.recordCount < this.options.mutableSegmentMaxItemCount &&
      m.byteSize < this.options.mutableSegmentMaxBytes
    ) return;
    try {
      this.moveMutableSegmentForward();
    } catch (e) {
      // The write is logged and applied, so it returns its opIndex. The failed move stopped the
      // tree (`#guardIO`: the error went to the "error" event, the next write is refused).
      if (!(e instanceof IOError)) throw e;
    }
  }

  /**
   * Freezes the mutable segment into the read-only queue and starts a new one with its own WAL.
   * Does nothing when the mutable segment is empty.
   */
  moveMutableSegmentForward(): void {
    this.checkWritable();
    const old = this.#mutable;
    if (old.recordCount === 0) return;
    this.#lastMovedRecords = old.recordCount;
    if (old.leftRuns) this.#runsDeclined = true;
    const oldWal = this.#mutableWal;
    const oldPath = this.#mutableWalPath;
    // Create the new WAL first: if that fails, nothing has changed.
    this.#guardIO("create a write-ahead log", () => this.#startMutableSegment());
    this.#attachWalErrors(this.#mutableWal);
    // The old log's last buffer is written and synced by its close below, in the background:
    // the new log writes nothing before that is durable, so a crash keeps a prefix of writes.
    this.#mutableWal.follow(oldWal);
    old.freeze();
    const entry: ReadOnlyEntry = { segment: old, walPath: oldPath, lastOpIndex: this.#lastOpIndex };
    this.#readOnly.unshift(entry);
    this.#rebuildLayers();
    this.#combineCheck = true;
    const closing = oldWal.close().catch((e) => this.#fail(e));
    entry.closing = closing;
    this.#pendingWalCloses.add(closing);
    closing.finally(() => this.#pendingWalCloses.delete(closing));
    this.events.emit("segment-moved", {
      segmentId: old.id,
      recordCount: old.recordCount,
      readOnlySegmentsCount: this.#readOnly.length,
    });
    if (this.options.maintenance === "auto") this.#scheduleMerge();
  }

  // ---------------------------------------------------------------------------------------------
  // Read path

  /**
   * Finds the newest record of `key` in any layer (deletion markers and expired records
   * included) and copies it into `out`. Returns false if no layer has the key.
   */
  getRecord(key: Uint8Array, out: RecordSlot): boolean {
    if (this.#combineCheck) this.#combineStep();
    const layers = this.#layers;
    out.valueIsCopy = false;
    // One hash per read, probed in every layer that keeps a key filter.
    let hash = 0;
    let hashed = false;
    for (let i = 0; i < layers.length; i++) {
      const layer = layers[i];
      const filter = layer.keyFilter;
      if (filter !== undefined) {
        if (!hashed) {
          hash = keyHash(key);
          hashed = true;
        }
        if (!filter.mayContain(hash)) continue;
      }
      if (layer.get(key, out, hashed ? hash : undefined)) return true;
    }
    return false;
  }

  /** The live value of `key`, or undefined if absent, deleted or expired. */
  getValue(key: Uint8Array): Uint8Array | undefined {
    const slot = this.#slot;
    if (!this.getRecord(key, slot)) return undefined;
    // The read made a copy of the value (or a view): the caller's, short-lived as a rule.
    pace(slot.value.length + COPY_OVERHEAD_BYTES);
    if (slot.kind !== KIND_PUT) return undefined;
    if (slot.expiresAt !== 0 && slot.expiresAt <= Date.now()) return undefined;
    if (this.#tombstones.size > 0 && this.#tombstones.coveringOpIndex(key) > slot.opIndex) return undefined;
    return slot.value;
  }

  /** {@link getValue}, as bytes the caller owns (a copy, unless the read made one already). */
  getOwnedValue(key: Uint8Array): Uint8Array | undefined {
    const value = this.getValue(key);
    return value === undefined || this.#slot.valueIsCopy ? value : copyBytes(value);
  }

  /** The opIndex of the newest record of `key` (any kind), or 0 when no layer has it. */
  versionOf(key: Uint8Array): number {
    const slot = this.#slot;
    const own = this.getRecord(key, slot) ? slot.opIndex : 0;
    return this.#tombstones.size > 0 ? Math.max(own, this.#tombstones.coveringOpIndex(key)) : own;
  }

  /**
   * A merging cursor over every layer. With `snapshot`, the mutable segment is first moved
   * forward so that the cursor reads only frozen segments: it then sees exactly the records
   * present now, whatever is written later. With `skipEmpty`, an empty mutable segment is left out: the cursor then sees no write
   * made after it opened (`range()`; a positioned iterator's seeks must see them).
   */
  openCursor(reverse: boolean, snapshot: boolean, fillCache = false, skipEmpty = false): LayerCursor {
    this.checkOpen();
    if (snapshot && !this.options.readOnly && !this.#failure && this.#mutable.recordCount > 0) {
      this.moveMutableSegmentForward();
    }
    if (this.#combineCheck) this.#combineStep();
    // Runs once per range query: no iterator protocol and no objects beyond the cursors (a
    // process's first queries run it unoptimized).
    const layers = this.#scanLayers;
    const children: RecordCursor[] = [];
    // Short, bounded reads (a prefix, a limit) go through the block cache like point reads do;
    // full scans keep their blocks to themselves so they do not evict the working set.
    let diskOptions: { fillCache: boolean } | undefined;
    for (let i = snapshot ? 1 : 0; i < layers.length; i++) {
      const layer = layers[i];
      // Only the mutable segment can be empty; a cursor that need not see later writes skips it.
      if (skipEmpty && layer.recordCount === 0) continue;
      children.push(
        layer instanceof MutableSegment || layer instanceof CombinedRun
          ? layer.cursor(reverse)
          : (layer as DiskSegment).cursor(reverse, diskOptions ??= { fillCache }),
      );
    }
    const pinned = this.#diskHandles();
    for (let i = 0; i < pinned.length; i++) this.#diskSet.acquire(pinned[i]);
    // With one layer (a load's combined run, say) the merge steps that child alone.
    const merged = new PinnedCursor(children, reverse, this.compare, pinned, this.#diskSet);
    const tombstones = this.#tombstones;
    const cursor = tombstones.size === 0 ? merged : new TombstoneCursor(merged, tombstones);
    return { cursor, openedAt: snapshot ? Date.now() : 0 };
  }


  // ---------------------------------------------------------------------------------------------
  // Merges

  /** True while a merge runs. */
  get isMerging(): boolean {
    return this.#merging !== undefined;
  }

  #scheduleMerge(): void {
    if (this.#mergeScheduled || this.#closed) return;
    this.#mergeScheduled = true;
    setTimeout(() => {
      this.#mergeScheduled = false;
      if (this.#closed || this.#failure || this.#readOnly.length === 0) return;
      this.merge().catch((e) => this.events.emit("error", e));
    }, 0);
  }

  /** Runs `fn` when no other merge runs; merges are serialized. */
  async #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (this.#merging) await this.#merging.catch(() => {});
    const p = fn();
    this.#merging = p;
    try {
      return await p;
    } finally {
      this.#merging = undefined;
    }
  }

  /** The parts of a merge job that come from the options (shared by every kind of merge). */
  #mergeSettings(): Pick<
    MergeJob,
    "now" | "mode" | "write" | "partMinItemCount" | "partMaxItemCount" | "allocateId" | "sliceMs"
  > {
    return {
      now: Date.now(),
      mode: this.options.diskSegmentMode,
      write: this.#writeOptions(),
      partMinItemCount: this.options.multipartMinItemCount,
      partMaxItemCount: this.options.multipartMaxItemCount,
      allocateId: () => this.#nextSegmentId++,
      sliceMs: MERGE_SLICE_MS,
    };
  }

  #writeOptions(): DiskSegmentWriteOptions {
    return {
      compare: this.compare,
      keyFixedWidth: this.keyspace.keyFixedWidth,
      valueFixedWidth: this.keyspace.valueFixedWidth,
      compression: this.options.compression,
      sparseStep: this.options.sparseStep,
      blockSizeBytes: this.options.blockSizeBytes,
    };
  }

  /**
   * Merges every read-only segment (as of the call) and the disk segment into a new disk
   * segment, publishes it by an atomic metadata replace, then drops the merged WALs and the
   * replaced files (once no cursor reads them). Writes go on meanwhile.
   */
  merge(): Promise<"ok" | "nothing-to-merge"> {
    this.checkWritable();
    return this.#exclusive(async () => {
      this.checkWritable();
      if (this.#readOnly.length === 0) return "nothing-to-merge";
      await this.#mergeReadOnly();
      return "ok";
    });
  }

  async #mergeReadOnly(): Promise<void> {
    // Every merged segment's WAL must be complete (closed) before the merge publishes: the
    // change feed reads it afterwards. Only the segments taken now are waited for; segments that
    // move forward meanwhile wait for the next merge. (Waiting until no close was pending let a
    // writer that moves segments forward faster than their closes complete hold every merge off
    // until it paused: 9 segments piled up in a 2M-record load that yielded every 100 ms.)
    const merged = this.#readOnly.slice(); // newest first
    await Promise.all(merged.map((r) => r.closing));
    const base = this.#disk;
    const nothingBelow = this.#bottom.length === 0;
    const newTombstones: RangeTombstone[] = [];
    for (const r of merged) newTombstones.push(...(this.#memTombstones.get(r.segment.id) ?? []));
    const persisted = decodeTombstones(this.#meta.rangeTombstones);
    // Only durable tombstones may drop records: the persisted ones and the merged segments' own
    // (their WALs are closed). A newer one, e.g. in the mutable segment and not flushed yet with
    // an async WAL, can be lost by a crash after this merge made its effect durable.
    const durable = [...persisted, ...newTombstones];
    const applied = durable.length === 0 ? TombstoneSet.EMPTY : new TombstoneSet(durable);
    const keptTombstones = nothingBelow ? [] : [...persisted, ...newTombstones];
    if (base) this.#diskSet.acquire(base);
    const started = performance.now();
    this.events.emit("merge-started", { readOnlySegments: merged.length });
    const newer = new MergingCursor(merged.map((r) => r.segment.cursor(false, false)), false, this.compare);
    try {
      const settings = this.#mergeSettings();
      let result: MergeResult | undefined | "unavailable" = "unavailable";
      const records = merged.reduce((n, r) => n + r.segment.recordCount, base?.segment.recordCount ?? 0);
      if (records >= TreeEngine.workerMergeMinRecords && isLocalFileSystem(this.fs) && workerMergeAvailable()) {
        const { compare: _, ...write } = settings.write;
        // The worker reads the merged segments from their WALs (closed above) when every one
        // has one; otherwise this thread packs their records for it.
        const logged = merged.every((r) => r.walPath !== undefined);
        result = await runMergeInWorker({
          dir: this.dir,
          newer,
          wals: logged ? merged.map((r) => ({ path: r.walPath!, recordCount: r.segment.recordCount })) : undefined,
          base: base?.record,
          nothingBelow,
          now: settings.now,
          tombstones: durable,
          touching: newTombstones,
          mode: settings.mode,
          write,
          partMinItemCount: settings.partMinItemCount,
          partMaxItemCount: settings.partMaxItemCount,
          reserveIds: (count) => {
            const first = this.#nextSegmentId;
            this.#nextSegmentId += count;
            return first;
          },
          sliceMs: settings.sliceMs,
        });
      }
      if (result === "unavailable") {
        result = await runMerge({
          fs: this.fs,
          dir: this.dir,
          compare: this.compare,
          newer,
          base: base?.segment,
          nothingBelow,
          tombstones: applied,
          touching: new TombstoneSet(newTombstones),
          ...settings,
        });
      }
      this.checkOpen();
      const record = result ? { id: result.id, parts: result.parts, recordCount: result.recordCount } : null;
      const handle = this.#openPublished(record, result?.createdFiles ?? [], result?.preloaded);
      // For a large merge, opening the new segment (its index) and publishing it (fsyncs) each
      // take milliseconds: let callers run between the two. Nothing the publish depends on
      // changes meanwhile (merges are serialized, close waits for this one).
      if (records >= TreeEngine.workerMergeMinRecords) {
        await nextTurn();
        if (this.#closed || this.#failure) {
          if (handle) this.#diskSet.retire(handle);
          this.checkWritable();
        }
      }
      const toBottom = handle !== undefined &&
        movesToBottom(handle.segment.recordCount, this.options.diskSegmentMaxItemCount);
      const mergedMaxId = Math.max(...merged.map((r) => r.segment.id));
      let dropped: RetainedWal[] = [];
      this.#publish(() => {
        dropped = this.#retainMergedWals(merged);
        this.#meta.diskSegment = toBottom ? null : record;
        if (toBottom) this.#meta.bottomSegments = [...this.#meta.bottomSegments, record!];
        this.#meta.persistedSegmentId = Math.max(this.#meta.persistedSegmentId, mergedMaxId);
        this.#meta.rangeTombstones = encodeTombstones(keptTombstones);
      }, handle, result?.createdFiles ?? []);
      // The new segment set.
      this.#readOnly = this.#readOnly.filter((r) => !merged.includes(r));
      const old = this.#disk;
      this.#disk = toBottom ? undefined : handle;
      if (toBottom) this.#bottom.push(handle!);
      this.#rebuildLayers();
      if (old) this.#diskSet.retire(old);
      this.#moveMergedWals(merged, dropped);
      this.events.emit("disk-segment-created", {
        segmentId: record?.id,
        recordCount: record?.recordCount ?? 0,
        bytesWritten: result?.bytesWritten ?? 0,
        carriedParts: result?.carriedParts ?? 0,
        movedToBottom: toBottom,
      });
      this.events.emit("merge-ended", {
        durationMs: performance.now() - started,
        bytesWritten: result?.bytesWritten ?? 0,
      });
    } finally {
      newer.close();
      if (base) this.#diskSet.release(base);
    }
  }

  /**
   * Merges bottom segments `from`..`to` (inclusive indexes into the queue, oldest = 0) into one.
   * Deletion markers and expired records are dropped when `from` is 0 (nothing lies below).
   */
  mergeBottomSegments(from: number = 0, to: number = this.#bottom.length - 1): Promise<void> {
    this.checkWritable();
    // `to` defaults to -1 when there is no bottom segment (nothing to do, below).
    if (!Number.isSafeInteger(from) || from < 0 || !Number.isSafeInteger(to)) {
      const name = !Number.isSafeInteger(from) || from < 0 ? "from" : "to";
      throw new InvalidOptionError(name, `mergeBottomSegments(${String(from)}, ${String(to)}): ${name} is not an index`);
    }
    return this.#exclusive(async () => {
      this.checkWritable();
      const count = this.#bottom.length;
      if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to >= count || from > to) {
        if (count === 0 || from === to) return;
        throw new InvalidOptionError("from", `mergeBottomSegments(${from}, ${to}): bottom segments are 0..${count - 1}`);
      }
      if (from === to) return;
      const inputs = this.#bottom.slice(from, to + 1);
      // Only persisted tombstones (see #mergeReadOnly): in-memory ones may not be durable yet.
      const persisted = decodeTombstones(this.#meta.rangeTombstones);
      const applied = persisted.length === 0 ? TombstoneSet.EMPTY : new TombstoneSet(persisted);
      // Once every bottom segment is rewritten with them applied, persisted tombstones hide nothing.
      const allBottoms = from === 0 && to === count - 1;
      for (const h of inputs) this.#diskSet.acquire(h);
      const cursors = inputs.slice().reverse().map((h) => h.segment.cursor(false));
      const newer = new MergingCursor(cursors, false, this.compare);
      this.events.emit("merge-started", { bottomSegments: inputs.length });
      const started = performance.now();
      try {
        const result = await runMerge({
          fs: this.fs,
          dir: this.dir,
          compare: this.compare,
          newer,
          base: undefined,
          nothingBelow: from === 0,
          tombstones: applied,
          touching: TombstoneSet.EMPTY,
          ...this.#mergeSettings(),
        });
        this.checkOpen();
        const record = result ? { id: result.id, parts: result.parts, recordCount: result.recordCount } : null;
        const handle = this.#openPublished(record, result?.createdFiles ?? []);
        this.#publish(() => {
          const next = this.#meta.bottomSegments.slice();
          next.splice(from, to - from + 1, ...(record ? [record] : []));
          this.#meta.bottomSegments = next;
          if (allBottoms) this.#meta.rangeTombstones = [];
        }, handle, result?.createdFiles ?? []);
        this.#bottom.splice(from, to - from + 1, ...(handle ? [handle] : []));
        this.#rebuildLayers();
        for (const h of inputs) this.#diskSet.retire(h); // the segment set's reference
        this.events.emit("merge-ended", {
          durationMs: performance.now() - started,
          bytesWritten: result?.bytesWritten ?? 0,
        });
      } finally {
        newer.close();
        for (const h of inputs) this.#diskSet.release(h); // this merge's pin
      }
    });
  }

  /** Opens a just-written segment; on failure removes its files. */
  #openPublished(
    record: DiskSegmentRecord | null,
    created: string[],
    preloaded?: PreloadedIndex[],
  ): DiskHandle | undefined {
    if (!record) return undefined;
    try {
      const pre = preloaded && new Map(preloaded.map((p) => [p.footer.segmentId, p]));
      const segment = openRecordedSegment(this.fs, this.dir, record, this.compare, this.#blockCache, pre);
      return this.#diskSet.adopt(segment, record);
    } catch (e) {
      for (const f of created) this.#removeQuietly(f);
      throw e;
    }
  }

  /**
   * Makes new segment files durable, then applies `change` to the metadata and replaces it
   * atomically. If that fails, the metadata in memory is restored, the new files removed, and
   * the error thrown: the old segment set stays in force, on disk and in memory.
   */
  #publish(change: () => void, handle: DiskHandle | undefined, created: string[]): void {
    const before = structuredClone(this.#meta);
    try {
      this.fs.syncDir(this.dir);
      change();
      this.#meta.lastOpIndex = Math.max(this.#meta.lastOpIndex, this.#maxDiskOpIndex());
      this.#publishMetadata();
    } catch (e) {
      this.#meta = before;
      const error = new IOError(`cannot publish a merge in ${this.dir}: ${(e as Error).message}`, {
        cause: e,
      });
      if (e instanceof MetadataSyncError) {
        // The new metadata is in place but may not survive a crash, so the old one may come
        // back: keep every file either one names, and take no more writes. The segment set in
        // memory stays the old one (it holds the same records).
        if (handle) this.#diskSet.release(handle);
        this.#fail(error);
        throw error;
      }
      if (handle) this.#diskSet.retire(handle);
      for (const f of created) this.#removeQuietly(f);
      throw error;
    }
  }

  #removeQuietly(path: string): void {
    try {
      this.fs.remove(path);
    } catch (e) {
      this.events.emit("error", asIOError(`remove ${path}`, e));
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Change feed (reader and retention rule in change_feed.ts)

  /** The floor and the WAL files above it, oldest first. Synchronous, so a consistent view. */
  changeFeedView(): ChangeFeedView {
    this.checkOpen();
    let floor = this.#meta.changeFeedFloor ?? 0;
    const files = (this.#meta.changeFeedFiles ?? []).map((f) => ({ id: f.id, lastOpIndex: f.lastOpIndex }));
    for (let i = this.#readOnly.length - 1; i >= 0; i--) {
      const r = this.#readOnly[i];
      if (r.walPath) files.push({ id: r.segment.id, lastOpIndex: r.lastOpIndex });
      else floor = Math.max(floor, r.lastOpIndex); // never logged (wal "none"): not in the feed
    }
    if (this.#mutableWalPath) files.push({ id: this.#mutable.id, lastOpIndex: Infinity });
    return { floor, files };
  }

  /**
   * Called inside a merge's metadata publish: lists the merged WALs as retained, applies
   * changeFeedRetentionBytes, and returns the files to delete once the publish has succeeded.
   */
  #retainMergedWals(merged: readonly ReadOnlyEntry[]): RetainedWal[] {
    let floor = this.#meta.changeFeedFloor ?? 0;
    const added: RetainedWal[] = [];
    for (const r of merged) {
      if (!r.walPath) floor = Math.max(floor, r.lastOpIndex);
      else added.push({ id: r.segment.id, lastOpIndex: r.lastOpIndex, bytes: this.fs.stat(r.walPath)?.size ?? 0 });
    }
    const limit = this.options.changeFeedRetentionBytes;
    const plan = planRetention(this.#meta.changeFeedFiles ?? [], added, floor, limit);
    this.#meta.changeFeedFiles = plan.files;
    this.#meta.changeFeedFloor = plan.floor;
    return plan.dropped;
  }

  /**
   * After the publish: renames the kept merged WALs `.log` → `.old` and deletes the dropped
   * files. A crash before the renames is completed by the next open (`#recoverChangeFeed`).
   */
  #moveMergedWals(merged: readonly ReadOnlyEntry[], dropped: readonly RetainedWal[]): void {
    const gone = new Set(dropped.map((f) => f.id));
    for (const r of merged) {
      if (!r.walPath || gone.has(r.segment.id)) continue;
      try {
        this.fs.rename(r.walPath, joinPath(this.dir, retainedWalFileName(r.segment.id)));
      } catch (e) {
        // The feed reads it as .log; the next open renames it.
        this.events.emit("error", asIOError(`rename the merged WAL ${r.walPath}`, e));
      }
    }
    for (const f of dropped) {
      const path = changeFeedFilePath(this.fs, this.dir, f.id);
      if (path) this.#diskSet.removeInBackground(path);
    }
  }

  /**
   * On open, before WAL replay, completes what a crash interrupted: a listed WAL still named
   * `.log` (crash between the publish and the rename) is renamed, so it is neither replayed nor
   * deleted as obsolete; a listed file that is gone (a backup copies no `.old`) is dropped with
   * every older one and the floor raised; the retention bound (it may have changed) is applied;
   * an unlisted `.old` (crash between a publish and its delete) is removed. A read-only open
   * changes no file: the reader finds a file under either name.
   */
  #recoverChangeFeed(): void {
    const meta = this.#meta;
    const readOnly = this.options.readOnly;
    // A directory from before the change feed: nothing written before this open is in the feed.
    let floor = meta.changeFeedFloor ?? (meta.persistedSegmentId > 0 ? meta.opIndexReserved : 0);
    let files = meta.changeFeedFiles ?? [];
    for (let i = files.length - 1; i >= 0; i--) {
      const path = changeFeedFilePath(this.fs, this.dir, files[i].id);
      if (!path) {
        for (const f of files.slice(0, i + 1)) floor = Math.max(floor, f.lastOpIndex);
        files = files.slice(i + 1);
        break;
      }
      if (!readOnly && path.endsWith(".log")) this.fs.rename(path, joinPath(this.dir, retainedWalFileName(files[i].id)));
    }
    const plan = planRetention(files, [], floor, this.options.changeFeedRetentionBytes);
    meta.changeFeedFiles = plan.files;
    meta.changeFeedFloor = plan.floor;
    if (readOnly) return;
    const kept = new Set(plan.files.map((f) => f.id));
    for (const name of this.fs.list(this.dir)) {
      const id = parseRetainedWalFileName(name);
      if (id !== undefined && !kept.has(id)) this.fs.remove(joinPath(this.dir, name));
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Backup

  /**
   * Writes a consistent, openable copy of the tree into `targetDir` (missing or empty) while
   * the tree stays open: the disk segments as published now (pinned while copied), the WAL
   * files up to their size right after a flush (whole frames: a prefix of the log), in-memory
   * segments that have no WAL (wal "none") as fresh WAL files, and the metadata last, so a
   * backup interrupted half-way has no `meta` and does not open.
   */
  async backup(targetDir: string, target: FileSystem = this.fs): Promise<void> {
    this.checkOpen();
    if (typeof targetDir !== "string" || targetDir.length === 0) {
      const got = typeof targetDir === "string" ? "an empty string" : String(targetDir);
      throw new InvalidOptionError("targetDir", `backup(targetDir): expected a directory path, got ${got}`);
    }
    const existing = target.stat(targetDir);
    if (existing && (!existing.isDirectory || target.list(targetDir).length > 0)) {
      throw new InvalidOptionError("targetDir", `backup target ${targetDir} exists and is not an empty directory`);
    }
    if (!this.options.readOnly && !this.#failure) await this.flush();
    // Capture the state in one synchronous step: nothing can change it in between.
    // The metadata of the segment set in memory, which the pinned handles are (after a failed
    // directory sync the file may already name a segment set that was never taken up).
    const metaBytes = encodeMetadata({ ...this.#meta, nextSegmentId: this.#nextSegmentId });
    const handles = this.#diskHandles();
    for (const h of handles) this.#diskSet.acquire(h);
    const wals: { name: string; size: number }[] = [];
    const unlogged: { segment: MutableSegment; tombstones: RangeTombstone[] }[] = [];
    // After an I/O failure a WAL may lack acknowledged writes (an async buffer never written)
    // or end in a torn frame: the in-memory segments, which hold exactly the acknowledged
    // writes, are written out instead, as they are for wal "none".
    const logged = this.#failure === undefined;
    const walOf = (segment: MutableSegment, path: string | undefined) => {
      const tombstones = (this.#memTombstones.get(segment.id) ?? []).slice();
      if (path && logged) {
        // A WAL still being created (moved forward during the flush) holds nothing from before
        // the call: there is no file to copy yet.
        const size = this.fs.stat(path)?.size;
        if (size !== undefined) wals.push({ name: path.slice(path.lastIndexOf("/") + 1), size });
      } else if (segment.recordCount > 0 || tombstones.length > 0) unlogged.push({ segment, tombstones });
    };
    for (const r of this.#readOnly.slice().reverse()) walOf(r.segment, r.walPath);
    walOf(this.#mutable, this.#mutableWalPath);
    try {
      target.mkdirp(targetDir);
      for (const h of handles) {
        for (const f of filesOf(h.record)) copyFile(this.fs, joinPath(this.dir, f), target, joinPath(targetDir, f));
      }
      for (const w of wals) {
        copyFile(this.fs, joinPath(this.dir, w.name), target, joinPath(targetDir, w.name), w.size);
      }
      const dumps: WalWriter[] = [];
      try {
        for (const u of unlogged) dumps.push(dumpSegmentToWal(u.segment, u.tombstones, target, targetDir));
      } finally {
        for (const wal of dumps) await wal.close();
      }
      const tmp = joinPath(targetDir, META_TMP_FILE);
      const file = target.openFile(tmp, { create: true, truncate: true });
      try {
        file.write(metaBytes, 0);
        file.sync();
      } finally {
        file.close();
      }
      target.rename(tmp, joinPath(targetDir, META_FILE));
      target.syncDir(targetDir);
    } catch (e) {
      if (e instanceof ZoneTreeError) throw e;
      throw new IOError(`cannot back up ${this.dir} into ${targetDir}: ${(e as Error).message}`, {
        cause: e,
      });
    } finally {
      for (const h of handles) this.#diskSet.release(h);
    }
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
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #waitForMerges(): Promise<void> {
    while (this.#merging) await this.#merging.catch(() => {});
  }

  async #close(): Promise<void> {
    // No new background merge starts from here on; a running one is allowed to finish, so a
    // close during a merge neither wastes it nor reports it as failed.
    this.#mergeScheduled = true;
    await this.#waitForMerges();
    if (!this.options.readOnly && !this.#failure && this.options.wal === "none") {
      // Nothing was logged: a clean close persists the in-memory segments in a disk segment.
      try {
        if (this.#mutable.recordCount > 0) this.moveMutableSegmentForward();
        while (this.#readOnly.length > 0 && !this.#failure) await this.merge();
      } catch (e) {
        this.events.emit("error", e);
      }
    }
    this.#closed = true;
    try {
      await this.#waitForMerges();
      await Promise.all([...this.#pendingWalCloses]);
      if (!this.options.readOnly && !this.#failure) {
        await this.#mutableWal.close();
        this.#meta.lastOpIndex = this.#lastOpIndex;
        this.#meta.opIndexReserved = this.#lastOpIndex;
        this.#publishMetadata();
      } else {
        this.#mutableWal.closeSync();
      }
    } catch (e) {
      throw asIOError(`close the tree in ${this.dir}`, e);
    } finally {
      this.#closeDiskSegments();
      // A closed tree only answers ClosedError: its records may go even while the caller still
      // holds it (reopening into the same variable would otherwise hold both trees at once).
      this.#readOnly = [];
      this.#mutable = new MutableSegment(this.#mutable.id, this.compare);
      this.#rebuildLayers();
      await this.#diskSet.settled();
      this.#lock?.release();
      this.#lock = undefined;
    }
    if (this.#failure) {
      // Writes acknowledged before the failure but not yet durable may be lost: say so.
      throw new IOError(
        `tree ${this.dir} was closed after an I/O failure; writes not flushed before it ` +
          `may be lost: ${this.#failure.message}`,
        { cause: this.#failure },
      );
    }
  }

  /** Layer statistics for `tree.stats()`. */
  stats(): {
    mutableSegmentRecordCount: number;
    readOnlySegmentsCount: number;
    readOnlySegmentsRecordCount: number;
    diskSegmentRecordCount: number;
    bottomSegmentsCount: number;
    bottomSegmentsRecordCount: number;
    walBytes: number;
    diskBytes: number;
    blockCacheBytes: number;
  } {
    let readOnlyRecords = 0;
    let walBytes = this.#mutableWalPath ? this.#mutableWal.sizeBytes : 0;
    for (const r of this.#readOnly) {
      readOnlyRecords += r.segment.recordCount;
      if (r.walPath) walBytes += this.fs.stat(r.walPath)?.size ?? 0;
    }
    let diskBytes = 0;
    let bottomRecords = 0;
    for (const h of this.#diskHandles()) diskBytes += h.segment.sizeBytes;
    for (const h of this.#bottom) bottomRecords += h.segment.recordCount;
    return {
      mutableSegmentRecordCount: this.#mutable.recordCount,
      readOnlySegmentsCount: this.#readOnly.length,
      readOnlySegmentsRecordCount: readOnlyRecords,
      diskSegmentRecordCount: this.#disk?.segment.recordCount ?? 0,
      bottomSegmentsCount: this.#bottom.length,
      bottomSegmentsRecordCount: bottomRecords,
      walBytes,
      diskBytes,
      blockCacheBytes: this.#blockCache.sizeBytes,
    };
  }
}

/**
 * `e` if it is one of the typed errors (or a failed assertion: a bug, never wrapped), else an
 * `IOError` saying what could not be done, with `e` as the cause.
 */
function asIOError(what: string, e: unknown): Error {
  if (e instanceof ZoneTreeError || e instanceof AssertionError) return e;
  return new IOError(`cannot ${what}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
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

export { KIND_RANGE_DELETE };

export { KIND_DELETE, KIND_PUT };
