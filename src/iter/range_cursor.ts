/**
 * The range cursor: bounds and visibility over a merged view. It turns the raw record stream of a
 * {@link RecordCursor} (usually a {@link MergingCursor}) into what `range()`, `keys()`, `count()`
 * and the public iterator show: records inside the lower/upper bounds, deletion markers hidden
 * (unless `includeDeleted`), expired records hidden, at most `limit` records.
 *
 * Time: `now` is either a fixed epoch-ms number (snapshots: visibility frozen at creation) or a
 * clock function (default `Date.now`), read at most once per `seek()`/`next()` call and only when
 * a record with an expiry is met, so a long-lived default iterator hides records as they expire.
 *
 * Invariants: while `valid`, the current record lies within the bounds, is visible at the step's
 * time, and is one of the first `limit` records yielded since the last `seek`; once the inner
 * cursor leaves the bounds the range cursor stays exhausted until the next `seek`.
 *
 * Prefixes are the caller's business: prefix P is lower {P, inclusive} and upper
 * {prefixSuccessor(P), exclusive} (no upper bound when the successor is undefined).
 *
 * Called by the engine's read path and the public iterator in `src/api`.
 *
 * @module
 */

import { type Comparer, EMPTY, KIND_DELETE, KIND_PUT, type RecordCursor } from "./record.ts";
import { assert } from "../util/assert.ts";

/** One end of a key range. */
export interface Bound {
  /** Encoded key bytes. */
  key: Uint8Array;
  /** Whether a record with exactly this key is inside the range. */
  inclusive: boolean;
}

/** Options of a {@link RangeCursor}; every field is optional. */
export interface RangeOptions {
  /** Smallest keys allowed (absent: unbounded). */
  lower?: Bound;
  /** Largest keys allowed (absent: unbounded). */
  upper?: Bound;
  /** Most records yielded after each seek (absent: unlimited). A non-negative integer. */
  limit?: number;
  /** Yield deletion markers too (absent: false, they are skipped). */
  includeDeleted?: boolean;
  /**
   * Epoch ms against which expiry is judged: a fixed number (snapshot), or a clock read once per
   * step. Absent: `Date.now`. A record is expired when `expiresAt !== 0 && expiresAt <= now`.
   */
  now?: number | (() => number);
}

/** A {@link RecordCursor} that shows only visible records of `inner` inside the bounds. */
export class RangeCursor implements RecordCursor {
  key: Uint8Array = EMPTY;
  opIndex = 0;
  kind = KIND_PUT;
  expiresAt = 0;
  valid = false;
  readonly reverse: boolean;
  /** Records yielded since the last seek. */
  yielded = 0;
  private readonly inner: RecordCursor;
  private readonly compare: Comparer;
  private readonly lowerKey: Uint8Array | undefined;
  private readonly lowerInclusive: boolean;
  private readonly upperKey: Uint8Array | undefined;
  private readonly upperInclusive: boolean;
  private readonly limit: number;
  private readonly includeDeleted: boolean;
  private readonly clock: (() => number) | null;
  private readonly fixedNow: number;
  /** Whether `settle` compares keys with the end bound (false: the inner cursor stops there). */
  private readonly checkEnd: boolean;
  private started = false;

  /** Wraps `inner` (owned: closed with this cursor); direction is `inner.reverse`. */
  constructor(inner: RecordCursor, compare: Comparer, options: RangeOptions = {}) {
    const limit = options.limit ?? Infinity;
    if (!(limit === Infinity || (Number.isInteger(limit) && limit >= 0))) assert(false, `bad limit ${limit}`);
    this.inner = inner;
    this.compare = compare;
    this.reverse = inner.reverse;
    this.lowerKey = options.lower?.key;
    this.lowerInclusive = options.lower?.inclusive ?? true;
    this.upperKey = options.upper?.key;
    this.upperInclusive = options.upper?.inclusive ?? true;
    this.limit = limit;
    this.includeDeleted = options.includeDeleted ?? false;
    const now = options.now ?? Date.now;
    this.clock = typeof now === "function" ? now : null;
    this.fixedNow = typeof now === "number" ? now : 0;
    const endKey = this.reverse ? this.lowerKey : this.upperKey;
    const endInclusive = this.reverse ? this.lowerInclusive : this.upperInclusive;
    this.checkEnd = endKey !== undefined && inner.limitEnd?.(endKey, endInclusive) !== true;
  }

