/**
 * The merging cursor: one ordered view over several layers (mutable segment, read-only segments,
 * disk segments), each given as a {@link RecordCursor}. Every distinct key is yielded once, with
 * the record of the newest layer that holds it; deletion markers and expired records are yielded
 * too (hiding them is `range_cursor.ts`'s job, merges need to see them).
 *
 * Invariants: children are ordered newest layer first, so among equal keys the lowest child index
 * wins; after a step, every child is either invalid or positioned strictly beyond the yielded key
 * in the cursor's direction, except those positioned at it (the winner and shadowed versions),
 * which the next step advances.
 *
 * A merge left with one child (a lone layer, such as a load's combined run with an empty mutable
 * segment left out; or the others done) steps that child alone: no comparison, no reordering.
 * Measured (`bench/scan_layers.ts`, a million records in one combined run): first passes
 * 3.9-4.3M records/s through the general step, 5.3-6.1M with this one (and about as fast as the
 * child's own cursor read without a merge around it).
 *
 * With few children, the valid ones are kept sorted by key (insertion order, with a flag per
 * adjacent pair that holds equal keys): a step re-places only the child that moved, comparing it
 * with the next ones until it fits. When the layers hold disjoint runs of the range (a sensor's
 * readings, time-sliced across segments; an ascending load), that is one comparison per record,
 * against the runner-up; random interleaving averages under two (a scan for the smallest key
 * and a comparison with the current key for each other child took about twice that). From
 * {@link HEAP_MIN_CHILDREN} children a binary heap of child indices is used.
 *
 * Auto-refresh: a child over a writable segment continues after its own last key when records are
 * inserted, so inserts ahead of that child's position are seen; inserts between this cursor's
 * position and a child's pending record are not (API.md §4 allows either).
 *
 * Called by the engine's read path (range, keys, iterator, count) and by merges.
 *
 * @module
 */

import { type Comparer, EMPTY, KIND_PUT, type RecordCursor } from "./record.ts";
import { assert } from "../util/assert.ts";

/** The unused path's index array (never written). */
const NO_INT32 = new Int32Array(0);

/** Children count from which the binary heap is used instead of the sorted order. */
export const HEAP_MIN_CHILDREN = 5;

/** Most children a merging cursor accepts (a bound on layers: far above any real tree). */
export const CHILDREN_MAX = 4096;

/** A {@link RecordCursor} over the union of `children`, newest record per key. */
export class MergingCursor implements RecordCursor {
  key: Uint8Array = EMPTY;
  opIndex = 0;
  kind = KIND_PUT;
  expiresAt = 0;
  valid = false;
  readonly reverse: boolean;
  private readonly children: RecordCursor[];
  private readonly compare: Comparer;
  /** +1 forward, -1 reverse: multiplies comparer results so "smaller" means "comes first". */
  private readonly dir: number;
  private readonly useHeap: boolean;
  /** Heap of child indices, ordered by (key in cursor direction, child index). */
  private readonly heap: Int32Array;
  private heapSize = 0;
  /**
   * Sorted path: indices of the valid children, ordered by (key in cursor direction, child
   * index); `ties[j]` is 1 when `order[j]` and `order[j + 1]` are at equal keys.
   */
  private readonly order: Int32Array;
  private readonly ties: Uint8Array;
  private ordered = 0;
  /** Index of the child whose record is current (valid only while `valid`). */
  private winner = -1;
  private started = false;
  private closed = false;
  /**
   * Heap path: copy of the current key, taken before any child moves: a child's key bytes are
   * only valid until it moves (disk cursors reuse their block buffers), and the heap moves the
   * winner first. The sorted path needs no copy (it never compares with the current key: the
   * tie flags say which children are at it).
   */
  private currentKey: Uint8Array = EMPTY;
  /** `currentKey` viewed at the current key's length (re-made only when the length changes). */
  private currentKeyView: Uint8Array = EMPTY;
  /** The end set by {@link limitEnd} (in cursor direction), or undefined for none. */
  private endKey: Uint8Array | undefined = undefined;
  private endInclusive = true;
  /**
   * Bit `i` set: child `i` (of the first 31) took the end itself ({@link RecordCursor.limitEnd}
   * returned true), so it is never compared with the end: a run tree's cursor knows where its
   * stream stops from one search at its seek, instead of a key comparison per record.
   */
  private limitedChildren = 0;

