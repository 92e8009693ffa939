/**
 * The sorted in-memory map under the mutable segment: a B+tree keyed by encoded key bytes, ordered
 * by a pluggable {@link Comparer}. Chosen over a skip list by measurement: 1,000,000 upserts of
 * 100-byte values, CPU ns/op under Bun (Deno alike), fanout 64, 24 inline key bytes:
 *
 *   workload                  skip list   B+tree
 *   random 16-byte keys           12588     2375   (get 18218 vs 2423; scan 750 vs 47 ns/rec)
 *   ascending 16-byte keys          130      122
 *   sensor x1000 interleaved       9375      847   (get 15866 vs 2376)
 *
 * (A shared, oversubscribed machine: absolute numbers are several times a quiet desktop's; the
 * ratios held across runs. `bench/memtable_bench.ts` measures the kept structure.)
 *
 * Shape:
 * - Key and value bytes live in the tree's arena: append-only `ArrayBuffer` chunks (4 KiB
 *   doubling to 1 MiB; a larger record gets a chunk of its own). Bytes in the arena are never
 *   changed once written, so views handed out stay valid and unchanged for good. An overwrite
 *   appends the new value (the old bytes stay until the segment is dropped). A key no longer
 *   than the inline bytes (below) is not copied to the arena at all: its slot's inline words
 *   hold all of it (key chunk {@link KEY_INLINE}), and readers rebuild it from them. For
 *   16-byte keys and 100-byte values that is 16 bytes a record fewer to copy and to fault in,
 *   and a cursor or a point read reads the key from the leaf instead of a place in the arena.
 * - Leaves hold up to `fanout` records in flat parallel typed arrays, no object per record:
 *   `loc` (Int32Array) = [keyChunk0, keyOffset0, keyLength0, valueChunk0, valueOffset0,
 *   valueLength0 * 4 + kind0, ...], `num` (Float64Array) = [opIndex0, expiresAt0, ...] (the
 *   kind shares a number with the value's length: 8 bytes a record fewer), `pfx` (below).
 *   Records keep the slot they were written to; `ord` (Uint16Array) lists the slots in key
 *   order, so an insert in the middle of a leaf moves 2 bytes a record after it, not 68 in three
 *   arrays (a million shuffled 16-byte keys with 100-byte values, old and new code in one
 *   process: 10-13% less time in the tree; `bun bench/ab_checkouts.ts random`, the whole
 *   engine: ~10% faster loads). Leaves are doubly linked for cursors. A million records are a few thousand objects, not two million
 *   byte arrays: the garbage collector's pauses no longer grow with the records held (measured:
 *   a merge of 1,000,000 records saw 45-70 ms collector pauses on the event loop before).
 *   `get` returns a fresh copy of the value (a slice of the arena: one allocation, like a view,
 *   and the reader may keep it). A cursor allocates nothing per step:
 *   it copies the key into its own buffer and makes the value's view only when asked
 *   (`copyValue()` slices the arena instead: one allocation where a view and a copy were two).
 * - Branches hold up to `fanout` children; `keys[i]` is the lower bound of `children[i]` (keys[0]
 *   of the leftmost branch of each level is unused). Separators are views of the keys' bytes in
 *   the arena (no ArrayBuffer of their own).
 * - Leaves and branches keep the first `inlineKeyBytes` bytes of each key inline (`pfx`: per
 *   slot, big-endian u32 words, zero-padded, then the key length). Binary search compares those
 *   numbers and calls the comparer only when both keys are longer than the inline bytes and tie
 *   on them, so most steps touch no key object. Cache misses on key objects dominate the cost of
 *   a large tree otherwise. This relies on the {@link Comparer} contract: it agrees with memcmp.
 * - Nothing is ever removed (deletion markers are records), so leaves are never empty except the
 *   root leaf of an empty tree, and the leftmost leaf is the same object for life.
 *
 * Invariants: keys strictly ascending along the leaf chain; a non-leftmost node's first key equals
 * its separator in the parent; `modCount` changes exactly when a new key is inserted (cursors
 * re-seek then); overwrites change the record in place (its slot) and keep the stored key bytes.
 *
 * Splits: a full leaf splits in half, except when the insert lands at its end (or start): then the
 * new record starts a node of its own and the full side stays full; and except when the insert
 * lands right after the leaf's previous insert (a run of appends in the middle of the tree, such
 * as a sensor's next reading in a leaf that also holds the next sensor's first ones): then it
 * splits at the insert and the record ends the left leaf, where the run goes on. Ascending
 * appends fill leaves completely; time-first sensor readings fill them to 78-87% instead of
 * 66-69% (`tests/memory/mutable_segment.test.ts`). Appends after the largest key skip the
 * descent (`tail` fast path).
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
import { keyHashAt, keyHashWords } from "./key_filter.ts";
import { copyInto, copyOf } from "../util/bytes.ts";
import {
  freshPlainBuffer,
  freshSharedBuffer,
  type RelayoutInput,
  type RelayoutTicket,
  relayoutOnHelper,
  takeRelayout,
} from "../util/helper_thread.ts";

/** Default records per leaf and children per branch (64 measured best among 32/64/128). */
export const DEFAULT_FANOUT = 64;

/**
 * Default key bytes kept inline per slot (measured among 8/16/24/32: 8 and 16 fall back to the
 * comparer on ascending and sensor keys, gets cost 2-3x more; 32 only adds copying).
 */
export const DEFAULT_INLINE_KEY_BYTES = 24;

/** Returned by `compareInline` when only the keys themselves can decide. */
const NEEDS_KEYS = 2 ** 40;

/** Bound on tree height: with fanout >= 4 a tree of 2^53 records stays far below it. */
const HEIGHT_MAX = 48;

/** Int32 per slot in {@link Leaf.loc}. */
const LOC = 6;
/** Key chunk of a slot whose key is only in its inline words (see the module comment). */
const KEY_INLINE = -1;
/** First arena chunk size; chunks double up to {@link CHUNK_MAX}. */
const CHUNK_MIN = 4096;
/** Largest regular arena chunk (a record larger than this gets a chunk of its own). */
const CHUNK_MAX = 1 << 20;

/**
 * A new arena chunk after one of `previous` bytes, for a record of `need` bytes: chunks double
 * from {@link CHUNK_MIN} to {@link CHUNK_MAX}; a larger record gets a chunk of its own.
 * Full-size chunks come pre-touched (util/helper_thread.ts); the small first ones and records
 * with a chunk of their own are fresh. `shared`: every chunk in shared memory, which the helper
 * can read (see {@link BPlusTree.startRelayout}). Shared with `run_tree.ts`.
 */
export function nextArenaChunk(previous: number, need: number, shared = false): Uint8Array {
  const size = Math.max(need, Math.min(CHUNK_MAX, Math.max(CHUNK_MIN, 2 * previous)));
  if (shared) return new Uint8Array(freshSharedBuffer(size));
  return size === CHUNK_MAX ? new Uint8Array(freshPlainBuffer(size)) : new Uint8Array(size);
}

