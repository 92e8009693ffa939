/**
 * The sorted in-memory map under the mutable segment: a B+tree keyed by encoded key bytes, ordered
 * by a pluggable {@link Comparer}. Chosen over a skip list by measurement (numbers in
 * `bench/memtable_bench.ts`): about 3x cheaper upserts and gets, 10x faster scans.
 *
 * Shape:
 * - Leaves hold up to `fanout` records in flat parallel arrays, no object per record: `kv` =
 *   [key0, value0, key1, value1, ...], `num` (Float64Array) = [opIndex0, expiresAt0, kind0, ...].
 *   Leaves are doubly linked for cursors.
 * - Branches hold up to `fanout` children; `keys[i]` is the lower bound of `children[i]` (keys[0]
 *   of the leftmost branch of each level is unused). Separators are the retained key arrays
 *   themselves (never copied; the caller promised never to mutate them).
 * - Leaves and branches cache the first 8 bytes of each key as two big-endian u32 (`pfx`).
 *   Binary search compares those numbers first and calls the comparer only on a tie, so most
 *   steps touch no key object: that removes most cache misses, which dominate the cost. This
 *   relies on the {@link Comparer} contract: the comparer agrees with memcmp.
 * - Nothing is ever removed (deletion markers are records), so leaves are never empty except the
 *   root leaf of an empty tree, and the leftmost leaf is the same object for life.
 *
 * Invariants: keys strictly ascending along the leaf chain; a non-leftmost node's first key equals
 * its separator in the parent; `modCount` changes exactly when a new key is inserted (cursors
 * re-seek then); overwrites change the record in place and keep the stored key array.
 *
 * Splits: a full leaf splits in half, except when the insert lands at its end (or start): then the
 * new record starts a node of its own and the full side stays full. Ascending appends and
 * per-sensor time-series appends thus fill leaves completely. Appends after the largest key skip
 * the descent (`tail` fast path).
 *
 * Called by `mutable_segment.ts`.
 *
 * @module
 */

import {
  type Comparer,
  EMPTY,
  KIND_PUT,
  type RecordCursor,
  type RecordSlot,
} from "../iter/record.ts";
import { assert } from "../util/assert.ts";

/** Default records per leaf and children per branch (64 measured best among 32/64/128). */
export const DEFAULT_FANOUT = 64;

/** Bound on tree height: with fanout >= 4 a tree of 2^53 records stays far below it. */
const HEIGHT_MAX = 48;

class Leaf {
  count = 0;
  /** [key0, value0, key1, value1, ...]; slots past `count` hold EMPTY. */
  kv: Uint8Array[];
  /** [opIndex0, expiresAt0, kind0, opIndex1, ...]. */
  num: Float64Array;
  /** [hi0, lo0, hi1, lo1, ...]: key prefixes, see {@link prefixHi}. */
  pfx: Uint32Array;
  next: Leaf | null = null;
  prev: Leaf | null = null;

  constructor(fanout: number) {
    this.kv = new Array<Uint8Array>(2 * fanout).fill(EMPTY);
    this.num = new Float64Array(3 * fanout);
    this.pfx = new Uint32Array(2 * fanout);
  }
}

class Branch {
  /** Children in use. */
  count = 0;
  /** keys[i]: the smallest key under children[i]. */
  keys: Uint8Array[];
  /** Prefixes of `keys`, as in {@link Leaf.pfx}. */
  pfx: Uint32Array;
  children: (Branch | Leaf)[];

  constructor(fanout: number) {
    this.keys = new Array<Uint8Array>(fanout).fill(EMPTY);
    this.pfx = new Uint32Array(2 * fanout);
    this.children = new Array<Branch | Leaf>(fanout);
  }
}

/** Bytes 0..3 of `key` as a big-endian u32, zero-padded past the end. */
function prefixHi(key: Uint8Array): number {
  if (key.length >= 4) return ((key[0] << 24) | (key[1] << 16) | (key[2] << 8) | key[3]) >>> 0;
  return paddedWord(key, 0);
}

