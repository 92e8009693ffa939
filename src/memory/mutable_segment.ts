/**
 * The mutable segment: the in-memory layer that takes every write first (protected by the WAL),
 * and, once frozen, the read-only segment that waits in the queue for a merge. It owns a
 * {@link BPlusTree} of records and the accounting the engine uses to decide when to move it
 * forward (`recordCount` against mutableSegmentMaxItemCount, `byteSize` against
 * mutableSegmentMaxBytes).
 *
 * Invariants: at most one record per key (a newer write of a key overwrites it in place); after
 * `freeze()` the record set never changes, so a read-only segment needs no locking and its cursors
 * never re-seek; `byteSize` is the sum over held records of key + value bytes + a fixed per-record
 * overhead, plus the value bytes of every overwrite (an overwrite appends to the arena and to the
 * WAL, so overwrites alone still move the segment forward at mutableSegmentMaxBytes).
 *
 * Called by the engine (write path, read path, move-forward, merge).
 *
 * @module
 */

import type { Comparer, RecordCursor, RecordSlot, SegmentReader } from "../iter/record.ts";
import { assert } from "../util/assert.ts";
import { BPlusTree, DEFAULT_FANOUT, DEFAULT_INLINE_KEY_BYTES } from "./bplus_tree.ts";
import { KeyFilter, keyHash, keyHashAt } from "./key_filter.ts";
import { RUN_DECLINED, RUN_INSERTED, RunTree } from "./run_tree.ts";
import type { RelayoutInput } from "../util/helper_thread.ts";

/** B+tree shape of a {@link MutableSegment}; the defaults are the measured best. */
export interface MutableSegmentTuning {
  /** Records per leaf and children per branch: even, 4..1024. */
  fanout?: number;
  /** Key bytes kept inline per slot: a multiple of 4 in 4..64. */
  inlineKeyBytes?: number;
  /**
   * Keys the segment's {@link KeyFilter} is first sized for; 0 or absent: no filter (the merge
   * worker's replays, which are only scanned). When the segment holds more keys, the filter is
   * rebuilt 4x larger from the keys held, up to `keyFilterMaxCapacity`.
   */
  keyFilterCapacity?: number;
  /** The largest filter capacity (default: `keyFilterCapacity`); see {@link filterCapacity}. */
  keyFilterMaxCapacity?: number;
  /**
   * Bytes of the keys' fixed-width last field when every key is a prefix-free prefix plus that
   * field (the keyspace's `keySuffixWidth`): the segment starts as a {@link RunTree} (one sorted
   * run per prefix) and becomes a B+tree if the keys stop suiting it. 0 or absent: a B+tree.
   */
  runSuffixWidth?: number;
  /**
   * Lay the records out again in key order on the helper thread once frozen and read, when they
   * were written out of order (see `BPlusTree.startRelayout` and {@link MutableSegment.cursor});
   * the B+tree's arena is then in shared memory. The engine's segments do; a merge worker's
   * replays (only scanned once) do not.
   */
  relayout?: boolean;
  /** Tests: the run tree's `shiftMax`, `shiftBudget` and `runsMax` (see `run_tree.ts`). */
  runShiftMax?: number;
  runShiftBudget?: number;
  runsMax?: number;
}

/** Growth factor of a segment's key filter when it fills. */
const FILTER_GROWTH = 4;

/**
 * The most records a segment can hold before the engine moves it forward: the item limit, or
 * the byte limit over the per-record overhead (each record counts at least that much).
 */
export function filterCapacity(maxItemCount: number, maxBytes: number, runSuffixWidth = 0): number {
  const perRecord = runSuffixWidth > 0 ? runRecordBytes(runSuffixWidth) : RECORD_OVERHEAD_BYTES;
  return Math.min(maxItemCount, Math.ceil(maxBytes / perRecord));
}