class Leaf {
  count = 0;
  /**
   * Arena locations and kind: [keyChunk, keyOffset, keyLength, valueChunk, valueOffset,
   * valueLength * 4 + kind] per slot (values are at most 64 MiB: this stays below 2^31).
   */
  loc: Int32Array;
  /** [opIndex0, expiresAt0, opIndex1, ...]. */
  num: Float64Array;
  /** Inline key bytes: `stride` u32 per slot (see {@link loadInline}). */
  pfx: Uint32Array;
  /**
   * The slots in key order: `ord[i]` is the slot of the `i`-th smallest key. The first `count`
   * entries are a permutation of `0 ..< count` (records fill slots `0 ..< count`, a new one the
   * slot at `count`), so an insert moves two bytes a record after it instead of the record's 68
   * bytes in three arrays (measured: those moves were a quarter of a random insert's time in
   * the tree, the three arrays' cache lines besides).
   */
  ord: Uint16Array;
  next: Leaf | null = null;
  prev: Leaf | null = null;
  /**
   * Position in key order of the last record inserted here (-1: none yet): detects runs of
   * appends mid-tree.
   */
  lastInsert = -1;

  constructor(loc: Int32Array, num: Float64Array, pfx: Uint32Array, ord: Uint16Array) {
    this.loc = loc;
    this.num = num;
    this.pfx = pfx;
    this.ord = ord;
  }
}

/** Fewest records for which {@link BPlusTree.startRelayout} lays a tree out again. */
export const RELAYOUT_MIN_RECORDS = 8192;
/**
 * {@link BPlusTree.startRelayout} runs when at least one record in this many landed in the
 * arena out of key order.
 */
const RELAYOUT_SHARE = 8;

/** Leaves a point read adds to a frozen tree's hash index while it is incomplete (~4k keys). */
const INDEX_LEAVES_PER_CALL = 64;

/** Most leaves whose typed arrays share one set of slabs. */
const LEAVES_PER_SLAB_MAX = 64;

class Branch {
  /** Children in use. */
  count = 0;
  /** keys[i]: the smallest key under children[i]. */
  keys: Uint8Array[];
  /** Inline bytes of `keys`, as in {@link Leaf.pfx}. */
  pfx: Uint32Array;
  children: (Branch | Leaf)[];

  constructor(fanout: number, stride: number) {
    this.keys = new Array<Uint8Array>(fanout).fill(EMPTY);
    this.pfx = new Uint32Array(stride * fanout);
    this.children = new Array<Branch | Leaf>(fanout);
  }
}

/**
 * Writes the inline form of `key` at `out[base ..< base + words + 1]`: its first `4 * words`
 * bytes as big-endian u32 words (zero-padded past the end), then its length. Comparing these
 * words in order is memcmp on the padded prefixes.
 */
function loadInline(key: Uint8Array, words: number, out: Uint32Array, base: number): void {
  const n = key.length;
  const whole = Math.min(words, n >>> 2);
  let w = 0;
  for (; w < whole; w++) {
    const i = 4 * w;
    out[base + w] = (key[i] << 24) | (key[i + 1] << 16) | (key[i + 2] << 8) | key[i + 3];
  }
  if (w < words) {
    let word = 0;
    for (let i = 4 * w; i < 4 * w + 4; i++) word = word * 256 + (i < n ? key[i] : 0);
    out[base + w] = word;
    for (w++; w < words; w++) out[base + w] = 0;
  }
  out[base + words] = n;
}

function copyInline(src: Uint32Array, from: number, dst: Uint32Array, to: number, n: number) {
  for (let i = 0; i < n; i++) dst[to + i] = src[from + i];
}

/** Copies the record in slot `from` of `src` into slot `to` of `dst` (leaves of one tree). */
function copySlot(stride: number, src: Leaf, from: number, dst: Leaf, to: number): void {
  const sl = src.loc;
  const dl = dst.loc;
  for (let k = 0; k < LOC; k++) dl[LOC * to + k] = sl[LOC * from + k];
  dst.num[2 * to] = src.num[2 * from];
  dst.num[2 * to + 1] = src.num[2 * from + 1];
  copyInline(src.pfx, stride * from, dst.pfx, stride * to, stride);
}