/** Bytes 4..7 of `key` as a big-endian u32, zero-padded past the end. */
function prefixLo(key: Uint8Array): number {
  if (key.length >= 8) return ((key[4] << 24) | (key[5] << 16) | (key[6] << 8) | key[7]) >>> 0;
  return paddedWord(key, 4);
}

function paddedWord(key: Uint8Array, from: number): number {
  let word = 0;
  for (let i = from; i < from + 4; i++) word = word * 256 + (i < key.length ? key[i] : 0);
  return word;
}

/** A B+tree map from key bytes to (value, opIndex, kind, expiresAt). Never removes keys. */
export class BPlusTree {
  /** Distinct keys held. */
  size = 0;
  /** Changes whenever a new key is inserted; cursors compare it to detect inserts. */
  modCount = 0;
  /** The key order (must agree with memcmp, see the module comment). */
  readonly compare: Comparer;
  /** Records per leaf and children per branch. */
  readonly fanout: number;
  /** Leftmost leaf (fixed for life: splits only add nodes to the right). */
  readonly head: Leaf;
  /** Rightmost leaf. */
  tail: Leaf;
  /** Leaf found by the last `locate` (a scratch result, saves returning a pair). */
  foundLeaf: Leaf;
  private root: Branch | Leaf;
  /** Branch levels above the leaves. */
  private height = 0;
  // Prefix of the key being searched for, set by `descend`.
  private searchHi = 0;
  private searchLo = 0;
  // Descent path, reused by every upsert (no allocation per write).
  private readonly pathNodes: Branch[] = new Array<Branch>(HEIGHT_MAX);
  private readonly pathIdx = new Int32Array(HEIGHT_MAX);

  /** `fanout`: records per leaf and children per branch, even, 4..1024. */
  constructor(compare: Comparer, fanout = DEFAULT_FANOUT) {
    assert(fanout >= 4 && fanout <= 1024 && fanout % 2 === 0, `bad fanout ${fanout}`);
    this.compare = compare;
    this.fanout = fanout;
    const leaf = new Leaf(fanout);
    this.root = leaf;
    this.head = leaf;
    this.tail = leaf;
    this.foundLeaf = leaf;
  }

  /**
   * Inserts the record, or overwrites the record of an equal key in place (keeping the stored
   * key array). Returns the previous value when it overwrote, `undefined` when it inserted.
   */
  upsert(
    key: Uint8Array,
    value: Uint8Array,
    opIndex: number,
    kind: number,
    expiresAt: number,
  ): Uint8Array | undefined {
    const tail = this.tail;
    const n = tail.count;
    // Fast path: an append after the largest key, into a tail leaf with room.
    if (n > 0 && n < this.fanout && this.compare(key, tail.kv[2 * n - 2]) > 0) {
      writeRecord(tail, n, key, prefixHi(key), prefixLo(key), value, opIndex, kind, expiresAt);
      tail.count = n + 1;
      this.size++;
      this.modCount++;
      return undefined;
    }
    const depth = this.descend(key, true);
    const leaf = this.foundLeaf;
    const r = this.searchLeaf(leaf, key);
    if (r >= 0) {
      const previous = leaf.kv[2 * r + 1];
      leaf.kv[2 * r + 1] = value;
      writeNumbers(leaf, r, opIndex, kind, expiresAt);
      return previous;
    }
    const pos = ~r;
    if (leaf.count < this.fanout) {
      insertIntoLeaf(leaf, pos, key, this.searchHi, this.searchLo, value, opIndex, kind, expiresAt);
    } else {
      this.splitLeaf(leaf, pos, key, value, opIndex, kind, expiresAt, depth);
    }
    this.size++;
    this.modCount++;
    return undefined;
  }

  /** Fills `out` with the record of `key` and returns true, or returns false if absent. */
  get(key: Uint8Array, out: RecordSlot): boolean {
    const r = this.locate(key);
    if (r < 0) return false;
    readRecord(this.foundLeaf, r, out);
    return true;
  }

