/**
 * `ZoneTree`: the public facade (API.md §2–§6). Turns typed keys and values into bytes through
 * the keyspace, validates every argument before anything is written, and delegates to the
 * engine (`src/engine/tree_engine.ts`). Point operations are synchronous; `open`, `flush`,
 * `close`, merges and backups are async.
 *
 * @module
 */
import { InvalidOptionError } from "./errors.ts";
import {
  checkBooleanOption,
  checkOptionNames,
  type EngineOptions,
  validateOptions,
} from "./options.ts";
import type {
  CompressionMode,
  DiskSegmentMode,
  MaintenanceMode,
  OpenMode,
  WalMode,
} from "./options.ts";
import { TreeEvents } from "./events.ts";
import { type EncodedBounds, resolveBounds } from "./bounds.ts";
import { rangeIterator, TreeIterator, type TreeIteratorOptions } from "./tree_iterator.ts";
import { Transaction } from "./transaction.ts";
import type { FileSystem } from "../fs/file_system.ts";
import type { AnyKey, AnyKeyInput, AnyKeyspace, Keyspace } from "../keyspace/define_keyspace.ts";
import { type EngineKeyspace, TreeEngine } from "../engine/tree_engine.ts";
import { OpColumns } from "../wal/wal_format.ts";
import { pace } from "../util/gc_pacer.ts";
import { EMPTY, KIND_DELETE, KIND_PUT } from "../iter/record.ts";
import { RangeCursor } from "../iter/range_cursor.ts";
import { decodesToCopy } from "../keyspace/value_codec.ts";
import { type KeyField, keyTypeWidth } from "../keyspace/key_field_type.ts";
import { RUN_SUFFIX_MAX } from "../memory/run_tree.ts";
import { type RawChange, readChanges } from "../engine/change_feed.ts";

export type { AnyKeyspace };

/** Options of {@link ZoneTree.open} (API.md §2). Every tuning option is optional and validated. */
export interface OpenOptions<KS extends AnyKeyspace = AnyKeyspace> {
  /** Data directory; created if missing. */
  dir: string;
  /** The compiled keyspace: key layout and value codec. Its identity is checked on open. */
  keyspace: KS;
  /** `"open-or-create"` (default), `"create"` or `"open"`. */
  mode?: OpenMode;
  /** Write-ahead log mode (default `"async-compressed"`). */
  wal?: WalMode;
  /** Open without writing anything; writes throw `ReadOnlyError`. */
  readOnly?: boolean;
  /** `"auto"` (default) or `"manual"`: nothing moves or merges unless asked. */
  maintenance?: MaintenanceMode;
  /** Storage provider; default: local files. `memoryFileSystem()` for tests. */
  fs?: FileSystem;
  /** Records in the mutable segment before it moves forward (default 1,000,000). */
  mutableSegmentMaxItemCount?: number;
  /** Approximate bytes in the mutable segment before it moves forward (default 64 MiB). */
  mutableSegmentMaxBytes?: number;
  /** Records in the disk segment before it moves to the bottom segments (default 20,000,000). */
  diskSegmentMaxItemCount?: number;
  /** `"multipart"` (default) or `"single"`. */
  diskSegmentMode?: DiskSegmentMode;
  /** Minimum records per multipart part (default 1,500,000). */
  multipartMinItemCount?: number;
  /** Maximum records per multipart part (default 3,000,000). */
  multipartMaxItemCount?: number;
  /** Block compression of disk segments (default `"lz4"`). */
  compression?: CompressionMode;
  /** Keys between sparse index entries (default 1024; 0 disables the extra entries). */
  sparseStep?: number;
  /** Uncompressed bytes per disk block (default 16 KiB; see docs/FORMATS.md for why). */
  blockSizeBytes?: number;
  /** Bytes of decompressed blocks kept in the block cache (default 64 MiB). */
  blockCacheMaxBytes?: number;
  /**
   * Repair a write-ahead log damaged in the middle instead of failing with `CorruptionError`:
   * the log is cut at the damaged frame (the records after it are lost) and the repair is
   * reported on the `error` event. Damaged disk segments are not repaired (restore a backup).
   */
  repair?: boolean;
  /**
   * Bytes of merged WAL files kept for {@link ZoneTree.changes}, the oldest dropped first.
   * Default 0 (keep none): the feed then covers only the writes not merged yet, and a tree that
   * nobody follows spends no disk on it. Set it on a tree that a consumer follows (a replica,
   * an outbox), e.g. 64 MiB, or a consumer that falls behind a merge gets `ChangeFeedGapError`.
   */
  changeFeedRetentionBytes?: number;
}

/**
 * One write, as {@link ZoneTree.changes} yields it. A batch or transaction yields one change per
 * op, with consecutive opIndexes.
 */
export type Change<K, V> =
  | { opIndex: number; type: "put"; key: K; value: V; expiresAt?: number }
  | { opIndex: number; type: "delete"; key: K }
  | {
    opIndex: number;
    type: "deleteRange";
    /** Encoded keys: deletes every key k with start <= k < end (an empty end: no upper end). */
    range: { start: Uint8Array; end: Uint8Array };
  };

/** Expiry of a written record: an absolute time or a time to live. */
export interface WriteOptions {
  /** Epoch milliseconds after which the record reads as absent. */
  expiresAt?: number;
  /** Milliseconds from now after which the record reads as absent. */
  ttlMs?: number;
}

/** Bounds of a range (API.md §4): each a full key or a prefix. */
export interface RangeBounds<P> {
  /** Keys at or above this key; with a prefix, at or above every key with it. */
  gte?: P;
  /** Keys above this key; with a prefix, above every key with it. */
  gt?: P;
  /** Keys at or below this key; with a prefix, up to and including every key with it. */
  lte?: P;
  /** Keys below this key; with a prefix, below every key with it. */
  lt?: P;
  /** Only keys that start with this prefix (or equal this full key). */
  prefix?: P;
}

