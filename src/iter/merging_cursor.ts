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
 * With few children a linear scan for the smallest key beats a heap (fewer comparisons and no
 * bookkeeping); above {@link HEAP_MIN_CHILDREN} a binary heap of child indices is used.
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

/** Children count from which the binary heap is used instead of a linear scan. */
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
  /** Index of the child whose record is current (valid only while `valid`). */
  private winner = -1;
  private started = false;
  private closed = false;
  /**
   * Heap path: copy of the current key, taken before any child moves: a child's key bytes are
   * only valid until it moves (disk cursors reuse their block buffers), and the heap moves the
   * winner first. The scan path needs no copy (it moves the winner last).
   */
  private currentKey = new Uint8Array(64);
  /** `currentKey` viewed at the current key's length (re-made only when the length changes). */
  private currentKeyView: Uint8Array = EMPTY;

  /**
   * `children`: one cursor per layer, newest first, all in direction `reverse`; the merging
   * cursor owns them (closes them). `compare`: the key order.
   */
  constructor(children: RecordCursor[], reverse: boolean, compare: Comparer) {
    assert(children.length <= CHILDREN_MAX, `too many layers: ${children.length}`);
    for (let i = 0; i < children.length; i++) {
      assert(children[i].reverse === reverse, "merging children must share the direction");
    }
    this.children = children.slice();
    this.reverse = reverse;
    this.compare = compare;
    this.dir = reverse ? -1 : 1;
    this.useHeap = children.length >= HEAP_MIN_CHILDREN;
    this.heap = new Int32Array(this.useHeap ? children.length : 0);
  }

  /** See {@link RecordCursor.seek}: every child seeks to the same target. */
  seek(target: Uint8Array | undefined, exclusive = false): boolean {
    assert(!this.closed, "seek on a closed merging cursor");
    this.started = true;
    const children = this.children;
    for (let i = 0; i < children.length; i++) children[i].seek(target, exclusive);
    if (this.useHeap) this.buildHeap();
    return this.pick();
  }

  /** See {@link RecordCursor.next}: advances every child positioned at the current key. */
  next(): boolean {
    if (!this.started) return this.seek(undefined);
    if (!this.valid) return false;
    if (this.useHeap) this.advanceHeap();
    else this.advanceScan();
    return this.pick();
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

  /** See {@link RecordCursor.copyValue}: the winning child's. */
  copyValue(): Uint8Array {
    return this.valid ? this.children[this.winner].copyValue() : new Uint8Array(0);
  }

  /** Not used: the value always comes from the winning child. */
  set value(_v: Uint8Array) {
    assert(false, "a merging cursor's value is read-only");
  }

  /** Copies the winning child's record into this cursor's fields (the value is read through). */
  private pick(): boolean {
    const winner = this.useHeap ? (this.heapSize > 0 ? this.heap[0] : -1) : this.scanWinner();
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

  /** Index of the valid child whose key comes first (lowest index on ties), or -1. */
  private scanWinner(): number {
    const children = this.children;
    const compare = this.compare;
    let best = -1;
    let bestKey = EMPTY;
    for (let i = 0; i < children.length; i++) {
      const c = children[i];
      if (!c.valid) continue;
      if (best < 0 || this.dir * compare(c.key, bestKey) < 0) {
        best = i;
        bestKey = c.key;
      }
    }
    return best;
  }

  /**
   * The current key, copied into a buffer that no child can overwrite. Keys of one length
   * reuse one view, so this allocates nothing per step for fixed-width keys.
   */
  private stableCurrentKey(): Uint8Array {
    const key = this.key;
    const n = key.length;
    if (this.currentKey.length < n) {
      this.currentKey = new Uint8Array(Math.max(n, this.currentKey.length * 2));
      this.currentKeyView = EMPTY;
    }
    this.currentKey.set(key);
    if (this.currentKeyView.length !== n || this.currentKeyView === EMPTY) {
      this.currentKeyView = this.currentKey.subarray(0, n);
    }
    return this.currentKeyView;
  }

  /**
   * Advances every child at the current key. The shadowed ones (at the winner's key, with a
   * higher index) move first and the winner last, so the winner's key bytes are still valid
   * for the comparisons and no copy of the key is needed. Children before the winner are not
   * at the current key (the winner is the lowest index among equal keys), so they are skipped.
   */
  private advanceScan(): void {
    const children = this.children;
    const w = this.winner;
    const top = children[w];
    const current = top.key;
    for (let i = w + 1; i < children.length; i++) {
      const c = children[i];
      if (c.valid && this.compare(c.key, current) === 0) c.next();
    }
    top.next();
  }

  private advanceHeap(): void {
    const children = this.children;
    const heap = this.heap;
    const current = this.stableCurrentKey();
    // The children at the current key are exactly the heap's leading entries with that key.
    for (let guard = children.length; guard > 0 && this.heapSize > 0; guard--) {
      const top = children[heap[0]];
      if (this.compare(top.key, current) !== 0) break;
      if (!top.next()) heap[0] = heap[--this.heapSize];
      this.siftDown(0);
    }
  }

  private buildHeap(): void {
    const children = this.children;
    let n = 0;
    for (let i = 0; i < children.length; i++) if (children[i].valid) this.heap[n++] = i;
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