  /** A cursor that survives inserts between calls (see {@link BPlusTreeCursor}). */
  cursor(reverse: boolean): BPlusTreeCursor {
    return new BPlusTreeCursor(this, reverse);
  }

  /**
   * Finds the leaf that would hold `key` (left in `foundLeaf`). Returns the index of `key` in it,
   * or `~insertionIndex` when absent.
   */
  locate(key: Uint8Array): number {
    this.descend(key, false);
    return this.searchLeaf(this.foundLeaf, key);
  }

  /** Walks from the root to the leaf for `key`, optionally recording the path. Returns depth. */
  private descend(key: Uint8Array, recordPath: boolean): number {
    const compare = this.compare;
    const kh = prefixHi(key);
    const kl = prefixLo(key);
    this.searchHi = kh;
    this.searchLo = kl;
    let node = this.root;
    for (let level = 0; level < this.height; level++) {
      const b = node as Branch;
      const pfx = b.pfx;
      // Largest i >= 1 with keys[i] <= key, else 0.
      let lo = 1;
      let hi = b.count;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        const h = pfx[2 * mid];
        const l = pfx[2 * mid + 1];
        const le = h !== kh ? h < kh : l !== kl ? l < kl : compare(b.keys[mid], key) <= 0;
        if (le) lo = mid + 1;
        else hi = mid;
      }
      if (recordPath) {
        this.pathNodes[level] = b;
        this.pathIdx[level] = lo - 1;
      }
      node = b.children[lo - 1];
    }
    this.foundLeaf = node as Leaf;
    return this.height;
  }

  /** Index of `key` in `leaf`, or `~insertionIndex` when absent. Requires `descend(key)`. */
  private searchLeaf(leaf: Leaf, key: Uint8Array): number {
    const compare = this.compare;
    const kh = this.searchHi;
    const kl = this.searchLo;
    const pfx = leaf.pfx;
    let lo = 0;
    let hi = leaf.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const h = pfx[2 * mid];
      const l = pfx[2 * mid + 1];
      const c = h !== kh ? h - kh : l !== kl ? l - kl : compare(leaf.kv[2 * mid], key);
      if (c < 0) lo = mid + 1;
      else if (c > 0) hi = mid;
      else return mid;
    }
    return ~lo;
  }

  /** Splits the full `leaf`, inserts the record at `pos`, and links the new right leaf upward. */
  private splitLeaf(
    leaf: Leaf,
    pos: number,
    key: Uint8Array,
    value: Uint8Array,
    opIndex: number,
    kind: number,
    expiresAt: number,
    depth: number,
  ): void {
    const fanout = this.fanout;
    // Edge inserts (appends, per-sensor appends, descending runs) leave the full side full.
    const split = pos === fanout ? fanout : pos === 0 ? 0 : fanout >>> 1;
    const right = new Leaf(fanout);
    moveLeafTail(leaf, split, right);
    const kh = this.searchHi;
    const kl = this.searchLo;
    if (pos < split || split === 0) {
      insertIntoLeaf(leaf, pos, key, kh, kl, value, opIndex, kind, expiresAt);
    } else {
      insertIntoLeaf(right, pos - split, key, kh, kl, value, opIndex, kind, expiresAt);
    }
    right.next = leaf.next;
    right.prev = leaf;
    if (leaf.next !== null) leaf.next.prev = right;
    leaf.next = right;
    if (this.tail === leaf) this.tail = right;
    this.insertChild(depth - 1, right.kv[0], right.pfx[0], right.pfx[1], right);
  }

  /** Inserts `child` (lower bound `sep`) right after the path's child at `level`. */
  private insertChild(
    level: number,
    sep: Uint8Array,
    sepHi: number,
    sepLo: number,
    child: Branch | Leaf,
  ): void {
    if (level < 0) {
      this.growRoot(sep, sepHi, sepLo, child);
      return;
    }
    const b = this.pathNodes[level];
    const j = this.pathIdx[level] + 1;
    const fanout = this.fanout;
    if (b.count < fanout) {
      insertIntoBranch(b, j, sep, sepHi, sepLo, child);
      return;
    }
    // As for leaves: a child appended at the end starts a branch of its own.
    const split = j === fanout ? fanout : fanout >>> 1;
    const right = new Branch(fanout);
    moveBranchTail(b, split, right);
    if (j < split) insertIntoBranch(b, j, sep, sepHi, sepLo, child);
    else insertIntoBranch(right, j - split, sep, sepHi, sepLo, child);
    this.insertChild(level - 1, right.keys[0], right.pfx[0], right.pfx[1], right);
  }

  /** Adds a level: a new root over the old root and `right`. */
  private growRoot(sep: Uint8Array, sepHi: number, sepLo: number, right: Branch | Leaf): void {
    assert(this.height + 1 < HEIGHT_MAX, "B+tree height bound exceeded");
    const root = new Branch(this.fanout);
    root.children[0] = this.root;
    root.count = 1;
    insertIntoBranch(root, 1, sep, sepHi, sepLo, right);
    this.root = root;
    this.height++;
  }
}