/** Options of {@link ZoneTree.range} and {@link ZoneTree.keys}. */
export interface RangeOptions<P> extends RangeBounds<P> {
  /** Descending key order. */
  reverse?: boolean;
  /** At most this many records. */
  limit?: number;
  /** Read a snapshot: exactly the records present when the range starts. */
  snapshot?: boolean;
}

/** One operation of {@link ZoneTree.batch}. */
export type BatchOp<KIn, V> =
  | { put: KIn; value: V; expiresAt?: number; ttlMs?: number }
  | { del: KIn };

/** What {@link ZoneTree.addOrUpdate} did. */
export interface AddOrUpdateResult {
  /** What happened: the key was added, updated, or `fn` cancelled the update. */
  result: "added" | "updated" | "cancelled";
  /** The write's opIndex (absent when cancelled). */
  opIndex?: number;
}

/** Statistics of the layers (API.md §6). */
export interface TreeStats {
  /** Records in the mutable segment (deletion markers included). */
  mutableSegmentRecordCount: number;
  /** Frozen in-memory segments waiting for a merge. */
  readOnlySegmentsCount: number;
  /** Records across the read-only segments. */
  readOnlySegmentsRecordCount: number;
  /** Records in the disk segment. */
  diskSegmentRecordCount: number;
  /** Disk segments in the bottom segment queue. */
  bottomSegmentsCount: number;
  /** Physical records across every layer (a key written in two layers counts twice). */
  totalRecordCount: number;
  /** Whether a merge is running. */
  isMerging: boolean;
  /** Bytes of write-ahead log files. */
  walBytes: number;
  /** Bytes of disk segment files. */
  diskBytes: number;
  /** Bytes of decompressed blocks held by the block cache. */
  blockCacheBytes: number;
  /** Highest opIndex assigned so far. */
  lastOpIndex: number;
}

/** Manual maintenance (API.md §6). */
export interface TreeMaintenance {
  /** Freezes the mutable segment into the read-only queue. */
  moveMutableSegmentForward(): void;
  /** Merges the read-only segments into the disk segment. */
  merge(): Promise<"ok" | "nothing-to-merge">;
  /** Merges bottom segments `from`..`to` (indexes, oldest = 0) into one. */
  mergeBottomSegments(from?: number, to?: number): Promise<void>;
}

/**
 * Estimated bytes of one batch op's objects (the op and the arrays its key and value came in),
 * counted with its key and value bytes for `util/gc_pacer.ts` once the batch is written.
 */
const BATCH_OP_OVERHEAD_BYTES = 96;
const RANGE_OPTION_NAMES = ["gte", "gt", "lte", "lt", "prefix", "reverse", "limit", "snapshot"];
/** The range options that are bounds, in the order they are encoded. */
const BOUND_NAMES = ["gte", "gt", "lte", "lt", "prefix"] as const;

/**
 * An ordered, durable key-value tree over a keyspace: a write-ahead log, in-memory segments and
 * disk segments, merged in the background. Point reads and writes are synchronous; `open`,
 * `flush`, `close`, merges and backups are async. Open one with {@link ZoneTree.open}.
 *
 * @example Write, read and scan latest-first
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineKeyspace, memoryFileSystem, ZoneTree } from "@zonetree/zonetree";
 *
 * const readings = defineKeyspace({ key: "sensor:<str>:ts:<u64be>", value: "f64" });
 * await using tree = await ZoneTree.open({ dir: "/db", keyspace: readings, fs: memoryFileSystem() });
 * tree.upsert({ sensor: "s-1", ts: 1n }, 20.5);
 * tree.upsert(["s-1", 2n], 21.0); // a tuple in field order works too
 * assert.equal(tree.get(["s-1", 1n]), 20.5);
 * const latest = [...tree.range({ prefix: { sensor: "s-1" }, reverse: true, limit: 1 })];
 * assert.deepEqual(latest, [[{ sensor: "s-1", ts: 2n }, 21.0]]);
 * ```
 */
export class ZoneTree<K = AnyKey, V = unknown, KIn = AnyKeyInput, P = AnyKeyInput> {
  /** The keyspace this tree was opened with. */
  readonly keyspace: Keyspace<K, V, KIn, P>;
  /** Lifecycle and error events. */
  readonly events: TreeEvents;
  /** Manual maintenance operations. */
  readonly maintenance: TreeMaintenance;
  readonly #engine: TreeEngine;
  /** The value codec is the built-in `"bytes"` one (see {@link ZoneTree.#valueForWrite}). */
  readonly #bytesValues: boolean;
  /**
   * Width N of a layout that is one ascending `<bytes:N>` field, whose encoded key is the given
   * array itself (see {@link ZoneTree.#keyInCall}); 0 otherwise.
   */
  readonly #identityKeyWidth: number;
  /** Columns that {@link ZoneTree.batch} reuses; undefined while one is being written. */
  #batchColumns: OpColumns | undefined = new OpColumns();

  private constructor(keyspace: Keyspace<K, V, KIn, P>, engine: TreeEngine, events: TreeEvents) {
    this.keyspace = keyspace;
    this.#engine = engine;
    this.#bytesValues = keyspace.value.id === "bytes";
    this.#identityKeyWidth = identityKeyWidth(keyspace.key);
    this.events = events;
    this.maintenance = {
      moveMutableSegmentForward: () => engine.moveMutableSegmentForward(),
      merge: () => Promise.resolve().then(() => engine.merge()),
      mergeBottomSegments: (from?: number, to?: number) =>
        Promise.resolve().then(() => engine.mergeBottomSegments(from, to)),
    };
  }