  /**
   * See {@link RecordCursor.seek}; the target is clamped into the bounds (a target before the
   * start bound seeks to the start bound). Resets the limit count.
   */
  seek(target: Uint8Array | undefined, exclusive = false): boolean {
    this.started = true;
    this.yielded = 0;
    const startKey = this.reverse ? this.upperKey : this.lowerKey;
    const startInclusive = this.reverse ? this.upperInclusive : this.lowerInclusive;
    if (startKey !== undefined) {
      const c = target === undefined ? -1 : this.dirCompare(target, startKey);
      if (c < 0) {
        target = startKey;
        exclusive = !startInclusive;
      } else if (c === 0) {
        exclusive = exclusive || !startInclusive;
      }
    }
    this.inner.seek(target, exclusive);
    return this.settle();
  }

  /** See {@link RecordCursor.next}. */
  next(): boolean {
    if (!this.started) return this.seek(undefined);
    if (!this.valid) return false;
    if (this.yielded >= this.limit) {
      // Done: the inner cursor need not step (a step reads ahead, and a merge of several
      // layers advances each of them).
      this.valid = false;
      return false;
    }
    this.inner.next();
    return this.settle();
  }

  /**
   * The current value, read through from the inner cursor (which is on the current record
   * while this cursor is valid), so that a caller that never reads it never materializes it.
   */
  get value(): Uint8Array {
    return this.valid ? this.inner.value : EMPTY;
  }

  /** Not used: the value always comes from the inner cursor. */
  set value(_v: Uint8Array) {
    assert(false, "a range cursor's value is read-only");
  }

  /** See {@link RecordCursor.copyValue}: the inner cursor's. */
  copyValue(): Uint8Array {
    return this.valid ? this.inner.copyValue() : new Uint8Array(0);
  }

  /** Closes the inner cursor. Idempotent. */
  close(): void {
    this.valid = false;
    this.inner.close();
  }

  /** Compares in cursor direction: negative when `a` comes before `b`. */
  private dirCompare(a: Uint8Array, b: Uint8Array): number {
    const c = this.compare(a, b);
    return this.reverse ? -c : c;
  }

  /** True when `key` lies past the end bound (upper going forward, lower going reverse). */
  private pastEnd(key: Uint8Array): boolean {
    const endKey = this.reverse ? this.lowerKey : this.upperKey;
    if (endKey === undefined) return false;
    const c = this.dirCompare(key, endKey);
    return c > 0 || (c === 0 && !(this.reverse ? this.lowerInclusive : this.upperInclusive));
  }

  /** Moves the inner cursor to the first visible in-bounds record, or ends the range. */
  private settle(): boolean {
    const inner = this.inner;
    let now = -1;
    while (inner.valid && this.yielded < this.limit) {
      if (this.checkEnd && this.pastEnd(inner.key)) break;
      const hidden = (inner.kind === KIND_DELETE && !this.includeDeleted) ||
        (inner.expiresAt !== 0 && inner.expiresAt <= (now < 0 ? (now = this.readNow()) : now));
      if (!hidden) {
        this.key = inner.key;
        this.opIndex = inner.opIndex;
        this.kind = inner.kind;
        this.expiresAt = inner.expiresAt;
        this.yielded++;
        this.valid = true;
        return true;
      }
      inner.next();
    }
    this.valid = false;
    return false;
  }

  private readNow(): number {
    return this.clock === null ? this.fixedNow : this.clock();
  }
}