/** Writes the first `out.length` bytes of the big-endian words from `words[base]` into `out`. */
function wordsToBytes(words: Uint32Array, base: number, out: Uint8Array): void {
  const n = out.length;
  let i = 0;
  for (let w = base; i + 4 <= n; i += 4, w++) {
    const word = words[w];
    out[i] = word >>> 24;
    out[i + 1] = (word >>> 16) & 0xff;
    out[i + 2] = (word >>> 8) & 0xff;
    out[i + 3] = word & 0xff;
  }
  if (i < n) {
    const word = words[base + (i >>> 2)];
    for (let s = 24; i < n; i++, s -= 8) out[i] = (word >>> s) & 0xff;
  }
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
  /** Key bytes kept inline per slot (a multiple of 4). */
  readonly inlineKeyBytes: number;
  /** u32 per inline slot: inlineKeyBytes / 4 words, then the key length. */
  readonly stride: number;
  /** Leftmost leaf (fixed for life: splits only add nodes to the right). */
  readonly head: Leaf;
  /** Rightmost leaf. */
  tail: Leaf;
  /** Leaf found by the last `locate` (a scratch result, saves returning a pair). */
  foundLeaf: Leaf;
  private root: Branch | Leaf;
  /** Branch levels above the leaves. */
  private height = 0;
  /** Inline form of the key being searched for, set by `loadSearch`. */
  private readonly search: Uint32Array;
  // Descent path, reused by every upsert (no allocation per write).
  private readonly pathNodes: Branch[] = new Array<Branch>(HEIGHT_MAX);
  private readonly pathIdx = new Int32Array(HEIGHT_MAX);
  /** Arena chunks (see the module comment), each as a Uint8Array over its whole buffer. */
  readonly chunkBytes: Uint8Array[] = [];
  /** The chunk being filled, its index and the bytes of it in use. */
  private chunk: Uint8Array = EMPTY;
  private chunkIndex = -1;
  private chunkUsed = 0;
  /** Bytes appended to the arena so far (keys and values, overwritten values included). */
  arenaBytes = 0;
  /** Whether arena chunks are in shared memory (see {@link startRelayout}). */
  private readonly sharedArena: boolean;
  /**
   * Inserts that did not append after the largest key, and overwrites: records whose bytes
   * landed in the arena out of key order (see {@link startRelayout}).
   */
  private outOfOrder = 0;
  /** The relayout running on the helper, if any (see {@link startRelayout}). */
  private relayoutTicket: RelayoutTicket | undefined;
  /**
   * Changes each time the arena is laid out again: a cursor that took a record's place in the
   * arena under another epoch reads it again from its slot.
   */
  layoutEpoch = 0;
  /** u32 words of the keys held only inline (each key's length rounded up to 4, over 4). */
  private inlineKeyWords = 0;
  /** Bytes of the arena chunks, leaf slabs and branches allocated so far (see `memoryBytes`). */
  private allocated = 0;
  // Leaf slabs: a leaf's three typed arrays are views of shared slabs, so a million records are
  // a few hundred array buffers, not fifty thousand (Deno's full collections grew with them:
  // 56-66 ms at 1M records with one buffer per array, 14-17 ms with four times fewer leaves).
  private locSlab: Int32Array = new Int32Array(0);
  private numSlab: Float64Array = new Float64Array(0);
  private pfxSlab: Uint32Array = new Uint32Array(0);
  private ordSlab: Uint16Array = new Uint16Array(0);
  private slabLeaves = 0;
  private slabUsed = 0;
  /** Scratch marks of the slots in use, for {@link moveLeafTail}. */
  private readonly slotMarks: Uint8Array;

  /**
   * `fanout`: records per leaf and children per branch, even, 4..1024. `inlineKeyBytes`: key
   * bytes kept inline per slot, a multiple of 4 in 4..64. `sharedArena`: arena chunks in shared
   * memory, so that {@link startRelayout} can run on the helper.
   */
  constructor(
    compare: Comparer,
    fanout = DEFAULT_FANOUT,
    inlineKeyBytes = DEFAULT_INLINE_KEY_BYTES,
    sharedArena = false,
  ) {
    this.sharedArena = sharedArena;
    assert(fanout >= 4 && fanout <= 1024 && fanout % 2 === 0, `bad fanout ${fanout}`);
    assert(inlineKeyBytes >= 4 && inlineKeyBytes <= 64 && inlineKeyBytes % 4 === 0, "bad inline");
    this.compare = compare;
    this.fanout = fanout;
    this.inlineKeyBytes = inlineKeyBytes;
    this.stride = inlineKeyBytes / 4 + 1;
    this.search = new Uint32Array(this.stride);
    this.slotMarks = new Uint8Array(fanout);
    const leaf = this.newLeaf();
    this.root = leaf;
    this.head = leaf;
    this.tail = leaf;
    this.foundLeaf = leaf;
  }

  /**
   * Inserts the record (copying key and value into the arena), or overwrites the record of an
   * equal key in place (keeping the stored key, appending the new value). Returns true when it
   * inserted, false when it overwrote.
   */
  upsert(
    key: Uint8Array,
    value: Uint8Array,
    opIndex: number,
    kind: number,
    expiresAt: number,
  ): boolean {
    this.loadSearch(key);
    const tail = this.tail;
    const n = tail.count;
    // Fast path: an append after the largest key, into a tail leaf with room.
    if (n > 0 && n < this.fanout && this.compareLeafSlot(tail, n - 1, key) < 0) {
      this.writeRecord(tail, n, key, value, opIndex, kind, expiresAt);
      tail.ord[n] = n;
      tail.count = n + 1;
      tail.lastInsert = n;
      this.size++;
      this.modCount++;
      return true;
    }
    const depth = this.descend(key, true);
    const leaf = this.foundLeaf;
    const r = this.searchLeaf(leaf, key);
    this.outOfOrder++;
    if (r >= 0) {
      const slot = leaf.ord[r];
      const at = this.append(value, value.length);
      const loc = leaf.loc;
      loc[LOC * slot + 3] = this.chunkIndex;
      loc[LOC * slot + 4] = at;
      writeNumbers(leaf, slot, opIndex, kind, expiresAt, value.length);
      return false;
    }
    const pos = ~r;
    if (leaf.count < this.fanout) {
      this.insertIntoLeaf(leaf, pos, key, value, opIndex, kind, expiresAt);
    } else this.splitLeaf(leaf, pos, key, value, opIndex, kind, expiresAt, depth);
    this.size++;
    this.modCount++;
    return true;
  }

  /**
   * Starts laying the arena out again in key order, on the helper thread, for a tree that will
   * not change again (a frozen segment): records inserted in random order sit in the arena in
   * arrival order, so a scan of them misses the cache (and the TLB) at every record; laid out
   * in key order, it reads the arena front to back. Measured (`bench/scan_layers.ts`, a million
   * random 16/100-byte records in four in-memory layers, three of them laid out again): ~40%
   * more records a second. The reader's thread only copies the leaves' arrays
   * ({@link relayoutInput}) and later copies them back with the new places ({@link pollRelayout},
   * {@link applyLayout}); the helper reads the shared chunks and writes the new ones.
   * Overwritten values are left behind. (The engine lays several segments out together when it
   * can: see `TreeEngine`'s `#combineStep`.)
   *
   * Does nothing unless the arena is in shared memory, the tree holds at least
   * {@link RELAYOUT_MIN_RECORDS} records, and at least one in {@link RELAYOUT_SHARE} of its
   * writes landed out of key order (an ascending load is laid out in key order already).
   * Returns whether a relayout started.
   */
  startRelayout(): boolean {
    if (this.size < RELAYOUT_MIN_RECORDS || this.outOfOrder * RELAYOUT_SHARE < this.size) return false;
    const input = this.relayoutInput();
    if (input === undefined) return false;
    this.relayoutTicket = relayoutOnHelper([input], CHUNK_MAX, false);
    return this.relayoutTicket !== undefined;
  }

  /**
   * This frozen tree's records for a relayout on the helper (`relayoutOnHelper`, alone or with
   * other trees'): copies of its leaves' arrays in key order (three copies a leaf) and its
   * arena's chunks. Undefined unless the arena is in shared memory (the helper reads it) and no
   * relayout of this tree runs.
   */
  relayoutInput(): RelayoutInput | undefined {
    if (!this.sharedArena || this.relayoutTicket !== undefined) return undefined;
    const n = this.size;
    const stride = this.stride;
    const loc = new Int32Array(LOC * n);
    const num = new Float64Array(2 * n);
    const pfx = new Uint32Array(stride * n);
    let r = 0;
    for (let leaf: Leaf | null = this.head; leaf !== null; leaf = leaf.next) {
      const c = leaf.count;
      const ord = leaf.ord;
      const lloc = leaf.loc;
      const lnum = leaf.num;
      const lpfx = leaf.pfx;
      for (let i = 0; i < c; i++, r++) {
        const s = ord[i];
        for (let k = 0; k < LOC; k++) loc[LOC * r + k] = lloc[LOC * s + k];
        num[2 * r] = lnum[2 * s];
        num[2 * r + 1] = lnum[2 * s + 1];
        copyInline(lpfx, stride * s, pfx, stride * r, stride);
      }
    }
    assert(r === n, "relayout input miscounted");
    let bytes = 0;
    for (let b = 0; b < loc.length; b += LOC) bytes += (loc[b] === KEY_INLINE ? 0 : loc[b + 2]) + (loc[b + 5] >>> 2);
    const chunks = this.chunkBytes;
    const buffers: ArrayBufferLike[] = new Array(chunks.length);
    for (let i = 0; i < chunks.length; i++) buffers[i] = chunks[i].buffer;
    return { chunks: buffers, loc, num, pfx, stride, bytes };
  }

  /**
   * Whether every record's bytes (its key, when in the arena, then its value) lie after the
   * previous record's, in key order: what a relayout leaves. For tests.
   */
  arenaInKeyOrder(): boolean {
    let chunk = -1;
    let end = 0;
    const after = (c: number, off: number, len: number): boolean => {
      if (c < chunk || (c === chunk && off < end)) return false;
      chunk = c;
      end = off + len;
      return true;
    };
    for (let leaf: Leaf | null = this.head; leaf !== null; leaf = leaf.next) {
      const loc = leaf.loc;
      for (let i = 0; i < leaf.count; i++) {
        const b = LOC * leaf.ord[i];
        if (loc[b] !== KEY_INLINE && !after(loc[b], loc[b + 1], loc[b + 2])) return false;
        if (!after(loc[b + 3], loc[b + 4], loc[b + 5] >>> 2)) return false;
      }
    }
    return true;
  }

  /** Whether every branch separator held as bytes is a view of a current arena chunk. For tests. */
  separatorsInArena(): boolean {
    const buffers = new Set<ArrayBufferLike>(this.chunkBytes.map((c) => c.buffer));
    const check = (node: Branch | Leaf): boolean => {
      if (node instanceof Leaf) return true;
      for (let i = 0; i < node.count; i++) {
        if (node.keys[i] !== EMPTY && !buffers.has(node.keys[i].buffer)) return false;
        if (!check(node.children[i])) return false;
      }
      return true;
    };
    return check(this.root);
  }

  /**
   * Whether a relayout ({@link startRelayout}) is still running. If it has finished, points
   * every slot (and the hash index's copies, and the branches' separators) at the new places
   * first, in one walk of the leaves: views handed out before keep the old chunks alive and
   * unchanged; cursors read a record's place again when they see the epoch change.
   */
  pollRelayout(): boolean {
    const ticket = this.relayoutTicket;
    if (ticket === undefined) return false;
    const result = takeRelayout(ticket);
    if (result === undefined) return true;
    this.relayoutTicket = undefined;
    if (result !== null) {
      let bytes = 0;
      for (const b of result.buffers) bytes += b.byteLength;
      this.applyLayout(result.buffers, result.locs[0], bytes);
    }
    return false;
  }

  /**
   * Points the slots (and the hash index's copies, and the branches' separators) at the places
   * a relayout gave this frozen tree's records: `loc` is the `loc` of {@link relayoutInput} with
   * the new places in `buffers`, which other trees may share; `bytes` of them count as this
   * tree's memory. One copy a leaf: views handed out before keep the old chunks alive and
   * unchanged; cursors read a record's place again when they see the epoch change.
   */
  applyLayout(buffers: ArrayBuffer[], loc: Int32Array, bytes: number): void {
    assert(loc.length === LOC * this.size, "relayout of a tree that changed");
    let r = 0;
    for (let leaf: Leaf | null = this.head; leaf !== null; leaf = leaf.next) {
      const c = leaf.count;
      const ord = leaf.ord;
      const lloc = leaf.loc;
      for (let i = 0; i < c; i++, r++) {
        const s = ord[i];
        for (let k = 0; k < LOC; k++) lloc[LOC * s + k] = loc[LOC * r + k];
      }
    }
    // The hash index holds the records in key order too (it indexes the leaves from the head).
    const recs = this.hashRecords;
    const indexed = this.hashCount;
    for (let k = 0, b = 0, x = 0; k < indexed; k++, b += LOC, x += 8) {
      if (loc[b] !== KEY_INLINE) {
        recs![x] = loc[b];
        recs![x + 1] = loc[b + 1];
      }
      recs![x + 3] = loc[b + 3];
      recs![x + 4] = loc[b + 4];
    }
    const chunks = this.chunkBytes;
    for (const c of chunks) this.allocated -= c.length;
    chunks.length = 0;
    for (const b of buffers) chunks.push(new Uint8Array(b));
    this.allocated += bytes;
    this.chunk = chunks.length > 0 ? chunks[chunks.length - 1] : EMPTY;
    this.chunkIndex = chunks.length - 1;
    this.chunkUsed = this.chunk.length;
    this.layoutEpoch++;
    this.fixSeparators(this.root);
  }

  /**
   * Re-makes the separators of the branches under `node` (views of keys in the arena) as views
   * of the same keys at their new places, so that the old chunks are not kept alive by them.
   * Returns the leftmost leaf under `node`, whose first key is its separator.
   */
  private fixSeparators(node: Branch | Leaf): Leaf {
    if (node instanceof Leaf) return node;
    let first: Leaf | undefined;
    for (let i = 0; i < node.count; i++) {
      const leaf = this.fixSeparators(node.children[i]);
      if (i === 0) first = leaf;
      if (node.keys[i] !== EMPTY) node.keys[i] = this.keyAt(leaf, 0);
    }
    return first!;
  }

  /**
   * Bytes of memory the tree has allocated: arena chunks, leaf slabs, and branches (inline
   * words, two arrays of references, a separator view each: about 80 bytes of object headers
   * per separator). Object headers of leaves and the hash index of a frozen tree left out.
   * `RECORD_OVERHEAD_BYTES` (mutable_segment.ts) is checked against it by the tests.
   */
  memoryBytes(): number {
    return this.allocated;
  }

  private newBranch(): Branch {
    const f = this.fanout;
    this.allocated += 4 * this.stride * f + 2 * 8 * f + 80 * f;
    return new Branch(f, this.stride);
  }

  /** A new empty leaf, its arrays carved from the current slabs (1, 2, 4 .. 64 leaves each). */
  private newLeaf(): Leaf {
    const f = this.fanout;
    const stride = this.stride;
    if (this.slabUsed === this.slabLeaves) {
      const leaves = this.slabLeaves = Math.min(LEAVES_PER_SLAB_MAX, Math.max(1, 2 * this.slabLeaves));
      // One buffer for the three slabs (numbers first: 8-byte aligned). A plain one, pre-touched
      // by the helper and transferred here when one is ready (util/helper_thread.ts), as the
      // arena's chunks are; not a shared one: with the leaves in shared buffers (76 MB of slabs
      // besides 116 MB of arena for a million records) scans ran up to 35% slower.
      const numBytes = 8 * 2 * f * leaves;
      const locBytes = 4 * LOC * f * leaves;
      const pfxBytes = 4 * stride * f * leaves;
      const buffer = freshPlainBuffer(numBytes + locBytes + pfxBytes + 2 * f * leaves);
      this.allocated += buffer.byteLength;
      this.numSlab = new Float64Array(buffer, 0, 2 * f * leaves);
      this.locSlab = new Int32Array(buffer, numBytes, LOC * f * leaves);
      this.pfxSlab = new Uint32Array(buffer, numBytes + locBytes, stride * f * leaves);
      this.ordSlab = new Uint16Array(buffer, numBytes + locBytes + pfxBytes, f * leaves);
      this.slabUsed = 0;
    }
    const i = this.slabUsed++;
    return new Leaf(
      this.locSlab.subarray(LOC * f * i, LOC * f * (i + 1)),
      this.numSlab.subarray(2 * f * i, 2 * f * (i + 1)),
      this.pfxSlab.subarray(stride * f * i, stride * f * (i + 1)),
      this.ordSlab.subarray(f * i, f * (i + 1)),
    );
  }

  /**
   * Copies `bytes` into the arena, reserving `total` bytes (at least `bytes.length`) in one
   * chunk; returns the offset in chunk `chunkIndex` where `bytes` starts.
   */
  private append(bytes: Uint8Array, total: number): number {
    // The first append makes the first chunk, even an empty one (its index must name a chunk).
    if (this.chunkUsed + total > this.chunk.length || this.chunkIndex < 0) {
      this.chunk = nextArenaChunk(this.chunk.length, total, this.sharedArena);
      this.allocated += this.chunk.length;
      this.chunkBytes.push(this.chunk);
      this.chunkIndex = this.chunkBytes.length - 1;
      this.chunkUsed = 0;
    }
    const at = this.chunkUsed;
    copyInto(this.chunk, at, bytes);
    this.chunkUsed = at + total;
    this.arenaBytes += total;
    return at;
  }

  /**
   * A view of the `i`-th key in key order of `leaf`, which is in the arena: the callers (the
   * comparer fallback, a split's separator) never need a key held only inline.
   */
  private keyAt(leaf: Leaf, i: number): Uint8Array {
    const loc = leaf.loc;
    const b = LOC * leaf.ord[i];
    assert(loc[b] !== KEY_INLINE, "keyAt of a key held only inline");
    return new Uint8Array(this.chunkBytes[loc[b]].buffer, loc[b + 1], loc[b + 2]);
  }

  /** Leaves in the chain (a measure of how full they are: `size / (leafCount * fanout)`). */
  leafCount(): number {
    let n = 0;
    for (let leaf: Leaf | null = this.head; leaf !== null; leaf = leaf.next) n++;
    return n;
  }

  /** Calls `visit` with `keyHash` of every key, in key order (see {@link hashOfSlot}). */
  forEachKeyHash(visit: (hash: number) => void): void {
    for (let leaf: Leaf | null = this.head; leaf !== null; leaf = leaf.next) {
      const ord = leaf.ord;
      for (let i = 0; i < leaf.count; i++) visit(this.hashOfSlot(leaf, ord[i]));
    }
  }

  /**
   * `keyHash` of the key in slot `i` of `leaf`: from the leaf's inline words when the whole key
   * is there (read in order, leaf after leaf), else from its bytes in the arena (where keys lie
   * in arrival order: a cache miss each when they came in random order).
   */
  private hashOfSlot(leaf: Leaf, i: number): number {
    const loc = leaf.loc;
    const b = LOC * i;
    const n = loc[b + 2];
    return n <= this.inlineKeyBytes
      ? keyHashWords(leaf.pfx, i * this.stride, n)
      : keyHashAt(this.chunkBytes[loc[b]], loc[b + 1], n);
  }

  /** Fills `out` with the record of `key` and returns true, or returns false if absent. */
  get(key: Uint8Array, out: RecordSlot): boolean {
    const r = this.locate(key);
    if (r < 0) return false;
    this.fill(this.foundLeaf, r, key, out);
    return true;
  }

  // ---- point index (a tree that no longer changes) -------------------------------------------

  /**
   * Hash table of a tree that no longer changes: pairs (key hash, record number + 1), open
   * addressing, 0 = empty. Undefined until the first {@link getIndexed}.
   */
  private hashTable: Int32Array | undefined;
  /**
   * The indexed records, 8 numbers each (one cache line): key chunk, key offset, key length * 4
   * + kind, value chunk, value offset, value length, opIndex, expiresAt. A read touches the
   * table, this and the arena, where a leaf would cost its object, two typed arrays' headers
   * and data. A key held only inline has key chunk {@link KEY_INLINE} and its offset in
   * {@link hashKeyWords}.
   */
  private hashRecords: Float64Array | undefined;
  /** The inline words of the indexed keys that are not in the arena, one after another. */
  private hashKeyWords: Uint32Array | undefined;
  private hashKeyWordsUsed = 0;
  /** Records in `hashRecords`. */
  private hashCount = 0;
  /** The next leaf to index; null once every leaf is in. */
  private hashNext: Leaf | null = null;

  /**
   * {@link get} for a tree that will not change again (a frozen segment), through a hash index
   * of its keys: one probe, one record and the key's bytes, instead of a descent whose binary
   * searches miss the cache at every level (a 64-slot leaf's inline keys span 28 cache lines).
   * The index is built a few thousand keys per call, so no single read pays for all of it;
   * until it is complete, a key it does not hold yet is looked up by descent. `hash` is
   * `keyHash(key)`.
   */
  getIndexed(key: Uint8Array, hash: number, out: RecordSlot): boolean {
    let table = this.hashTable;
    if (table === undefined) {
      let capacity = 16;
      while (capacity < this.size * 1.5) capacity *= 2;
      table = this.hashTable = new Int32Array(2 * capacity);
      this.hashRecords = new Float64Array(8 * this.size);
      this.hashKeyWords = new Uint32Array(this.inlineKeyWords);
      this.hashNext = this.head;
    }
    if (this.hashNext !== null) this.indexLeaves(INDEX_LEAVES_PER_CALL);
    const recs = this.hashRecords!;
    const chunks = this.chunkBytes;
    const mask = (table.length >>> 1) - 1;
    const n = key.length;
    let searchLoaded = false;
    probe: for (let i = hash & mask;; i = (i + 1) & mask) {
      const ref = table[2 * i + 1];
      if (ref === 0) break;
      if (table[2 * i] !== hash) continue;
      const r = 8 * (ref - 1);
      const lenKind = recs[r + 2];
      if (lenKind >>> 2 !== n) continue;
      const chunk = recs[r];
      if (chunk === KEY_INLINE) {
        // The key's inline words (the form the leaves keep) against the copy of the record's.
        if (!searchLoaded) {
          this.loadSearch(key);
          searchLoaded = true;
        }
        const words = this.hashKeyWords!;
        const at = recs[r + 1];
        const search = this.search;
        for (let w = 0, end = (n + 3) >>> 2; w < end; w++) if (words[at + w] !== search[w]) continue probe;
      } else {
        const bytes = chunks[chunk];
        const off = recs[r + 1];
        for (let j = 0; j < n; j++) if (bytes[off + j] !== key[j]) continue probe;
      }
      out.key = key;
      const voff = recs[r + 4];
      out.value = copyOf(chunks[recs[r + 3]], voff, voff + recs[r + 5]);
      out.valueIsCopy = true;
      out.kind = lenKind & 3;
      out.opIndex = recs[r + 6];
      out.expiresAt = recs[r + 7];
      return true;
    }
    return this.hashNext === null ? false : this.get(key, out);
  }

  /** Adds up to `leaves` more leaves to the hash index. */
  private indexLeaves(leaves: number): void {
    const table = this.hashTable!;
    const recs = this.hashRecords!;
    const mask = (table.length >>> 1) - 1;
    let count = this.hashCount;
    let leaf = this.hashNext;
    for (let l = 0; leaf !== null && l < leaves; l++, leaf = leaf.next) {
      // The index is sized at its first read: the tree must not have grown since.
      assert(8 * (count + leaf.count) <= recs.length, "hash index of a tree that changed");
      const loc = leaf.loc;
      const num = leaf.num;
      const ord = leaf.ord;
      for (let o = 0; o < leaf.count; o++) {
        const s = ord[o];
        const b = LOC * s;
        const hash = this.hashOfSlot(leaf, s);
        let i = hash & mask;
        while (table[2 * i + 1] !== 0) i = (i + 1) & mask;
        table[2 * i] = hash;
        table[2 * i + 1] = count + 1;
        const r = 8 * count++;
        recs[r] = loc[b];
        if (loc[b] === KEY_INLINE) {
          const words = (loc[b + 2] + 3) >>> 2;
          const at = this.hashKeyWordsUsed;
          // Sized by the words counted at each insert: a shortfall would drop words silently.
          assert(at + words <= this.hashKeyWords!.length, "hash index key words overflow");
          copyInline(leaf.pfx, s * this.stride, this.hashKeyWords!, at, words);
          this.hashKeyWordsUsed = at + words;
          recs[r + 1] = at;
        } else recs[r + 1] = loc[b + 1];
        recs[r + 2] = loc[b + 2] * 4 + (loc[b + 5] & 3);
        recs[r + 3] = loc[b + 3];
        recs[r + 4] = loc[b + 4];
        recs[r + 5] = loc[b + 5] >>> 2;
        recs[r + 6] = num[2 * s];
        recs[r + 7] = num[2 * s + 1];
      }
    }
    this.hashCount = count;
    this.hashNext = leaf;
  }

  /** Fills `out` with the `i`-th record in key order of `leaf`, whose key is `key`. */
  private fill(leaf: Leaf, i: number, key: Uint8Array, out: RecordSlot): void {
    const loc = leaf.loc;
    const r = leaf.ord[i];
    const b = LOC * r;
    out.key = key; // the same bytes as the stored key: no view needed
    // A copy costs what a view does in Bun (one allocation), and the reader may keep it.
    const off = loc[b + 4];
    const lengthKind = loc[b + 5];
    out.value = copyOf(this.chunkBytes[loc[b + 3]], off, off + (lengthKind >>> 2));
    out.valueIsCopy = true;
    const num = leaf.num;
    out.opIndex = num[2 * r];
    out.expiresAt = num[2 * r + 1];
    out.kind = lengthKind & 3;
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
    this.loadSearch(key);
    this.descend(key, false);
    return this.searchLeaf(this.foundLeaf, key);
  }

  private loadSearch(key: Uint8Array): void {
    loadInline(key, this.stride - 1, this.search, 0);
  }

  /**
   * Compares the key in inline slot `slot` of `pfx` with the search key (loaded by
   * `loadSearch`): negative when the stored key is smaller. Returns {@link NEEDS_KEYS} when both
   * keys are longer than the inline bytes and tie on them: then only the keys can tell.
   */
  private compareInline(pfx: Uint32Array, slot: number): number {
    const search = this.search;
    const words = this.stride - 1;
    const base = slot * this.stride;
    for (let w = 0; w < words; w++) {
      const a = pfx[base + w];
      const b = search[w];
      if (a !== b) return a - b;
    }
    const storedLength = pfx[base + words];
    const keyLength = search[words];
    // Equal on the zero-padded inline bytes, and one key no longer than them: that key's bytes
    // are the other's first bytes (the padding matched the other's bytes there), so it is a
    // prefix of the other and the lengths decide. Only two longer keys need their bytes (and so
    // a key held only inline is never asked for its bytes: see `keyAt`).
    if (storedLength <= this.inlineKeyBytes || keyLength <= this.inlineKeyBytes) {
      return storedLength - keyLength;
    }
    return NEEDS_KEYS;
  }

  /** {@link compareInline} for the `i`-th key in key order of `leaf`, falling back to the keys. */
  private compareLeafSlot(leaf: Leaf, i: number, key: Uint8Array): number {
    const c = this.compareInline(leaf.pfx, leaf.ord[i]);
    return c === NEEDS_KEYS ? this.compare(this.keyAt(leaf, i), key) : c;
  }

  /** {@link compareInline} for separator `slot` of `b`, falling back to the keys. */
  private compareBranchSlot(b: Branch, slot: number, key: Uint8Array): number {
    const c = this.compareInline(b.pfx, slot);
    return c === NEEDS_KEYS ? this.compare(b.keys[slot], key) : c;
  }

  /** Walks from the root to the leaf for the search key, optionally recording the path. */
  private descend(key: Uint8Array, recordPath: boolean): number {
    let node = this.root;
    for (let level = 0; level < this.height; level++) {
      const b = node as Branch;
      // Largest i >= 1 with keys[i] <= key, else 0.
      let lo = 1;
      let hi = b.count;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (this.compareBranchSlot(b, mid, key) <= 0) lo = mid + 1;
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

  /** Index of the search key in `leaf`, or `~insertionIndex` when absent. */
  private searchLeaf(leaf: Leaf, key: Uint8Array): number {
    let lo = 0;
    let hi = leaf.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = this.compareLeafSlot(leaf, mid, key);
      if (c < 0) lo = mid + 1;
      else if (c > 0) hi = mid;
      else return mid;
    }
    return ~lo;
  }

  /**
   * Stores a record (the search key's inline form included) in slot `i` of `leaf`: key and
   * value bytes go to the arena, next to each other.
   */
  private writeRecord(
    leaf: Leaf,
    i: number,
    key: Uint8Array,
    value: Uint8Array,
    opIndex: number,
    kind: number,
    expiresAt: number,
  ): void {
    const n = key.length;
    const loc = leaf.loc;
    const b = LOC * i;
    if (n <= this.inlineKeyBytes) {
      // The inline words hold the whole key: only the value goes to the arena.
      loc[b + 4] = this.append(value, value.length);
      loc[b] = KEY_INLINE;
      loc[b + 1] = 0;
      this.inlineKeyWords += (n + 3) >>> 2;
    } else {
      const at = this.append(key, n + value.length);
      copyInto(this.chunk, at + n, value);
      loc[b] = this.chunkIndex;
      loc[b + 1] = at;
      loc[b + 4] = at + n;
    }
    loc[b + 2] = n;
    loc[b + 3] = this.chunkIndex;
    copyInline(this.search, 0, leaf.pfx, i * this.stride, this.stride);
    writeNumbers(leaf, i, opIndex, kind, expiresAt, value.length);
  }

  /**
   * Writes the record into the leaf's next free slot and makes it the `pos`-th in key order
   * (the records after it move one place in `ord`, not in their slots). Needs room.
   */
  private insertIntoLeaf(
    leaf: Leaf,
    pos: number,
    key: Uint8Array,
    value: Uint8Array,
    opIndex: number,
    kind: number,
    expiresAt: number,
  ): void {
    const n = leaf.count;
    const ord = leaf.ord;
    // A loop: the places moved are 2 bytes each, fewer than `copyWithin`'s call costs.
    for (let i = n; i > pos; i--) ord[i] = ord[i - 1];
    ord[pos] = n;
    this.writeRecord(leaf, n, key, value, opIndex, kind, expiresAt);
    leaf.count = n + 1;
    leaf.lastInsert = pos;
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
    // Edge inserts (appends, descending runs) leave the full side full. A run of appends in the
    // middle of the tree (the key right after this leaf's last insert: a sensor's next reading
    // while the leaf also holds the next sensor's first ones) splits at the insert and keeps the
    // new record at the end of the left leaf: the run then fills leaves completely and the
    // records after it are moved once, not at every other split.
    let split: number;
    let intoLeft: boolean;
    if (pos === fanout) {
      split = fanout;
      intoLeft = false;
    } else if (pos === 0) {
      split = 0;
      intoLeft = true;
    } else if (pos === leaf.lastInsert + 1) {
      split = pos;
      intoLeft = true;
    } else {
      split = fanout >>> 1;
      intoLeft = pos < split;
    }
    const right = this.newLeaf();
    this.moveLeafTail(leaf, split, right);
    if (intoLeft) this.insertIntoLeaf(leaf, pos, key, value, opIndex, kind, expiresAt);
    else this.insertIntoLeaf(right, pos - split, key, value, opIndex, kind, expiresAt);
    right.next = leaf.next;
    right.prev = leaf;
    if (leaf.next !== null) leaf.next.prev = right;
    leaf.next = right;
    if (this.tail === leaf) this.tail = right;
    // The separator is a view of the key's bytes in the arena (they never move or change): a
    // copy would be one more ArrayBuffer per leaf, and freeing tens of thousands of those when a
    // merged segment is dropped stalled Deno's event loop for 50-100 ms (malloc consolidation).
    // A key held only inline needs no bytes at all: its inline words decide every comparison
    // with it (`compareInline` asks for the keys only when both are longer than those words).
    const sep = right.loc[LOC * right.ord[0]] === KEY_INLINE ? EMPTY : this.keyAt(right, 0);
    this.insertChild(depth - 1, sep, right.pfx, this.stride * right.ord[0], right);
  }

  /**
   * Moves the records from the `from`-th in key order on of `leaf` into the empty `right` (into
   * its slots in key order). The records `leaf` keeps must then fill its slots `0 ..< from`:
   * each of them in a slot at or past `from` moves into a slot below it that a moved record
   * left free (as many of those as of these).
   */
  private moveLeafTail(leaf: Leaf, from: number, right: Leaf): void {
    const n = leaf.count;
    const ord = leaf.ord;
    const stride = this.stride;
    for (let i = from; i < n; i++) copySlot(stride, leaf, ord[i], right, i - from);
    const rord = right.ord;
    for (let i = 0; i < n - from; i++) rord[i] = i;
    right.count = n - from;
    const kept = this.slotMarks;
    kept.fill(0, 0, from);
    for (let i = 0; i < from; i++) if (ord[i] < from) kept[ord[i]] = 1;
    let hole = 0;
    for (let i = 0; i < from; i++) {
      const s = ord[i];
      if (s < from) continue;
      while (kept[hole] === 1) hole++;
      copySlot(stride, leaf, s, leaf, hole);
      kept[hole] = 1;
      ord[i] = hole;
    }
    leaf.count = from;
  }

  /**
   * Inserts `child` right after the path's child at `level`; its lower bound is `sep`, whose
   * inline form is at `sepAt` in `sepInline`.
   */
  private insertChild(
    level: number,
    sep: Uint8Array,
    sepInline: Uint32Array,
    sepAt: number,
    child: Branch | Leaf,
  ) {
    if (level < 0) {
      this.growRoot(sep, sepInline, sepAt, child);
      return;
    }
    const b = this.pathNodes[level];
    const j = this.pathIdx[level] + 1;
    const fanout = this.fanout;
    if (b.count < fanout) {
      this.insertIntoBranch(b, j, sep, sepInline, sepAt, child);
      return;
    }
    // As for leaves: a child appended at the end starts a branch of its own.
    const split = j === fanout ? fanout : fanout >>> 1;
    const right = this.newBranch();
    this.moveBranchTail(b, split, right);
    if (j < split) this.insertIntoBranch(b, j, sep, sepInline, sepAt, child);
    else this.insertIntoBranch(right, j - split, sep, sepInline, sepAt, child);
    this.insertChild(level - 1, right.keys[0], right.pfx, 0, right);
  }

  /** Adds a level: a new root over the old root and `right`. */
  private growRoot(
    sep: Uint8Array,
    sepInline: Uint32Array,
    sepAt: number,
    right: Branch | Leaf,
  ): void {
    assert(this.height + 1 < HEIGHT_MAX, "B+tree height bound exceeded");
    const root = this.newBranch();
    root.children[0] = this.root;
    root.count = 1;
    this.insertIntoBranch(root, 1, sep, sepInline, sepAt, right);
    this.root = root;
    this.height++;
  }

  /** Moves children [from, count) of `b` into the empty `right`. */
  private moveBranchTail(b: Branch, from: number, right: Branch): void {
    const n = b.count;
    for (let i = from; i < n; i++) {
      right.keys[i - from] = b.keys[i];
      right.children[i - from] = b.children[i];
      b.keys[i] = EMPTY;
    }
    const stride = this.stride;
    copyInline(b.pfx, stride * from, right.pfx, 0, stride * (n - from));
    right.count = n - from;
    b.count = from;
  }

  private insertIntoBranch(
    b: Branch,
    j: number,
    sep: Uint8Array,
    sepInline: Uint32Array,
    sepAt: number,
    child: Branch | Leaf,
  ): void {
    const n = b.count;
    for (let i = n - 1; i >= j; i--) {
      b.keys[i + 1] = b.keys[i];
      b.children[i + 1] = b.children[i];
    }
    const stride = this.stride;
    if (j < n) b.pfx.copyWithin(stride * (j + 1), stride * j, stride * n);
    copyInline(sepInline, sepAt, b.pfx, stride * j, stride);
    b.keys[j] = sep;
    b.children[j] = child;
    b.count = n + 1;
  }
}

/** Writes slot `i`'s opIndex and expiresAt, and its value's length with its kind. */
function writeNumbers(
  leaf: Leaf,
  i: number,
  opIndex: number,
  kind: number,
  expiresAt: number,
  valueLength: number,
) {
  const num = leaf.num;
  num[2 * i] = opIndex;
  num[2 * i + 1] = expiresAt;
  leaf.loc[LOC * i + 5] = valueLength * 4 + kind;
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
  /**
   * Where the current key is copied (no allocation per step): `key` is this buffer, or a view
   * of it when the key is shorter than the longest seen.
   */
  private keyBuf: Uint8Array = EMPTY;
  /** The current value, once read at this position (see `value`). */
  private valueView: Uint8Array = EMPTY;
  private valueStale = false;
  /** Where the current value is in the arena, taken at the step (an overwrite moves it later). */
  private valueChunk = 0;
  private valueOffset = 0;
  private valueLength = 0;
  /** The first slot of `leaf` that {@link touch} has not read yet, in the cursor's direction. */
  private touchedTo = -2;
  /** The tree's `layoutEpoch` when `valueChunk`/`valueOffset` were taken. */
  private layout = 0;

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
      return this.settle(leaf, this.reverse ? leaf.count - 1 : 0, false);
    }
    const r = tree.locate(target);
    let pos: number;
    if (this.reverse) pos = r >= 0 ? (exclusive ? r - 1 : r) : ~r - 1;
    else pos = r >= 0 ? (exclusive ? r + 1 : r) : ~r;
    return this.settle(tree.foundLeaf, pos, false);
  }

  /** See {@link RecordCursor.next}. */
  next(): boolean {
    const leaf = this.leaf;
    if (leaf !== null && this.seenModCount === this.tree.modCount) {
      // Common case: the next record is in the same leaf and nothing was inserted.
      const i = this.reverse ? this.idx - 1 : this.idx + 1;
      if (i >= 0 && i < leaf.count) {
        this.idx = i;
        if (i === this.touchedTo) this.touch(leaf, i);
        this.load(leaf, i);
        return true;
      }
      return this.settle(leaf, i, true);
    }
    if (!this.started) return this.seek(undefined);
    if (!this.valid) return false;
    return this.seek(this.key, true);
  }

  /**
   * The current value, a view into the arena made on first read at a position: records that a
   * merge shadows, and key-only scans, never pay for it. Valid until the cursor moves.
   */
  get value(): Uint8Array {
    if (!this.valid) return EMPTY;
    if (this.layout !== this.tree.layoutEpoch) this.relocate();
    if (this.valueStale) {
      const chunk = this.tree.chunkBytes[this.valueChunk];
      this.valueView = new Uint8Array(chunk.buffer, this.valueOffset, this.valueLength);
      this.valueStale = false;
    }
    return this.valueView;
  }

  /** Not used: the value always comes from the tree. */
  set value(_v: Uint8Array) {
    throw new Error("a B+tree cursor's value is read-only");
  }

  /** See {@link RecordCursor.copyValue}: one slice of the arena, no view. */
  copyValue(): Uint8Array {
    if (!this.valid) return new Uint8Array(0);
    if (this.layout !== this.tree.layoutEpoch) this.relocate();
    const off = this.valueOffset;
    return copyOf(this.tree.chunkBytes[this.valueChunk], off, off + this.valueLength);
  }

  /**
   * Loads the record in slot `i` of `leaf`: the key is copied into the cursor's own buffer (the
   * view is re-made only when the key length changes), the value is left for `value`.
   */
  private load(leaf: Leaf, i: number): void {
    const loc = leaf.loc;
    const s = leaf.ord[i];
    const b = LOC * s;
    const len = loc[b + 2];
    let key = this.key;
    // `key` is only ever EMPTY, the buffer or a view of it (set here), so its length decides.
    if (key.length !== len) {
      // The buffer is sized to the first key (and to any longer one), so equal-length keys use
      // it as is: a view of it (a shorter key) makes the runtime materialize its ArrayBuffer,
      // which costs more than a short range's whole step.
      if (this.keyBuf.length < len || this.keyBuf === EMPTY) this.keyBuf = new Uint8Array(len);
      key = this.key = len === this.keyBuf.length ? this.keyBuf : this.keyBuf.subarray(0, len);
    }
    const chunk = loc[b];
    if (chunk === KEY_INLINE) wordsToBytes(leaf.pfx, s * this.tree.stride, key);
    else {
      const src = this.tree.chunkBytes[chunk];
      const off = loc[b + 1];
      for (let j = 0; j < len; j++) key[j] = src[off + j];
    }
    this.valueChunk = loc[b + 3];
    this.valueOffset = loc[b + 4];
    this.layout = this.tree.layoutEpoch;
    const lengthKind = loc[b + 5];
    this.valueLength = lengthKind >>> 2;
    const num = leaf.num;
    this.opIndex = num[2 * s];
    this.expiresAt = num[2 * s + 1];
    this.kind = lengthKind & 3;
    this.valueStale = true;
  }

  /**
   * Takes the current record's value place again from its slot: the arena was laid out again
   * since the step (see `BPlusTree.startRelayout`; only a tree that no longer changes is, so the
   * slot still holds the record the cursor stepped to).
   */
  private relocate(): void {
    const leaf = this.leaf!;
    const b = LOC * leaf.ord[this.idx];
    const loc = leaf.loc;
    this.valueChunk = loc[b + 3];
    this.valueOffset = loc[b + 4];
    this.layout = this.tree.layoutEpoch;
    this.valueStale = true;
  }

  /** Makes the cursor invalid (it pins nothing: the tree is garbage collected). */
  close(): void {
    this.valid = false;
    this.leaf = null;
  }

  /** Positions at `pos` in `leaf`, stepping to the neighbour leaf when `pos` is just outside. */
  private settle(leaf: Leaf | null, pos: number, stepping: boolean): boolean {
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
    // A seek reads ahead only once the cursor steps (a range may want one record); a step lands
    // here only onto a neighbour leaf, and reads ahead at once.
    if (stepping) this.touch(leaf, pos);
    else this.touchedTo = this.reverse ? pos - 1 : pos + 1;
    this.leaf = leaf;
    this.idx = pos;
    this.load(leaf, pos);
    this.valid = true;
    return true;
  }

  /**
   * Reads one byte of the key and of the value of the next {@link TOUCH_AHEAD} records from
   * `pos` in `leaf` (in the cursor's direction), before any of them is used. The records of a
   * tree filled in random order are scattered over its arena, so each is a cache miss; issued
   * back to back, those misses overlap instead of stalling one step each. A few at a time, so a
   * short range (or a cursor a merge is about to leave) touches little it will not read.
   */
  private touch(leaf: Leaf, pos: number): void {
    const loc = leaf.loc;
    const chunks = this.tree.chunkBytes;
    let sink = 0;
    const from = this.reverse ? Math.max(0, pos - TOUCH_AHEAD + 1) : pos;
    const to = this.reverse ? pos + 1 : Math.min(leaf.count, pos + TOUCH_AHEAD);
    const ord = leaf.ord;
    for (let i = from; i < to; i++) {
      const b = LOC * ord[i];
      if (loc[b + 2] > 0 && loc[b] !== KEY_INLINE) sink |= chunks[loc[b]][loc[b + 1]];
      const length = loc[b + 5] >>> 2;
      if (length > 0) {
        // Both ends of the value (with its key in the arena before it, the key's read used to
        // bring in the value's first line).
        const value = chunks[loc[b + 3]];
        const at = loc[b + 4];
        sink |= value[at] | value[at + length - 1];
      }
    }
    touchSink ^= sink;
    this.touchedTo = this.reverse ? pos - TOUCH_AHEAD : pos + TOUCH_AHEAD;
  }
}

/** Records {@link BPlusTreeCursor.touch} reads ahead at a time. */
const TOUCH_AHEAD = 16;

/** Keeps {@link BPlusTreeCursor.touch}'s reads observable. */
let touchSink = 0;
