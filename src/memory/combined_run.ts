/**
 * A combined run: the newest record of each key over several read-only segments, in key order,
 * in flat arrays, for cursors. The engine has the helper thread lay the records of the
 * read-only segments out again together (`relayoutOnHelper` in `util/helper_thread.ts`: their
 * bytes copied in the merged key order, the segments' slots pointed at the copies) and list the
 * winners; a range query then reads this one layer where it would merge one cursor per segment.
 * Measured (`bench/scan_layers.ts`, a million random 16/100-byte records): a merge over four
 * in-memory layers cost ~170 ns a record where one key-ordered layer costs ~50.
 *
 * Point reads still go to the segments (their hash indexes and key filters); merges to disk
 * read the segments too. The run holds no bytes of its own beyond keys and numbers: values are
 * read from the combine's buffers, which the segments share.
 *
 * Invariants: keys strictly ascending; deletion markers and expired records are kept (hiding
 * them is the range cursor's job, and a marker must still shadow older layers); the run never
 * changes.
 *
 * Called by the engine's read path (`openCursor`).
 *
 * @module
 */

import { EMPTY, KIND_PUT, type RecordCursor } from "../iter/record.ts";
import type { CombinedRecords } from "../util/helper_thread.ts";
import { copyOf } from "../util/bytes.ts";

/** The newest record of each key over some read-only segments (see the module comment). */
export class CombinedRun {
  /** Records held (deletion markers included). */
  readonly recordCount: number;
  /** @internal The records' arrays. */
  readonly records: CombinedRecords;
  /** @internal The buffers the values are in, as byte arrays. */
  readonly bytes: Uint8Array[];

  /** The run of `records`, whose values are in `buffers`. */
  constructor(records: CombinedRecords, buffers: ArrayBuffer[]) {
    this.records = records;
    this.recordCount = records.count;
    this.bytes = buffers.map((b) => new Uint8Array(b));
  }

  /** Bytes of memory of the run's own arrays (keys, ends, value places, numbers, kinds). */
  memoryBytes(): number {
    const r = this.records;
    return r.keys.byteLength + r.keyEnds.byteLength + r.values.byteLength + r.num.byteLength + r.kinds.byteLength;
  }

  /** A new cursor in the given direction. */
  cursor(reverse: boolean): RecordCursor {
    cursorsOpened++;
    return new CombinedRunCursor(this, reverse);
  }
}

let cursorsOpened = 0;

/** Cursors opened over combined runs in this process (tests: which layers a query read). */
export function combinedRunCursorsOpened(): number {
  return cursorsOpened;
}

/** memcmp order of `keys[start..end)` and `target`. */
function compareAt(keys: Uint8Array, start: number, end: number, target: Uint8Array): number {
  const al = end - start;
  const bl = target.length;
  const n = al < bl ? al : bl;
  for (let i = 0; i < n; i++) {
    const d = keys[start + i] - target[i];
    if (d !== 0) return d;
  }
  return al - bl;
}

/** A cursor over a {@link CombinedRun}: an index into its arrays. */
class CombinedRunCursor implements RecordCursor {
  key: Uint8Array = EMPTY;
  opIndex = 0;
  kind = KIND_PUT;
  expiresAt = 0;
  valid = false;
  readonly reverse: boolean;
  private readonly run: CombinedRun;
  private readonly count: number;
  private idx = -1;
  private started = false;
  private keyBuf: Uint8Array = EMPTY;
  private valueView: Uint8Array = EMPTY;
  private valueStale = true;

  constructor(run: CombinedRun, reverse: boolean) {
    this.run = run;
    this.count = run.recordCount;
    this.reverse = reverse;
  }

  /** See {@link RecordCursor.seek}: a binary search over the keys. */
  seek(target: Uint8Array | undefined, exclusive = false): boolean {
    this.started = true;
    if (target === undefined) return this.at(this.reverse ? this.count - 1 : 0);
    // First index whose key is > target (strict) or >= target.
    const strict = this.reverse !== exclusive;
    const { keys, keyEnds } = this.run.records;
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareAt(keys, mid === 0 ? 0 : keyEnds[mid - 1], keyEnds[mid], target);
      if (c > 0 || (c === 0 && !strict)) hi = mid;
      else lo = mid + 1;
    }
    // Forward: that index. Reverse: the one before it (the last key <= target, or < target).
    return this.at(this.reverse ? lo - 1 : lo);
  }

  /** See {@link RecordCursor.next}. */
  next(): boolean {
    if (!this.started) return this.seek(undefined);
    if (!this.valid) return false;
    return this.at(this.reverse ? this.idx - 1 : this.idx + 1);
  }

  /** The current value, a view made on first read at a position. Valid until the cursor moves. */
  get value(): Uint8Array {
    if (!this.valid) return EMPTY;
    if (this.valueStale) {
      const v = this.run.records.values;
      const b = 3 * this.idx;
      this.valueView = new Uint8Array(this.run.bytes[v[b]].buffer, v[b + 1], v[b + 2]);
      this.valueStale = false;
    }
    return this.valueView;
  }

  /** Not used: the value always comes from the run. */
  set value(_v: Uint8Array) {
    throw new Error("a combined run cursor's value is read-only");
  }

  /** See {@link RecordCursor.copyValue}. */
  copyValue(): Uint8Array {
    if (!this.valid) return new Uint8Array(0);
    const v = this.run.records.values;
    const b = 3 * this.idx;
    const off = v[b + 1];
    return copyOf(this.run.bytes[v[b]], off, off + v[b + 2]);
  }

  /** Makes the cursor invalid. */
  close(): void {
    this.valid = false;
  }

  /** Positions at record `i` (invalid outside the run), its key copied into the cursor's buffer. */
  private at(i: number): boolean {
    if (i < 0 || i >= this.count) {
      this.valid = false;
      return false;
    }
    this.idx = i;
    const r = this.run.records;
    const start = i === 0 ? 0 : r.keyEnds[i - 1];
    const len = r.keyEnds[i] - start;
    let key = this.key;
    if (key.length !== len) {
      // As the B+tree cursor: one buffer, sized to the longest key, viewed at each length.
      if (this.keyBuf.length < len || this.keyBuf === EMPTY) this.keyBuf = new Uint8Array(len);
      key = this.key = len === this.keyBuf.length ? this.keyBuf : this.keyBuf.subarray(0, len);
    }
    const keys = r.keys;
    for (let j = 0; j < len; j++) key[j] = keys[start + j];
    this.opIndex = r.num[2 * i];
    this.expiresAt = r.num[2 * i + 1];
    this.kind = r.kinds[i];
    this.valueStale = true;
    this.valid = true;
    return true;
  }
}