/**
 * Approximate bytes of memory per record beyond its key and value bytes: its leaf slot (six
 * 32-bit arena locations with the kind, two doubles, the inline key words: 68 bytes at the
 * defaults) over the leaves' fill, the branches, the key filter and the object headers of the
 * leaves; a key no longer than the inline words is not in the arena, so its bytes count once,
 * there. Measured ({@link MutableSegment.memoryBytes} at 100k records of 100-byte values):
 * 16-byte keys ascending 66, random 99; 32-byte keys ascending 81, random 114; 8-byte random
 * 107 (leaves 69% full when random; the key filter's share shrinks as the segment grows), plus
 * ~6 of leaf object headers. About the worst of them, so that a segment moved forward at
 * `mutableSegmentMaxBytes` held at most about that much. (It was 200 while each record had two
 * byte-array objects of its own, 140 while keys were always copied to the arena and the kind
 * had a number of its own.) Only used to bound memory, so approximate.
 */
export const RECORD_OVERHEAD_BYTES = 124;

/**
 * Bytes of a record's page slot in a run tree with suffixes of `width` bytes (the least memory
 * a record takes as runs, value aside): bounds the records a segment of runs can hold.
 */
export function runRecordBytes(width: number): number {
  return 8 * (((width + 3) >>> 2) + 4);
}

/** An in-memory segment. Writable until {@link MutableSegment.freeze}, then read-only. */
export class MutableSegment implements SegmentReader {
  /** Unique id within the tree. */
  readonly id: number;
  /** The key order. */
  readonly compare: Comparer;
  /**
   * The hashes of every key held, when the segment has a filter: a read whose key hash the
   * filter rules out skips this segment (see `key_filter.ts`).
   */
  keyFilter: KeyFilter | undefined;
  private readonly keyFilterMax: number;
  /** The records, while they are kept as runs; null once (or unless) they are in {@link tree}. */
  private runs: RunTree | null = null;
  /** The records, when {@link runs} is null. */
  private tree!: BPlusTree;
  private readonly fanout: number;
  private readonly inlineKeyBytes: number;
  private wasRuns = false;
  private bytes = 0;
  private isFrozen = false;
  private readonly relayout: boolean;
  /** A read of the frozen segment has asked for a relayout (see {@link cursor}). */
  private relayoutAsked = false;
  /** A relayout of the frozen tree is running on the helper. */
  private relayoutPending = false;

  /**
   * An empty segment with the given id, ordered by `compare` (must agree with memcmp).
   * `tuning` sets the B+tree shape; tests use it for small nodes (deep trees) and few inline
   * key bytes (comparer fallbacks).
   */
  constructor(id: number, compare: Comparer, tuning: MutableSegmentTuning = {}) {
    this.id = id;
    this.compare = compare;
    this.fanout = tuning.fanout ?? DEFAULT_FANOUT;
    this.inlineKeyBytes = tuning.inlineKeyBytes ?? DEFAULT_INLINE_KEY_BYTES;
    this.relayout = tuning.relayout ?? false;
    const width = tuning.runSuffixWidth ?? 0;
    if (width > 0) {
      this.runs = new RunTree(width, tuning.runShiftMax, tuning.runsMax, tuning.runShiftBudget);
      this.wasRuns = true;
    } else this.tree = new BPlusTree(compare, this.fanout, this.inlineKeyBytes, this.relayout);
    const capacity = tuning.keyFilterCapacity ?? 0;
    this.keyFilter = capacity > 0 ? new KeyFilter(capacity) : undefined;
    this.keyFilterMax = Math.max(capacity, tuning.keyFilterMaxCapacity ?? 0);
  }

  /** Records held, deletion markers included. */
  get recordCount(): number {
    return this.runs !== null ? this.runs.size : this.tree.size;
  }

  /**
   * True when the segment started as runs and turned into a B+tree (the keys did not suit runs:
   * see `run_tree.ts`); the engine then starts the next segment as a B+tree.
   */
  get leftRuns(): boolean {
    return this.wasRuns && this.runs === null;
  }

  /** True while the records are kept as runs. */
  get isRuns(): boolean {
    return this.runs !== null;
  }