function writeNumbers(leaf: Leaf, i: number, opIndex: number, kind: number, expiresAt: number) {
  const num = leaf.num;
  num[3 * i] = opIndex;
  num[3 * i + 1] = expiresAt;
  num[3 * i + 2] = kind;
}

function writeRecord(
  leaf: Leaf,
  i: number,
  key: Uint8Array,
  keyHi: number,
  keyLo: number,
  value: Uint8Array,
  opIndex: number,
  kind: number,
  expiresAt: number,
): void {
  leaf.kv[2 * i] = key;
  leaf.kv[2 * i + 1] = value;
  leaf.pfx[2 * i] = keyHi;
  leaf.pfx[2 * i + 1] = keyLo;
  writeNumbers(leaf, i, opIndex, kind, expiresAt);
}

function readRecord(leaf: Leaf, i: number, out: RecordSlot): void {
  out.key = leaf.kv[2 * i];
  out.value = leaf.kv[2 * i + 1];
  const num = leaf.num;
  out.opIndex = num[3 * i];
  out.expiresAt = num[3 * i + 1];
  out.kind = num[3 * i + 2];
}

/** Shifts records [pos, count) one slot right and writes the record at `pos`. Requires room. */
function insertIntoLeaf(
  leaf: Leaf,
  pos: number,
  key: Uint8Array,
  keyHi: number,
  keyLo: number,
  value: Uint8Array,
  opIndex: number,
  kind: number,
  expiresAt: number,
): void {
  const n = leaf.count;
  if (pos < n) {
    const kv = leaf.kv;
    for (let i = 2 * n - 1; i >= 2 * pos; i--) kv[i + 2] = kv[i];
    leaf.num.copyWithin(3 * pos + 3, 3 * pos, 3 * n);
    leaf.pfx.copyWithin(2 * pos + 2, 2 * pos, 2 * n);
  }
  writeRecord(leaf, pos, key, keyHi, keyLo, value, opIndex, kind, expiresAt);
  leaf.count = n + 1;
}

/** Moves records [from, count) of `leaf` into the empty `right`. */
function moveLeafTail(leaf: Leaf, from: number, right: Leaf): void {
  const n = leaf.count;
  const kv = leaf.kv;
  const rkv = right.kv;
  for (let i = 2 * from; i < 2 * n; i++) {
    rkv[i - 2 * from] = kv[i];
    kv[i] = EMPTY; // drop the reference so that later overwritten values can be collected
  }
  const num = leaf.num;
  const rnum = right.num;
  for (let i = 3 * from; i < 3 * n; i++) rnum[i - 3 * from] = num[i];
  const pfx = leaf.pfx;
  const rpfx = right.pfx;
  for (let i = 2 * from; i < 2 * n; i++) rpfx[i - 2 * from] = pfx[i];
  right.count = n - from;
  leaf.count = from;
}

