/**
 * The record model and the one iterator contract that every layer implements (mutable segment,
 * read-only segment, disk segment, merging iterator). Written once here, like Pebble's
 * `InternalIterator`.
 *
 * A record is: encoded key bytes, encoded value bytes, the opIndex of the write that made it, a
 * kind (put or deletion marker) and an expiry time (epoch ms, 0 = never). A segment holds at most
 * one record per key: the newest write of that key that reached the segment. Layers are ordered
 * newest first (mutable, read-only newest..oldest, disk segment, bottom segments newest..oldest),
 * so for the same key a higher layer always wins; opIndex breaks no ties inside the read path.
 *
 * @module
 */

import type { KeyFilter } from "../memory/key_filter.ts";

/** A live value. */
export const KIND_PUT = 0;
/** A deletion marker: hides every older version of the key. */
export const KIND_DELETE = 1;

/**
 * WAL op kind of a range deletion (key = start, value = end; empty end = unbounded). Never a
 * segment record: replay turns it into a range tombstone.
 */
export const KIND_RANGE_DELETE = 2;

/** One record, as a plain mutable holder (reused to avoid allocation on hot paths). */
export interface RecordSlot {
  key: Uint8Array;
  value: Uint8Array;
  opIndex: number;
  kind: number;
  /** Epoch milliseconds after which the record reads as absent; 0 means never. */
  expiresAt: number;
  /**
   * Set by point reads (`SegmentReader.get`): true when `value` is a fresh copy that nothing
   * else references, so the reader may hand it out as is. Cursors leave it unset.
   */
  valueIsCopy?: boolean;
}

/** A fresh empty slot. */
export function newSlot(): RecordSlot {
  return { key: EMPTY, value: EMPTY, opIndex: 0, kind: KIND_PUT, expiresAt: 0, valueIsCopy: false };
}

/** The shared empty byte string. */
export const EMPTY: Uint8Array = new Uint8Array(0);

/**
 * The iterator contract. A cursor moves in one direction, fixed when it is created:
 * forward (ascending key order) or reverse (descending).
 *
 * - `seek(target, exclusive)`: forward: positions at the first key >= target (> with
 *   `exclusive`); reverse: the last key <= target (< with `exclusive`). `undefined` target:
 *   the first record in the cursor's direction. Returns `valid`.
 * - `next()`: moves one record in the cursor's direction. Returns `valid`. Calling it before
 *   any `seek` is the same as `seek(undefined)`.
 * - While `valid`, the fields `key`, `value`, `opIndex`, `kind`, `expiresAt` describe the
 *   current record. The byte arrays stay valid until the cursor moves (copy to keep).
 *   `value` may be an accessor that materializes the value on first read (disk cursors), and
 *   cursors that wrap another one read it through instead of copying it, so a caller that
 *   never reads `value` (key-only scans, counts, shadowed versions in a merge) never pays
 *   for it. Wrapping cursors therefore treat `value` as read-only. `copyValue()` returns a copy
 *   the caller keeps.
 * - `close()` releases what the cursor pins (segment references). Idempotent.
 *
 * A cursor over a segment that is still being written (the mutable segment) must stay correct
 * when records are inserted between calls: it continues after the last key it returned.
 */
export interface RecordCursor extends RecordSlot {
  readonly reverse: boolean;
  valid: boolean;
  seek(target: Uint8Array | undefined, exclusive?: boolean): boolean;
  next(): boolean;
  /**
   * A fresh copy of the current value that the caller owns (an empty array when not `valid`).
   * Cheaper than copying `value`: a cursor copies straight from where the bytes are, without
   * making a view first.
   */
  copyValue(): Uint8Array;
  close(): void;
  /**
   * Optional: asks the cursor to end its stream at `key` (the end in its direction: the largest
   * key forward, the smallest in reverse; `inclusive`: whether a record at `key` is still in).
   * Returns true when the cursor will never again be valid on a record past it, until a later
   * call changes the end; then the caller need not check the end itself. A cursor that merges
   * layers drops a layer from the merge once that layer is past the end, so the records it
   * yields are no longer compared with that layer's.
   */
  limitEnd?(key: Uint8Array, inclusive: boolean): boolean;
}

/** A key comparer: negative, zero or positive, in memcmp order of encoded keys. */
export type Comparer = (a: Uint8Array, b: Uint8Array) => number;

/**
 * A segment as the read path sees it: an ordered record set with point lookup and cursors.
 * Implemented by the mutable segment, read-only segments and disk segments.
 */
export interface SegmentReader {
  /** Unique id within the tree (also names its files). */
  readonly id: number;
  /** Records held (including deletion markers). */
  readonly recordCount: number;
  /**
   * Fills `out` with the record for `key` and returns true, or returns false if absent.
   * `hash`, when given, is `keyHash(key)` (readers that hash keys need not do it again).
   */
  get(key: Uint8Array, out: RecordSlot, hash?: number): boolean;
  /**
   * Key hashes of every record held, when the segment keeps them: `get` of a key whose
   * `keyHash` the filter rules out would return false, so readers may skip the call.
   */
  readonly keyFilter?: KeyFilter;
  /** A new cursor in the given direction. */
  cursor(reverse: boolean): RecordCursor;
}