  /**
   * Memory held. As a B+tree, approximate: key + value bytes plus {@link RECORD_OVERHEAD_BYTES}
   * per record, plus the value bytes of overwrites. As runs, what they allocated (arena chunks,
   * pages, runs and filter: {@link memoryBytes}): a reading takes 48 bytes of its page plus its
   * value there, against ~177 estimated for a B+tree, so a segment holds twice the readings
   * before it moves forward at mutableSegmentMaxBytes (and a read merges fewer layers).
   */
  get byteSize(): number {
    return this.runs !== null ? this.memoryBytes() : this.bytes;
  }

  /**
   * Bytes the segment has allocated (its B+tree's arena, slabs and branches, and its key
   * filter): what {@link byteSize} estimates, measured. Tests hold the estimate to it.
   */
  memoryBytes(): number {
    const held = this.runs !== null ? this.runs.memoryBytes() : this.tree.memoryBytes();
    return held + (this.keyFilter?.byteSize ?? 0);
  }

  /** True once {@link MutableSegment.freeze} was called. */
  get frozen(): boolean {
    return this.isFrozen;
  }

  /**
   * Stores a record for `key`, replacing the segment's record of that key if any.
   * REQUIRES: not frozen. The segment copies `key` and `value` (the caller may reuse them). `kind` is KIND_PUT or KIND_DELETE (then `value` is ignored by
   * readers); `expiresAt` is epoch ms, 0 for never.
   */
  put(key: Uint8Array, value: Uint8Array, opIndex: number, kind: number, expiresAt: number): void {
    // Per record: the message is built only when it fails.
    if (this.isFrozen) assert(false, `put into frozen segment ${this.id}`);
    // An overwrite appends the new value to the tree's arena (and the WAL): it counts in full.
    let inserted: boolean;
    const runs = this.runs;
    if (runs !== null) {
      const r = runs.upsert(key, value, opIndex, kind, expiresAt);
      if (r === RUN_DECLINED) {
        this.leaveRuns(runs);
        inserted = this.tree.upsert(key, value, opIndex, kind, expiresAt);
      } else inserted = r === RUN_INSERTED;
    } else inserted = this.tree.upsert(key, value, opIndex, kind, expiresAt);
    if (inserted) {
      this.bytes += key.length + value.length + RECORD_OVERHEAD_BYTES;
      // After the insert: a filter must never miss a key the tree holds.
      const filter = this.keyFilter;
      if (filter !== undefined) {
        if (this.recordCount > filter.capacity && filter.capacity < this.keyFilterMax) this.growFilter(filter);
        else filter.add(keyHash(key));
      }
    } else this.bytes += value.length;
  }

  /**
   * Moves every record of `runs` into a new B+tree, which holds the segment's records from now
   * on; cursors open on the runs continue on it (see `RunTreeCursor`).
   */
  private leaveRuns(runs: RunTree): void {
    const tree = new BPlusTree(this.compare, this.fanout, this.inlineKeyBytes, this.relayout);
    runs.forEach((key, value, opIndex, kind, expiresAt) => tree.upsert(key, value, opIndex, kind, expiresAt));
    this.tree = tree;
    this.runs = null;
    runs.replacedBy = tree;
    runs.modCount++;
  }

  /**
   * Fills `out` with the record of `key` and returns true, or returns false if absent. Once
   * frozen, through the tree's hash index (see `BPlusTree.getIndexed`); `hash` is
   * `keyHash(key)` when the caller has it already.
   */
  get(key: Uint8Array, out: RecordSlot, hash?: number): boolean {
    if (this.runs !== null) return this.runs.get(key, out);
    if (this.isFrozen) {
      if (this.relayoutPending || !this.relayoutAsked) this.read();
      return this.tree.getIndexed(key, hash ?? keyHash(key), out);
    }
    return this.tree.get(key, out);
  }

