/**
 * Range tombstones: `deleteRange` writes one record that hides every record of a key range with
 * a smaller opIndex, in every layer, at a cost that does not depend on how many keys it hides.
 *
 * Rule: a record (key k, opIndex o) is hidden when some tombstone [start, end) with
 * start <= k < end has an opIndex above o. opIndexes rise with time and newer layers hold newer
 * writes, so the rule needs no layer order.
 *
 * `TombstoneSet` is immutable: the tombstones are cut into disjoint fragments, each with the
 * highest opIndex of the tombstones covering it, so a lookup is one binary search. An empty
 * `end` means "no upper end".
 *
 *   tombstones  [a ---------- e) op 5      [c --- g) op 9
 *   fragments   [a - c) 5   [c - e) 9   [e - g) 9
 *
 * @module
 */
import { assert } from "../util/assert.ts";
import { compareBytes } from "../util/bytes.ts";
import { EMPTY, KIND_DELETE, type RecordCursor } from "./record.ts";

/** One range deletion: keys in [start, end) written before `opIndex` are deleted. */
export interface RangeTombstone {
  start: Uint8Array;
  /** Exclusive upper end; empty = unbounded. */
  end: Uint8Array;
  opIndex: number;
}

/** Compares two ends where empty means +infinity. */
function compareEnd(a: Uint8Array, b: Uint8Array): number {
  if (a.length === 0) return b.length === 0 ? 0 : 1;
  if (b.length === 0) return -1;
  return compareBytes(a, b);
}

/** An immutable, searchable set of range tombstones. */
export class TombstoneSet {
  /** The tombstones as given (for persistence). */
  readonly tombstones: readonly RangeTombstone[];
  /** Fragment starts, ascending; fragment i is [starts[i], ends[i]). */
  readonly #starts: Uint8Array[] = [];
  readonly #ends: Uint8Array[] = [];
  readonly #ops: number[] = [];

  /** The empty set. */
  static readonly EMPTY: TombstoneSet = new TombstoneSet([]);

  constructor(tombstones: readonly RangeTombstone[]) {
    this.tombstones = tombstones;
    if (tombstones.length > 0) this.#fragment();
  }

  /** Number of tombstones. */
  get size(): number {
    return this.tombstones.length;
  }

  /** A set with `more` added. */
  with(more: readonly RangeTombstone[]): TombstoneSet {
    return more.length === 0 ? this : new TombstoneSet([...this.tombstones, ...more]);
  }

  #fragment(): void {
    // Every start and end is a cut point; each piece between cut points takes the highest
    // opIndex of the tombstones that cover it.
    const cuts: Uint8Array[] = [];
    let unbounded = false;
    for (const t of this.tombstones) {
      cuts.push(t.start);
      if (t.end.length === 0) unbounded = true;
      else cuts.push(t.end);
    }
    cuts.sort(compareBytes);
    const points: Uint8Array[] = [];
    for (const c of cuts) if (points.length === 0 || compareBytes(points[points.length - 1], c) !== 0) points.push(c);
    const pieceCount = points.length - (unbounded ? 0 : 1);
    for (let i = 0; i < pieceCount; i++) {
      const start = points[i];
      const end = i + 1 < points.length ? points[i + 1] : EMPTY;
      let op = 0;
      for (const t of this.tombstones) {
        if (compareBytes(t.start, start) <= 0 && compareEnd(end, t.end) <= 0 && t.opIndex > op) op = t.opIndex;
      }
      if (op === 0) continue;
      this.#starts.push(start);
      this.#ends.push(end);
      this.#ops.push(op);
    }
  }

  /** The highest opIndex of a tombstone covering `key`, or 0. */
  coveringOpIndex(key: Uint8Array): number {
    const starts = this.#starts;
    let lo = 0;
    let hi = starts.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (compareBytes(starts[mid], key) <= 0) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found < 0) return 0;
    const end = this.#ends[found];
    return end.length === 0 || compareBytes(key, end) < 0 ? this.#ops[found] : 0;
  }

  /** True when some tombstone overlaps [first, last] (inclusive key range). */
  overlaps(first: Uint8Array, last: Uint8Array): boolean {
    for (const t of this.tombstones) {
      if (compareBytes(t.start, last) <= 0 && (t.end.length === 0 || compareBytes(first, t.end) < 0)) return true;
    }
    return false;
  }
}

/**
 * Wraps a cursor so that records hidden by a range tombstone read as deletion markers (the
 * range cursor above then skips them unless `includeDeleted`).
 */
export class TombstoneCursor implements RecordCursor {
  key: Uint8Array = EMPTY;
  opIndex = 0;
  kind = 0;
  expiresAt = 0;
  valid = false;
  readonly reverse: boolean;
  readonly #inner: RecordCursor;
  readonly #set: TombstoneSet;
  /** The current record is covered by a tombstone (it reads as a deletion marker). */
  #covered = false;

  constructor(inner: RecordCursor, set: TombstoneSet) {
    this.#inner = inner;
    this.#set = set;
    this.reverse = inner.reverse;
  }

  seek(target: Uint8Array | undefined, exclusive?: boolean): boolean {
    this.#inner.seek(target, exclusive);
    return this.#load();
  }

  next(): boolean {
    this.#inner.next();
    return this.#load();
  }

  /** See {@link RecordCursor.limitEnd}: the inner cursor's (this one only hides records). */
  limitEnd(key: Uint8Array, inclusive: boolean): boolean {
    return this.#inner.limitEnd?.(key, inclusive) ?? false;
  }

  /** The inner value, read through (lazily), or EMPTY for a covered record. */
  get value(): Uint8Array {
    return this.valid && !this.#covered ? this.#inner.value : EMPTY;
  }

  /** Not used: the value always comes from the inner cursor. */
  set value(_v: Uint8Array) {
    assert(false, "a tombstone cursor's value is read-only");
  }

  /** See {@link RecordCursor.copyValue}: the inner cursor's, or empty for a covered record. */
  copyValue(): Uint8Array {
    return this.valid && !this.#covered ? this.#inner.copyValue() : new Uint8Array(0);
  }

  #load(): boolean {
    const c = this.#inner;
    this.valid = c.valid;
    if (!c.valid) return false;
    this.key = c.key;
    this.opIndex = c.opIndex;
    this.#covered = this.#set.coveringOpIndex(c.key) > c.opIndex;
    if (this.#covered) {
      this.kind = KIND_DELETE;
      this.expiresAt = 0;
    } else {
      this.kind = c.kind;
      this.expiresAt = c.expiresAt;
    }
    return true;
  }

  close(): void {
    this.#inner.close();
  }
}