  /**
   * Opens (or creates) a tree. Throws `InvalidOptionError`, `DatabaseNotFoundError`,
   * `DatabaseAlreadyExistsError`, `ComparerMismatchError`, `DatabaseLockedError` or
   * `CorruptionError`; a failed open changes no file. Without an `fs` option the tree lives in
   * local files under `dir`.
   *
   * @example A tree in a directory, closed and reopened
   * ```ts
   * import assert from "node:assert/strict";
   * import { mkdtempSync, rmSync } from "node:fs";
   * import { tmpdir } from "node:os";
   * import { join } from "node:path";
   * import { defineKeyspace, ZoneTree } from "@zonetree/zonetree";
   *
   * const dir = join(mkdtempSync(join(tmpdir(), "zonetree-")), "users");
   * const users = defineKeyspace({ key: "user:<str>", value: "json" });
   * const tree = await ZoneTree.open({ dir, keyspace: users, wal: "sync" });
   * tree.upsert("ada", { name: "Ada Lovelace" }); // durable when upsert returns ("sync")
   * await tree.close();
   *
   * const again = await ZoneTree.open({ dir, keyspace: users, mode: "open", readOnly: true });
   * assert.deepEqual(again.get("ada"), { name: "Ada Lovelace" });
   * await again.close();
   * rmSync(join(dir, ".."), { recursive: true });
   * ```
   */
  static open<KS extends AnyKeyspace>(
    options: OpenOptions<KS>,
  ): Promise<
    ZoneTree<
      KS extends Keyspace<infer K, infer _V, infer _I, infer _P> ? K : never,
      KS extends Keyspace<infer _K, infer V, infer _I, infer _P> ? V : never,
      KS extends Keyspace<infer _K, infer _V, infer I, infer _P> ? I : never,
      KS extends Keyspace<infer _K, infer _V, infer _I, infer P> ? P : never
    >
  > {
    return Promise.resolve().then(() => {
      const keyspace = checkKeyspace((options as { keyspace?: unknown } | undefined)?.keyspace);
      const engineOptions: EngineOptions = validateOptions(options);
      const events = new TreeEvents();
      const engine = TreeEngine.open(engineOptions, engineKeyspace(keyspace), events);
      // deno-lint-ignore no-explicit-any
      return new ZoneTree(keyspace, engine, events) as any;
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Writes

  /**
   * Inserts or replaces `key`. Returns the write's opIndex. `opts` sets an expiry (`expiresAt`
   * in epoch ms, or `ttlMs`): an expired record reads as absent.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { defineKeyspace, memoryFileSystem, ZoneTree } from "@zonetree/zonetree";
   *
   * const sessions = defineKeyspace({ key: "session:<uuid>", value: "utf8" });
   * await using tree = await ZoneTree.open({ dir: "/db", keyspace: sessions, fs: memoryFileSystem() });
   * const id = "0b7a4c1e-3f2d-4e5a-9b8c-7d6e5f4a3b2c";
   * const first = tree.upsert(id, "alice");
   * const second = tree.upsert(id, "alice, renewed", { ttlMs: 60_000 });
   * assert.ok(second > first); // opIndexes strictly increase
   * assert.equal(tree.get(id), "alice, renewed");
   * ```
   */
  upsert(key: KIn, value: V, opts?: WriteOptions): number {
    this.#engine.checkWritable();
    const k = this.#keyInCall(key);
    const v = this.#valueForWrite(value);
    return this.#engine.write(KIND_PUT, k, v, expiryOf(opts));
  }

  /**
   * Inserts `key` only if it is absent. Returns the opIndex, or undefined if it existed (nothing
   * is written then).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { defineKeyspace, memoryFileSystem, ZoneTree } from "@zonetree/zonetree";
   *
   * const names = defineKeyspace({ key: "<str>", value: "u32be" });
   * await using tree = await ZoneTree.open({ dir: "/db", keyspace: names, fs: memoryFileSystem() });
   * assert.equal(typeof tree.tryAdd("ada", 1), "number");
   * assert.equal(tree.tryAdd("ada", 2), undefined);
   * assert.equal(tree.get("ada"), 1);
   * ```
   */
  tryAdd(key: KIn, value: V, opts?: WriteOptions): number | undefined {
    this.#engine.checkWritable();
    const k = this.#keyInCall(key);
    const v = this.#valueForWrite(value);
    const expiresAt = expiryOf(opts);
    if (this.#engine.getValue(k) !== undefined) return undefined;
    return this.#engine.write(KIND_PUT, k, v, expiresAt);
  }

  /**
   * Deletes `key` if it is present. Returns the opIndex, or undefined if it was absent (nothing
   * is written then).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { defineKeyspace, memoryFileSystem, ZoneTree } from "@zonetree/zonetree";
   *
   * const names = defineKeyspace({ key: "<str>", value: "u32be" });
   * await using tree = await ZoneTree.open({ dir: "/db", keyspace: names, fs: memoryFileSystem() });
   * tree.upsert("ada", 1);
   * assert.equal(typeof tree.tryDelete("ada"), "number");
   * assert.equal(tree.tryDelete("ada"), undefined);
   * assert.equal(tree.has("ada"), false);
   * ```
   */
  tryDelete(key: KIn): number | undefined {
    this.#engine.checkWritable();
    const k = this.#keyInCall(key);
    if (this.#engine.getValue(k) === undefined) return undefined;
    return this.#engine.write(KIND_DELETE, k, EMPTY, 0);
  }

  /** Writes a deletion marker for `key` unconditionally. Returns the opIndex. */
  forceDelete(key: KIn): number {
    this.#engine.checkWritable();
    const k = this.#keyInCall(key);
    return this.#engine.write(KIND_DELETE, k, EMPTY, 0);
  }

  /**
   * Atomically replaces the value of an existing key with `fn(value)`. Returns the opIndex, or
   * undefined when the key is absent or `fn` returns undefined (nothing written). The record
   * keeps its expiry time.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { defineKeyspace, memoryFileSystem, ZoneTree } from "@zonetree/zonetree";
   *
   * const stock = defineKeyspace({ key: "sku:<str>", value: "u32be" });
   * await using tree = await ZoneTree.open({ dir: "/db", keyspace: stock, fs: memoryFileSystem() });
   * tree.upsert("apple", 3);
   * tree.update("apple", (n) => n - 1);
   * assert.equal(tree.get("apple"), 2);
   * assert.equal(tree.update("apple", (n) => (n >= 5 ? n - 5 : undefined)), undefined); // cancelled
   * assert.equal(tree.update("pear", (n) => n - 1), undefined); // absent
   * ```
   */
  update(key: KIn, fn: (value: V) => V | undefined): number | undefined {
    this.#engine.checkWritable();
    checkFunction(fn, "update");
    const k = this.keyspace.key.encode(key);
    const slot = this.#liveRecord(k);
    if (!slot) return undefined;
    const next = fn(this.keyspace.value.decode(slot.value));
    if (next === undefined) return undefined;
    const v = this.#valueForWrite(next);
    return this.#engine.write(KIND_PUT, k, v, slot.expiresAt);
  }

  /**
   * Adds `key` with `initial`, or updates it with `fn` (undefined from `fn` cancels), in one
   * atomic step.
   *
   * @example A counter
   * ```ts
   * import assert from "node:assert/strict";
   * import { defineKeyspace, memoryFileSystem, ZoneTree } from "@zonetree/zonetree";
   *
   * const hits = defineKeyspace({ key: "page:<str>", value: "u32be" });
   * await using tree = await ZoneTree.open({ dir: "/db", keyspace: hits, fs: memoryFileSystem() });
   * assert.equal(tree.addOrUpdate("/", 1, (n) => n + 1).result, "added");
   * assert.equal(tree.addOrUpdate("/", 1, (n) => n + 1).result, "updated");
   * assert.equal(tree.get("/"), 2);
   * ```
   */
  addOrUpdate(key: KIn, initial: V, fn: (value: V) => V | undefined): AddOrUpdateResult {
    this.#engine.checkWritable();
    checkFunction(fn, "addOrUpdate");
    const k = this.keyspace.key.encode(key);
    const slot = this.#liveRecord(k);
    if (!slot) {
      const v = this.#valueForWrite(initial);
      return { result: "added", opIndex: this.#engine.write(KIND_PUT, k, v, 0) };
    }
    const next = fn(this.keyspace.value.decode(slot.value));
    if (next === undefined) return { result: "cancelled" };
    const v = this.#valueForWrite(next);
    return { result: "updated", opIndex: this.#engine.write(KIND_PUT, k, v, slot.expiresAt) };
  }

  /**
   * Deletes every key within `bounds` (API.md §4 bounds: full keys or prefixes) as one write,
   * whatever the number of keys: a range tombstone, honoured by every read, iterator and
   * snapshot opened after it, and applied by merges. Returns its opIndex.
   *
   * @example Drop one sensor's readings before a time
   * ```ts
   * import assert from "node:assert/strict";
   * import { defineKeyspace, memoryFileSystem, ZoneTree } from "@zonetree/zonetree";
   *
   * const readings = defineKeyspace({ key: "sensor:<str>:ts:<u64be>", value: "f64" });
   * await using tree = await ZoneTree.open({ dir: "/db", keyspace: readings, fs: memoryFileSystem() });
   * for (let ts = 0; ts < 100; ts++) tree.upsert(["s-1", ts], ts);
   * tree.deleteRange({ gte: { sensor: "s-1" }, lt: { sensor: "s-1", ts: 90 } });
   * assert.equal(tree.count(), 10);
   * assert.equal(tree.get(["s-1", 5]), undefined);
   * ```
   */
  deleteRange(bounds: RangeBounds<P>): number {
    this.#engine.checkWritable();
    const range = resolveBounds(this.#encodeBounds(bounds, "deleteRange"));
    let start: Uint8Array = EMPTY;
    let end: Uint8Array = EMPTY;
    if (range.lower) start = range.lower.inclusive ? range.lower.key : withZero(range.lower.key);
    if (range.upper) end = range.upper.inclusive ? withZero(range.upper.key) : range.upper.key;
    if (range.empty || (range.upper && end.length === 0)) {
      end = start.length === 0 ? new Uint8Array(1) : start;
    }
    return this.#engine.deleteRange(start, end);
  }

  #encodeBounds(bounds: RangeBounds<P>, fn: string): EncodedBounds {
    if (bounds === null || typeof bounds !== "object") {
      throw new InvalidOptionError("bounds", `${fn}(bounds): bounds must be an object`);
    }
    const encoded: EncodedBounds = {};
    for (const name of Object.keys(bounds)) {
      if (!["gte", "gt", "lte", "lt", "prefix"].includes(name)) {
        throw new InvalidOptionError(name, `${fn}(bounds): unknown bound "${name}"`);
      }
    }
    for (const side of BOUND_NAMES) {
      const b = bounds[side];
      if (b !== undefined) encoded[side] = this.keyspace.key.encodeBound(b);
    }
    return encoded;
  }

  #liveRecord(k: Uint8Array): { value: Uint8Array; expiresAt: number } | undefined {
    const value = this.#engine.getValue(k);
    if (value === undefined) return undefined;
    const slot = { key: k, value, opIndex: 0, kind: 0, expiresAt: 0 };
    this.#engine.getRecord(k, slot);
    return { value, expiresAt: slot.expiresAt };
  }

  /**
   * Applies `ops` in order as one WAL record: after a crash either all or none of them are
   * present. Every op is validated and encoded before anything is written. Returns the last
   * opIndex.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { defineKeyspace, memoryFileSystem, ZoneTree } from "@zonetree/zonetree";
   *
   * const queue = defineKeyspace({ key: "queue:<str>:seq:<u64be>", value: "utf8" });
   * await using tree = await ZoneTree.open({ dir: "/db", keyspace: queue, fs: memoryFileSystem() });
   * tree.batch([
   *   { put: ["mail", 1], value: "hello" },
   *   { put: ["mail", 2], value: "world", ttlMs: 60_000 },
   *   { del: ["mail", 0] },
   * ]);
   * assert.deepEqual([...tree.keys({ prefix: ["mail"] })].map((k) => k.seq), [1n, 2n]);
   * ```
   */
  batch(ops: readonly BatchOp<KIn, V>[]): number {
    this.#engine.checkWritable();
    if (!Array.isArray(ops)) {
      throw new InvalidOptionError(
        "ops",
        "batch(ops): ops must be an array of {put, value} or {del}",
      );
    }
    // The columns are reused from batch to batch (no object per op); a batch written from
    // inside another (an event listener) takes fresh ones.
    const columns = this.#batchColumns ?? new OpColumns();
    this.#batchColumns = undefined;
    try {
      let bytes = 0;
      for (let i = 0; i < ops.length; i++) bytes += this.#encodeOp(columns, ops[i], i);
      const written = this.#engine.writeBatch(columns);
      // The ops (objects, and as a rule their keys and values) were made for this call and are
      // garbage now; count them for the young-generation pacing (`util/gc_pacer.ts`).
      pace(bytes + ops.length * BATCH_OP_OVERHEAD_BYTES);
      return written;
    } finally {
      columns.clear();
      this.#batchColumns = columns;
    }
  }

  /**
   * The encoded value for a write that the engine applies before this call returns (upsert,
   * tryAdd, update, addOrUpdate, batch): the WAL
   * and the in-memory segment both copy the bytes then, so the `"bytes"` codec's defensive copy
   * is skipped (about 10% of an upsert's CPU in Bun; in Deno each Uint8Array is a malloc). Never
   * for writes kept for later (transactions encode with the codec, which copies).
   */
  #valueForWrite(value: V): Uint8Array {
    return this.#bytesValues && value instanceof Uint8Array
      ? value
      : this.keyspace.value.encode(value);
  }

  /**
   * The encoded key for a write applied, or a point read answered, before this call returns
   * with no user code running in between (not `update` / `addOrUpdate`, whose callback could
   * change the array between the read and the write), as
   * {@link #valueForWrite} for values: for a layout of one ascending `<bytes:N>` field the
   * encoding is the bytes themselves, so a Uint8Array of N bytes is used as given instead of
   * copied (the WAL and the in-memory segment copy a written key, a read only compares it; a
   * million-record load allocated a million 16-byte arrays for nothing, and 1M random gets
   * spent ~2% of their time on the copies).
   */
  #keyInCall(key: KIn): Uint8Array {
    const n = this.#identityKeyWidth;
    return n !== 0 && key instanceof Uint8Array && key.length === n
      ? key
      : this.keyspace.key.encode(key);
  }

  /**
   * Encodes op `i` of a batch into `columns` (in order: key, value, expiry) and returns the
   * bytes of its encoded key and value.
   */
  #encodeOp(columns: OpColumns, op: BatchOp<KIn, V>, i: number): number {
    if (op !== null && typeof op === "object") {
      if ("put" in op) {
        const key = this.#keyInCall(op.put);
        const value = this.#valueForWrite(op.value);
        columns.add(KIND_PUT, key, value, expiryOf(op, BATCH_PUT_NAMES, i));
        return key.length + value.length;
      }
      if ("del" in op) {
        checkNames(op, DEL_NAMES, i);
        const key = this.#keyInCall(op.del);
        columns.add(KIND_DELETE, key, EMPTY, 0);
        return key.length;
      }
    }
    throw new InvalidOptionError("ops", `batch(ops): ops[${i}] is neither {put, value} nor {del}`);
  }

  // ---------------------------------------------------------------------------------------------
  // Reads

  /**
   * The value of `key`, or undefined if absent, deleted or expired. A key is an object by field
   * names or a tuple in field order (a bare scalar for a one-field layout).
   *
   * Byte arrays a read hands out (a `"bytes"` value, a `bytes` key field) are the caller's to
   * keep and change. Under Deno one of up to 256 bytes is a view into a shared 8 KiB buffer
   * (Deno gives every new typed array a `malloc`'d buffer of its own, ~1 µs each): use its
   * `byteOffset` and `byteLength` with its `buffer`, and `slice()` it to transfer it or to keep
   * a few out of many. The same holds for `range`, `keys`, iterators and transactions.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { defineKeyspace, memoryFileSystem, ZoneTree } from "@zonetree/zonetree";
   *
   * const metrics = defineKeyspace({ key: "metric:<u32be>:ts:<u64be:desc>", value: "f64" });
   * await using tree = await ZoneTree.open({ dir: "/db", keyspace: metrics, fs: memoryFileSystem() });
   * tree.upsert({ metric: 7, ts: 1000n }, 0.5);
   * assert.equal(tree.get({ metric: 7, ts: 1000n }), 0.5);
   * assert.equal(tree.get([7, 1000]), 0.5); // u64be fields also take numbers
   * assert.equal(tree.get([7, 999]), undefined);
   * assert.deepEqual(tree.getMany([[7, 1000], [8, 1000]]), [0.5, undefined]);
   * ```
   */
  get(key: KIn): V | undefined {
    this.#engine.checkOpen();
    const codec = this.keyspace.value;
    const k = this.#keyInCall(key);
    // Bytes values: the read's own copy is the value (no second copy).
    if (decodesToCopy(codec)) return this.#engine.getOwnedValue(k) as V | undefined;
    const value = this.#engine.getValue(k);
    return value === undefined ? undefined : codec.decode(value);
  }

  /** The values of `keys`, in the same order (undefined where absent). */
  getMany(keys: readonly KIn[]): (V | undefined)[] {
    this.#engine.checkOpen();
    if (!Array.isArray(keys)) {
      throw new InvalidOptionError("keys", "getMany(keys): keys must be an array of keys");
    }
    const encoded = keys.map((k) => this.#keyInCall(k));
    const codec = this.keyspace.value;
    if (decodesToCopy(codec)) return encoded.map((k) => this.#engine.getOwnedValue(k) as V | undefined);
    return encoded.map((k) => {
      const value = this.#engine.getValue(k);
      return value === undefined ? undefined : codec.decode(value);
    });
  }

  /** Whether `key` is present (not deleted, not expired). */
  has(key: KIn): boolean {
    this.#engine.checkOpen();
    return this.#engine.getValue(this.#keyInCall(key)) !== undefined;
  }

  /**
   * Live records, within `bounds` when given. Scans the keys (values are not decoded).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { defineKeyspace, memoryFileSystem, ZoneTree } from "@zonetree/zonetree";
   *
   * const events = defineKeyspace({ key: "stream:<str>:<u64be>", value: "json" });
   * await using tree = await ZoneTree.open({ dir: "/db", keyspace: events, fs: memoryFileSystem() });
   * tree.upsert(["orders", 1], { type: "created" });
   * tree.upsert(["orders", 2], { type: "paid" });
   * tree.upsert(["users", 1], { type: "joined" });
   * assert.equal(tree.count(), 3);
   * assert.equal(tree.count({ prefix: ["orders"] }), 2);
   * ```
   */
  count(bounds?: RangeBounds<P>): number {
    if (bounds !== undefined && (bounds === null || typeof bounds !== "object")) {
      throw new InvalidOptionError("bounds", "count(bounds): bounds must be an object");
    }
    const cursor = this.#rangeCursor({ ...bounds }, "count");
    let n = 0;
    try {
      while (cursor.next()) n++;
    } finally {
      cursor.close();
    }
    return n;
  }

  /** Live records by a full scan of every layer (exact even with TTL). */
  countFullScan(): number {
    return this.count();
  }

  /** Highest opIndex assigned so far; survives reopen. */
  get lastOpIndex(): number {
    this.#engine.checkOpen();
    return this.#engine.lastOpIndex;
  }

  /**
   * `[key, value]` pairs in key order (or reverse), newest version wins, deleted and expired
   * hidden. Bounds (`gte`, `gt`, `lte`, `lt`, `prefix`) are full keys or prefixes (leading
   * fields); `snapshot: true` reads exactly the records present when the range starts. The
   * range starts at its first step: it sees every write made before that, and may or may not
   * see writes made while it runs (API.md §4).
   *
   * @example A one-hour window and the latest reading of a sensor
   * ```ts
   * import assert from "node:assert/strict";
   * import { defineKeyspace, memoryFileSystem, ZoneTree } from "@zonetree/zonetree";
   *
   * const readings = defineKeyspace({
   *   key: "sensor:<str>:ts:<u64be>",
   *   value: { temp: "f64", humidity: "f32" },
   * });
   * await using tree = await ZoneTree.open({ dir: "/db", keyspace: readings, fs: memoryFileSystem() });
   * const start = Date.UTC(2024, 0, 1);
   * for (let m = 0; m < 180; m++) {
   *   tree.upsert({ sensor: "s-7", ts: start + m * 60_000 }, { temp: 20 + m / 100, humidity: 40 });
   * }
   * const hour = [...tree.range({
   *   gte: { sensor: "s-7", ts: start + 60 * 60_000 },
   *   lt: { sensor: "s-7", ts: start + 120 * 60_000 },
   * })];
   * assert.equal(hour.length, 60);
   * const [[latestKey]] = tree.range({ prefix: { sensor: "s-7" }, reverse: true, limit: 1 });
   * assert.equal(latestKey.ts, BigInt(start + 179 * 60_000));
   * ```
   */
  range(options: RangeOptions<P> = {}): Generator<[K, V], void, undefined> {
    const { key, value } = this.keyspace;
    return rangeIterator(
      this.#engine,
      () => this.#rangeCursor(options, "range"),
      key,
      value,
    );
  }

  /**
   * Keys in order, like {@link ZoneTree.range} without decoding values.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { defineKeyspace, memoryFileSystem, ZoneTree } from "@zonetree/zonetree";
   *
   * const tags = defineKeyspace({ key: "tag:<str>:post:<u32be>", value: "bytes" });
   * await using tree = await ZoneTree.open({ dir: "/db", keyspace: tags, fs: memoryFileSystem() });
   * for (const post of [3, 1, 2]) tree.upsert(["ts", post], new Uint8Array());
   * assert.deepEqual([...tree.keys({ prefix: ["ts"] })].map((k) => k.post), [1, 2, 3]);
   * ```
   */
  keys(options: RangeOptions<P> = {}): Generator<K, void, undefined> {
    return rangeIterator(
      this.#engine,
      () => this.#rangeCursor(options, "keys"),
      this.keyspace.key,
    );
  }

  #rangeCursor(options: RangeOptions<P>, fn: string): RangeCursor {
    this.#engine.checkOpen();
    if (options === null || typeof options !== "object") {
      throw new InvalidOptionError("options", `${fn}(options): options must be an object`);
    }
    checkOptionNames(options, RANGE_OPTION_NAMES, fn);
    const limit = options.limit;
    if (
      limit !== undefined && (typeof limit !== "number" || !Number.isInteger(limit) || limit < 0)
    ) {
      throw new InvalidOptionError(
        "limit",
        `${fn}(options): limit ${String(limit)} is not a non-negative integer`,
      );
    }
    const encoded: EncodedBounds = {};
    for (let i = 0; i < BOUND_NAMES.length; i++) {
      const side = BOUND_NAMES[i];
      const b = options[side];
      if (b !== undefined) encoded[side] = this.keyspace.key.encodeBound(b);
    }
    const range = resolveBounds(encoded);
    const reverse = checkBooleanOption(options.reverse, "reverse", fn);
    const snapshot = checkBooleanOption(options.snapshot, "snapshot", fn);
    // A bounded or limited range is a query: it reads through the block cache.
    const bounded = range.lower !== undefined || range.upper !== undefined || limit !== undefined;
    // A range opens its cursor at its first step and need not see later writes (API.md §4: a
    // default iterator *may* see them), so an empty mutable segment is left out.
    const { cursor, openedAt } = this.#engine.openCursor(reverse, snapshot, bounded, true);
    return new RangeCursor(cursor, this.#engine.compare, {
      lower: range.lower,
      upper: range.upper,
      limit: range.empty ? 0 : limit,
      includeDeleted: false,
      now: snapshot ? openedAt : undefined,
    });
  }

  /**
   * A positioned iterator (API.md §4). Dispose it (`using`) to release the segments it pins.
   * See {@link TreeIterator} for an example.
   */
  iterator(options: TreeIteratorOptions = {}): TreeIterator<K, V, P> {
    this.#engine.checkOpen();
    return new TreeIterator(this.#engine, this.keyspace, options);
  }

  /**
   * The change feed: every write with an opIndex above `sinceOpIndex`, in opIndex order, up to
   * the `lastOpIndex` at the call (after awaiting a flush, so each is durable). Reads the WAL
   * files and the merged ones kept within `changeFeedRetentionBytes`; throws
   * `ChangeFeedGapError` when writes above `sinceOpIndex` are no longer kept (resync from a full
   * copy), `InvalidOptionError` with wal "none".
   *
   * @example Follow a tree from an opIndex
   * ```ts
   * import assert from "node:assert/strict";
   * import { defineKeyspace, memoryFileSystem, ZoneTree } from "@zonetree/zonetree";
   *
   * const ks = defineKeyspace({ key: "<str>", value: "u32be" });
   * await using tree = await ZoneTree.open({ dir: "/db", keyspace: ks, fs: memoryFileSystem() });
   * tree.upsert("a", 1);
   * const from = tree.lastOpIndex;
   * tree.upsert("b", 2);
   * tree.forceDelete("a");
   * const seen = [];
   * for await (const c of tree.changes(from)) seen.push(`${c.type} ${c.type === "deleteRange" ? "" : c.key}`);
   * assert.deepEqual(seen, ["put b", "delete a"]);
   * ```
   */
  async *changes(sinceOpIndex: number = 0): AsyncGenerator<Change<K, V>, void, undefined> {
    this.#engine.checkOpen();
    for await (const raw of readChanges(this.#engine, sinceOpIndex)) yield this.#decodeChange(raw);
  }

  #decodeChange(raw: RawChange): Change<K, V> {
    const { opIndex, kind } = raw;
    if (kind === KIND_PUT) {
      const key = this.keyspace.key.decode(raw.key);
      const value = this.keyspace.value.decode(raw.value);
      return raw.expiresAt === 0 ? { opIndex, type: "put", key, value } : {
        opIndex,
        type: "put",
        key,
        value,
        expiresAt: raw.expiresAt,
      };
    }
    if (kind === KIND_DELETE) {
      return { opIndex, type: "delete", key: this.keyspace.key.decode(raw.key) };
    }
    return {
      opIndex,
      type: "deleteRange",
      range: { start: raw.key.slice(), end: raw.value.slice() },
    };
  }

  /**
   * Starts an optimistic transaction (API.md §5). See {@link Transaction} for an example.
   */
  transaction(): Transaction<K, V, KIn> {
    this.#engine.checkWritable();
    return new Transaction(this.#engine, this.keyspace);
  }

  // ---------------------------------------------------------------------------------------------
  // Durability, inspection, lifecycle

  /**
   * Resolves when everything written before the call is on disk (fsync). With the default
   * `wal: "async-compressed"`, this is the point where earlier writes become durable.
   *
   * @example
   * ```ts
   * import { defineKeyspace, memoryFileSystem, ZoneTree } from "@zonetree/zonetree";
   *
   * const ks = defineKeyspace({ key: "<u64be>", value: "utf8" });
   * await using tree = await ZoneTree.open({ dir: "/db", keyspace: ks, fs: memoryFileSystem() });
   * for (let i = 0; i < 1000; i++) tree.upsert(i, `event ${i}`);
   * await tree.flush(); // all 1000 writes survive a crash from here on
   * ```
   */
  flush(): Promise<void> {
    return Promise.resolve().then(() => this.#engine.flush());
  }

  /**
   * Layer statistics: record counts per layer, WAL and disk bytes, block cache bytes.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { defineKeyspace, memoryFileSystem, ZoneTree } from "@zonetree/zonetree";
   *
   * const ks = defineKeyspace({ key: "<u64be>", value: "f64" });
   * await using tree = await ZoneTree.open({
   *   dir: "/db", keyspace: ks, fs: memoryFileSystem(), maintenance: "manual",
   * });
   * for (let i = 0; i < 100; i++) tree.upsert(i, i / 2);
   * tree.maintenance.moveMutableSegmentForward();
   * await tree.maintenance.merge(); // the 100 records move to a disk segment
   * const stats = tree.stats();
   * assert.equal(stats.diskSegmentRecordCount, 100);
   * assert.ok(stats.diskBytes > 0);
   * ```
   */
  stats(): TreeStats {
    this.#engine.checkOpen();
    const s = this.#engine.stats();
    return {
      mutableSegmentRecordCount: s.mutableSegmentRecordCount,
      readOnlySegmentsCount: s.readOnlySegmentsCount,
      readOnlySegmentsRecordCount: s.readOnlySegmentsRecordCount,
      diskSegmentRecordCount: s.diskSegmentRecordCount,
      bottomSegmentsCount: s.bottomSegmentsCount,
      totalRecordCount: s.mutableSegmentRecordCount + s.readOnlySegmentsRecordCount +
        s.diskSegmentRecordCount + s.bottomSegmentsRecordCount,
      isMerging: this.#engine.isMerging,
      walBytes: s.walBytes,
      diskBytes: s.diskBytes,
      blockCacheBytes: s.blockCacheBytes,
      lastOpIndex: this.#engine.lastOpIndex,
    };
  }

  /**
   * Writes a consistent copy that opens as a tree into `targetDir` (missing or empty), while
   * the tree stays open and writes go on. It holds everything written before the call.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { defineKeyspace, memoryFileSystem, ZoneTree } from "@zonetree/zonetree";
   *
   * const fs = memoryFileSystem();
   * const ks = defineKeyspace({ key: "<str>", value: "utf8" });
   * await using tree = await ZoneTree.open({ dir: "/db", keyspace: ks, fs });
   * tree.upsert("a", "1");
   * await tree.backup("/backup");
   * tree.upsert("b", "2"); // after the call: not in the backup
   * await using copy = await ZoneTree.open({ dir: "/backup", keyspace: ks, fs, mode: "open" });
   * assert.deepEqual([...copy.range()], [["a", "1"]]);
   * ```
   */
  backup(targetDir: string): Promise<void> {
    return Promise.resolve().then(() => this.#engine.backup(targetDir));
  }

  /** Whether the tree is closed. */
  get closed(): boolean {
    return this.#engine.closed;
  }

  /**
   * Flushes and syncs everything, then releases the directory. Idempotent. Using the tree
   * afterwards throws `ClosedError`; `await using tree = await ZoneTree.open(...)` closes it at
   * the end of the scope.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ClosedError, defineKeyspace, memoryFileSystem, ZoneTree } from "@zonetree/zonetree";
   *
   * const ks = defineKeyspace({ key: "<str>", value: "utf8" });
   * const tree = await ZoneTree.open({ dir: "/db", keyspace: ks, fs: memoryFileSystem() });
   * await tree.close();
   * assert.equal(tree.closed, true);
   * assert.throws(() => tree.get("a"), ClosedError);
   * ```
   */
  close(): Promise<void> {
    return this.#engine.close();
  }

  /** `await using tree = await ZoneTree.open(...)` closes the tree at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** `key` followed by one 0x00 byte: the smallest byte string above `key`. */
function withZero(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(key.length + 1);
  out.set(key);
  return out;
}

function checkKeyspace(keyspace: unknown): AnyKeyspace {
  const ks = keyspace as AnyKeyspace | undefined;
  if (
    !ks || typeof ks !== "object" || typeof ks.identity !== "string" ||
    typeof ks.key?.encode !== "function" ||
    typeof ks.value?.encode !== "function"
  ) {
    throw new InvalidOptionError(
      "keyspace",
      `option "keyspace": expected a keyspace from defineKeyspace()`,
    );
  }
  return ks;
}

function engineKeyspace(ks: AnyKeyspace): EngineKeyspace {
  return {
    compare: ks.key.compare,
    identity: ks.identity,
    canonical: ks.canonical,
    spec: ks.spec,
    keyFixedWidth: ks.key.fixedWidth,
    valueFixedWidth: ks.value.fixedWidth,
    layout: ks.layout,
    keySuffixWidth: keySuffixWidth(ks.key.fields),
  };
}

/**
 * Bytes of the last key field when there are two or more fields and the last is fixed-width
 * (1..RUN_SUFFIX_MAX bytes), else 0: see `EngineKeyspace.keySuffixWidth`. Every field type is
 * fixed-width or escaped and terminated, so the fields before the last form a prefix-free code.
 */
function keySuffixWidth(fields: readonly KeyField[]): number {
  if (fields.length < 2) return 0;
  const w = keyTypeWidth(fields[fields.length - 1].type);
  return w > 0 && w <= RUN_SUFFIX_MAX ? w : 0;
}

const WRITE_OPTION_NAMES = ["expiresAt", "ttlMs"];
const BATCH_PUT_NAMES = ["put", "value", "expiresAt", "ttlMs"];
const DEL_NAMES = ["del"];

/**
 * Where an option came from, for messages: a description, or the index of a `batch` op (the
 * message is only built when thrown: a string per op cost ~10% of a batch's encoding).
 */
type OptionSource = string | number;

function describeSource(what: OptionSource): string {
  return typeof what === "number" ? `batch(ops): ops[${what}]` : what;
}

/**
 * Throws `InvalidOptionError` naming the first property of `obj` that is not in `allowed` (a
 * typo such as `{ ttl: 5 }` must not silently write a record that never expires), or if `obj`
 * is an array.
 */
function checkNames(obj: object, allowed: readonly string[], what: OptionSource): void {
  if (Array.isArray(obj)) {
    throw new InvalidOptionError("options", `${describeSource(what)}: expected an object, got an array`);
  }
  for (const name in obj) {
    if (!allowed.includes(name)) {
      throw new InvalidOptionError(name, `${describeSource(what)}: unknown option "${name}" (${allowed.join(", ")})`);
    }
  }
}

/** Throws `InvalidOptionError` unless `fn` is a function (checked before anything is read). */
function checkFunction(fn: unknown, what: string): void {
  if (typeof fn !== "function") {
    throw new InvalidOptionError("fn", `${what}(key, ...): fn must be a function, got ${typeof fn}`);
  }
}

/** The stored expiry (epoch ms, 0 = never) of write options; throws on bad values. */
function expiryOf(
  opts: WriteOptions | undefined,
  allowed: readonly string[] = WRITE_OPTION_NAMES,
  what: OptionSource = "write options",
): number {
  if (opts === undefined) return 0;
  if (opts === null || typeof opts !== "object") {
    throw new InvalidOptionError("opts", "write options must be an object {expiresAt?, ttlMs?}");
  }
  checkNames(opts, allowed, what);
  const { expiresAt, ttlMs } = opts;
  if (expiresAt !== undefined && ttlMs !== undefined) {
    throw new InvalidOptionError("ttlMs", "give expiresAt or ttlMs, not both");
  }
  if (expiresAt !== undefined) {
    if (typeof expiresAt !== "number" || !Number.isFinite(expiresAt) || expiresAt <= 0) {
      throw new InvalidOptionError(
        "expiresAt",
        `expiresAt ${String(expiresAt)} is not a positive epoch time in ms`,
      );
    }
    return expiresAt;
  }
  if (ttlMs !== undefined) {
    if (typeof ttlMs !== "number" || !Number.isFinite(ttlMs) || ttlMs < 0) {
      throw new InvalidOptionError(
        "ttlMs",
        `ttlMs ${String(ttlMs)} is not a non-negative number of ms`,
      );
    }
    return Date.now() + ttlMs;
  }
  return 0;
}

/**
 * N when `codec` encodes a key as exactly the N bytes given (a layout of one ascending
 * `<bytes:N>` field), checked on a probe key; 0 otherwise.
 */
function identityKeyWidth(codec: { fields: readonly { type: string; desc: boolean }[]; fixedWidth?: number; encode(k: never): Uint8Array }): number {
  const f = codec.fields;
  const n = codec.fixedWidth;
  if (f.length !== 1 || f[0].desc || f[0].type !== `bytes:${n}` || n === undefined) return 0;
  const probe = new Uint8Array(n);
  for (let i = 0; i < n; i++) probe[i] = (i * 37 + 11) & 0xff;
  let out: Uint8Array;
  try {
    out = codec.encode(probe as never);
  } catch {
    return 0;
  }
  if (out === probe || out.length !== n) return 0;
  for (let i = 0; i < n; i++) if (out[i] !== probe[i]) return 0;
  return n;
}