/** Moves children [from, count) of `b` into the empty `right`. */
function moveBranchTail(b: Branch, from: number, right: Branch): void {
  const n = b.count;
  for (let i = from; i < n; i++) {
    right.keys[i - from] = b.keys[i];
    right.children[i - from] = b.children[i];
    right.pfx[2 * (i - from)] = b.pfx[2 * i];
    right.pfx[2 * (i - from) + 1] = b.pfx[2 * i + 1];
    b.keys[i] = EMPTY;
  }
  right.count = n - from;
  b.count = from;
}

function insertIntoBranch(
  b: Branch,
  j: number,
  sep: Uint8Array,
  sepHi: number,
  sepLo: number,
  child: Branch | Leaf,
): void {
  const n = b.count;
  for (let i = n - 1; i >= j; i--) {
    b.keys[i + 1] = b.keys[i];
    b.children[i + 1] = b.children[i];
  }
  if (j < n) b.pfx.copyWithin(2 * j + 2, 2 * j, 2 * n);
  b.keys[j] = sep;
  b.pfx[2 * j] = sepHi;
  b.pfx[2 * j + 1] = sepLo;
  b.children[j] = child;
  b.count = n + 1;
}

/**
 * A {@link RecordCursor} over a {@link BPlusTree}. Survives inserts between calls: when the tree's
 * `modCount` changed since the cursor positioned itself, `next()` re-seeks to the first key
 * strictly after the last key it returned (in its direction), so it sees keys inserted ahead of
 * it and never repeats or skips an old one. Overwrites move no record, so they need nothing.
 * Once exhausted (`valid` false) it stays exhausted until the next `seek`.
 */
export class BPlusTreeCursor implements RecordCursor {
  key: Uint8Array = EMPTY;
  value: Uint8Array = EMPTY;
  opIndex = 0;
  kind = KIND_PUT;
  expiresAt = 0;
  valid = false;
  readonly reverse: boolean;
  private readonly tree: BPlusTree;
  private leaf: Leaf | null = null;
  private idx = 0;
  /** The tree's modCount when `leaf`/`idx` were computed. */
  private seenModCount = -1;
  private started = false;

  /** Prefer {@link BPlusTree.cursor}. */
  constructor(tree: BPlusTree, reverse: boolean) {
    this.tree = tree;
    this.reverse = reverse;
  }

  /** See {@link RecordCursor.seek}. */
  seek(target: Uint8Array | undefined, exclusive = false): boolean {
    this.started = true;
    const tree = this.tree;
    this.seenModCount = tree.modCount;
    if (target === undefined) {
      const leaf = this.reverse ? tree.tail : tree.head;
      return this.settle(leaf, this.reverse ? leaf.count - 1 : 0);
    }
    const r = tree.locate(target);
    let pos: number;
    if (this.reverse) pos = r >= 0 ? (exclusive ? r - 1 : r) : ~r - 1;
    else pos = r >= 0 ? (exclusive ? r + 1 : r) : ~r;
    return this.settle(tree.foundLeaf, pos);
  }

  /** See {@link RecordCursor.next}. */
  next(): boolean {
    if (!this.started) return this.seek(undefined);
    if (!this.valid) return false;
    if (this.seenModCount !== this.tree.modCount) return this.seek(this.key, true);
    return this.settle(this.leaf, this.reverse ? this.idx - 1 : this.idx + 1);
  }

  /** Makes the cursor invalid (it pins nothing: the tree is garbage collected). */
  close(): void {
    this.valid = false;
    this.leaf = null;
  }

  /** Positions at `pos` in `leaf`, stepping to the neighbour leaf when `pos` is just outside. */
  private settle(leaf: Leaf | null, pos: number): boolean {
    if (leaf !== null && pos >= leaf.count) {
      leaf = leaf.next;
      pos = 0;
    } else if (leaf !== null && pos < 0) {
      leaf = leaf.prev;
      pos = leaf === null ? 0 : leaf.count - 1;
    }
    if (leaf === null || leaf.count === 0) {
      this.valid = false;
      this.leaf = null;
      return false;
    }
    this.leaf = leaf;
    this.idx = pos;
    readRecord(leaf, pos, this);
    this.valid = true;
    return true;
  }
}