  /**
   * `children`: one cursor per layer, newest first, all in direction `reverse`; the merging
   * cursor owns them (closes them) and the array (keeps it: a range query opens one of these
   * per call). `compare`: the key order.
   */
  constructor(children: RecordCursor[], reverse: boolean, compare: Comparer) {
    if (children.length > CHILDREN_MAX) assert(false, `too many layers: ${children.length}`);
    for (let i = 0; i < children.length; i++) {
      assert(children[i].reverse === reverse, "merging children must share the direction");
    }
    this.children = children;
    this.reverse = reverse;
    this.compare = compare;
    this.dir = reverse ? -1 : 1;
    this.useHeap = children.length >= HEAP_MIN_CHILDREN;
    // Only one path's arrays are used (a range query opens one of these per call).
    this.heap = this.useHeap ? new Int32Array(children.length) : NO_INT32;
    this.order = this.useHeap ? NO_INT32 : new Int32Array(children.length);
    this.ties = this.useHeap ? EMPTY : new Uint8Array(children.length);
  }

  /** See {@link RecordCursor.seek}: every child seeks to the same target. */
  seek(target: Uint8Array | undefined, exclusive = false): boolean {
    assert(!this.closed, "seek on a closed merging cursor");
    this.started = true;
    const children = this.children;
    for (let i = 0; i < children.length; i++) children[i].seek(target, exclusive);
    if (this.useHeap) this.buildHeap();
    else this.buildOrder();
    return this.pick();
  }

  /** See {@link RecordCursor.next}: advances every child positioned at the current key. */
  next(): boolean {
    if (!this.started) return this.seek(undefined);
    if (!this.valid) return false;
    if (this.ordered === 1) {
      // One child left in the merge (a lone layer, or the others done): it steps alone.
      const w = this.winner;
      const c = this.children[w];
      c.next();
      if (this.out(w)) {
        this.ordered = 0;
        this.winner = -1;
        this.valid = false;
        return false;
      }
      this.key = c.key;
      this.opIndex = c.opIndex;
      this.kind = c.kind;
      this.expiresAt = c.expiresAt;
      return true;
    }
    if (this.useHeap) this.advanceHeap();
    else this.advanceSorted();
    return this.pick();
  }

  /**
   * See {@link RecordCursor.limitEnd}. A child positioned past the end leaves the merge until
   * the next seek (as an exhausted child does), so the records of the others are not compared
   * with its key: a one-hour window of one sensor in the oldest layer, say, is read without a
   * comparison per record against the newer layers' next keys (later readings, or the next
   * sensor's). Passed on to every child. Always true.
   */
  limitEnd(key: Uint8Array, inclusive: boolean): boolean {
    this.endKey = key;
    this.endInclusive = inclusive;
    const children = this.children;
    let mask = 0;
    for (let i = 0; i < children.length && i < 31; i++) {
      if (children[i].limitEnd?.(key, inclusive) === true) mask |= 1 << i;
    }
    this.limitedChildren = mask;
    return true;
  }

  /** Closes every child. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.valid = false;
    const children = this.children;
    for (let i = 0; i < children.length; i++) children[i].close();
  }

  /**
   * The winning child's value, read through rather than copied at each step: disk cursors
   * materialize values lazily, so key-only scans (`keys()`, `count()`) and records that a merge
   * shadows never pay for them. Valid until this cursor moves, like the child's.
   */
  get value(): Uint8Array {
    return this.valid ? this.children[this.winner].value : EMPTY;
  }

  /** Not used: the value always comes from the winning child. */
  set value(_v: Uint8Array) {
    assert(false, "a merging cursor's value is read-only");
  }

  /** See {@link RecordCursor.copyValue}: the winning child's. */
  copyValue(): Uint8Array {
    return this.valid ? this.children[this.winner].copyValue() : new Uint8Array(0);
  }

  /** Copies the winning child's record into this cursor's fields (the value is read through). */
  private pick(): boolean {
    const winner = this.useHeap
      ? (this.heapSize > 0 ? this.heap[0] : -1)
      : (this.ordered > 0 ? this.order[0] : -1);
    this.winner = winner;
    if (winner < 0) {
      this.valid = false;
      return false;
    }
    const c = this.children[winner];
    this.key = c.key;
    this.opIndex = c.opIndex;
    this.kind = c.kind;
    this.expiresAt = c.expiresAt;
    this.valid = true;
    return true;
  }

  /**
   * Whether child `i` is off the merge: exhausted, or positioned past the end (see
   * {@link limitEnd}; a child that ends its own stream there is only ever exhausted).
   */
  private out(i: number): boolean {
    const c = this.children[i];
    if (!c.valid) return true;
    const end = this.endKey;
    if (end === undefined || (i < 31 && ((this.limitedChildren >>> i) & 1) === 1)) return false;
    const d = this.dir * this.compare(c.key, end);
    return d > 0 || (d === 0 && !this.endInclusive);
  }