  /**
   * Replaces a full key filter by one 4x larger holding every key of the tree (the one just
   * inserted included). Sizes grow geometrically, so the rehashing is O(1) amortized per key;
   * small segments (most partitions, tests) keep small filters.
   */
  private growFilter(full: KeyFilter): void {
    const grown = new KeyFilter(Math.min(this.keyFilterMax, full.capacity * FILTER_GROWTH));
    if (this.runs !== null) {
      this.runs.forEachKey((bytes, offset, length) => grown.add(keyHashAt(bytes, offset, length)));
    } else this.tree.forEachKeyHash((hash) => grown.add(hash));
    this.keyFilter = grown;
  }

  /**
   * A new cursor. While the segment is writable, the cursor continues after the last key it
   * returned when records are inserted between its calls (it sees new keys ahead of it).
   * `forRead`: a reader's cursor (a query), which on a frozen segment counts as a read (see
   * {@link read}); false for a merge's or a dump's walk, which reads the segment once and asks
   * for no relayout.
   */
  cursor(reverse: boolean, forRead = true): RecordCursor {
    if (forRead && this.isFrozen && (this.relayoutPending || !this.relayoutAsked)) this.read();
    return this.runs !== null ? this.runs.cursor(reverse) : this.tree.cursor(reverse);
  }

  /**
   * A read of the frozen segment: the first one starts a relayout of a B+tree written out of key
   * order (see `BPlusTree.startRelayout`), and later ones take its result once it is done.
   *
   * Started by the first read rather than at `freeze`: the helper's copying competes with the
   * writer for the memory caches, and a load running meanwhile was 10-14% slower (harness
   * rand-insert children, ten alternating triples: medians 380k without relayouts, 328k with
   * them started at freeze); a segment that is merged to disk without being read (a write-only
   * load) never needs one.
   */
  private read(): void {
    if (!this.relayoutAsked) {
      this.relayoutAsked = true;
      if (this.relayout && this.runs === null) this.relayoutPending = this.tree.startRelayout();
    } else this.relayoutPending = this.tree.pollRelayout();
  }

  /**
   * Whether this frozen segment can be laid out again together with others (see
   * `TreeEngine`'s combined runs): a B+tree in shared memory that no read has asked to lay out
   * on its own yet.
   */
  get combinable(): boolean {
    return this.isFrozen && this.combinableOnceFrozen;
  }

  /** Whether the segment will be {@link combinable} once frozen (a B+tree in shared memory). */
  get combinableOnceFrozen(): boolean {
    return this.relayout && this.runs === null && !this.relayoutAsked;
  }

  /**
   * Marks this segment as laid out together with others (see {@link combinable}): from now on
   * it starts no relayout of its own. REQUIRES: {@link combinable}.
   */
  joinRelayout(): void {
    assert(this.combinable, `segment ${this.id} is not combinable`);
    this.relayoutAsked = true;
  }

  /**
   * The records to lay out together with other segments' (`BPlusTree.relayoutInput`), once
   * {@link joinRelayout} was called. Undefined if the tree cannot give them.
   */
  relayoutInput(): RelayoutInput | undefined {
    return this.runs === null ? this.tree.relayoutInput() : undefined;
  }

  /** Takes this segment's part of a relayout of several segments (`BPlusTree.applyLayout`). */
  applyLayout(buffers: ArrayBuffer[], loc: Int32Array, bytes: number): void {
    this.tree.applyLayout(buffers, loc, bytes);
  }

  /** Makes the segment read-only for good (it becomes a read-only segment). Idempotent. */
  freeze(): void {
    this.isFrozen = true;
    // The run tree's prefix order is built on first need; every reader of a read-only segment
    // (its queries, and the merge that writes it to disk) needs it, so it is built here, where
    // the writer moves the segment forward, rather than inside the first query after that.
    this.runs?.sortedRuns();
  }

  /**
   * What a read of the frozen segment does about its relayout (starts it, or takes its result:
   * see {@link read}), then whether one is still running. For tests.
   */
  pollRelayout(): boolean {
    if (this.isFrozen) this.read();
    return this.relayoutPending;
  }
}

/**
 * A read-only segment: a frozen {@link MutableSegment}, waiting in the read-only segment queue
 * for a merge into a disk segment. The type documents intent; `frozen` is true for it.
 */
export type ReadOnlySegment = MutableSegment;