  /**
   * The current key, copied into a buffer that no child can overwrite. Keys of one length
   * reuse one view, so this allocates nothing per step for fixed-width keys.
   */
  private stableCurrentKey(): Uint8Array {
    const key = this.key;
    const n = key.length;
    if (this.currentKey.length < n) {
      this.currentKey = new Uint8Array(Math.max(n, 64, this.currentKey.length * 2));
      this.currentKeyView = EMPTY;
    }
    this.currentKey.set(key);
    if (this.currentKeyView.length !== n || this.currentKeyView === EMPTY) {
      this.currentKeyView = this.currentKey.subarray(0, n);
    }
    return this.currentKeyView;
  }

  /**
   * Sorted path: advances every child at the current key and restores the order. The common
   * case is a winner with no shadowed versions: it moves, then is compared with the children
   * after it until it fits (one comparison while it stays first); an exhausted winner just
   * leaves. Shadowed versions (a tie group at the front) are rare: all of them move and the
   * order is rebuilt.
   */
  private advanceSorted(): void {
    const children = this.children;
    const order = this.order;
    const ties = this.ties;
    const n = this.ordered;
    if (n > 1 && ties[0] === 1) {
      let g = 1;
      while (g < n && ties[g - 1] === 1) g++;
      for (let j = 0; j < g; j++) children[order[j]].next();
      this.buildOrder();
      return;
    }
    const w = order[0];
    const top = children[w];
    top.next();
    if (this.out(w)) {
      for (let j = 1; j < n; j++) {
        order[j - 1] = order[j];
        ties[j - 1] = ties[j];
      }
      this.ordered = n - 1;
      return;
    }
    const key = top.key;
    const dir = this.dir;
    const compare = this.compare;
    // Invariant: order[0 .. i) hold the children shifted ahead of w, with their ties; w goes at
    // i or later; `tie` is whether w's key equals the one at i - 1.
    let i = 0;
    let tie = 0;
    for (; i + 1 < n; i++) {
      const y = order[i + 1];
      const d = dir * compare(key, children[y].key);
      if (d < 0 || (d === 0 && w < y)) {
        ties[i] = d === 0 ? 1 : 0;
        break;
      }
      order[i] = y;
      if (i > 0) ties[i - 1] = ties[i];
      tie = d === 0 ? 1 : 0;
    }
    order[i] = w;
    if (i > 0) ties[i - 1] = tie;
  }

  /** Sorts the valid children into `order` (insertion, by index: equal keys keep index order). */
  private buildOrder(): void {
    const children = this.children;
    const order = this.order;
    const ties = this.ties;
    const dir = this.dir;
    const compare = this.compare;
    let n = 0;
    for (let x = 0; x < children.length; x++) {
      if (this.out(x)) continue;
      const key = children[x].key;
      let j = n;
      let tie = 0;
      while (j > 0) {
        const d = dir * compare(key, children[order[j - 1]].key);
        if (d >= 0) {
          tie = d === 0 ? 1 : 0;
          break;
        }
        order[j] = order[j - 1];
        ties[j] = ties[j - 1];
        j--;
      }
      order[j] = x;
      ties[j] = 0; // x's successor (if any) was shifted past it: strictly after
      if (j > 0) ties[j - 1] = tie;
      n++;
    }
    this.ordered = n;
  }

  private advanceHeap(): void {
    const children = this.children;
    const heap = this.heap;
    const current = this.stableCurrentKey();
    // The children at the current key are exactly the heap's leading entries with that key.
    for (let guard = children.length; guard > 0 && this.heapSize > 0; guard--) {
      const t = heap[0];
      const top = children[t];
      if (this.compare(top.key, current) !== 0) break;
      top.next();
      if (this.out(t)) heap[0] = heap[--this.heapSize];
      this.siftDown(0);
    }
  }

  private buildHeap(): void {
    const children = this.children;
    let n = 0;
    for (let i = 0; i < children.length; i++) if (!this.out(i)) this.heap[n++] = i;
    this.heapSize = n;
    for (let i = (n >>> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  /** True when child `a` comes before child `b`. */
  private before(a: number, b: number): boolean {
    const c = this.dir * this.compare(this.children[a].key, this.children[b].key);
    return c < 0 || (c === 0 && a < b);
  }

  private siftDown(i: number): void {
    const heap = this.heap;
    const n = this.heapSize;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) return;
      const r = l + 1;
      const m = r < n && this.before(heap[r], heap[l]) ? r : l;
      if (!this.before(heap[m], heap[i])) return;
      const t = heap[i];
      heap[i] = heap[m];
      heap[m] = t;
      i = m;
    }
  }
}
