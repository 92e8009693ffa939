/**
 * The in-memory map for keys that end in a fixed-width field after a prefix-free prefix, such as
 * `sensor:<str>:ts:<u64be>`: one sorted run of records per prefix (per sensor), kept in a hash
 * table by prefix and in prefix order for cursors. Readings that arrive time-first (every sensor's
 * next reading in turn) are appends to the end of their sensor's run, where the B+tree lands each
 * one in a different cold leaf and shifts the next sensor's records; and a range over one sensor
 * reads one contiguous array, where the B+tree's leaves point into an arena laid out in arrival
 * order.
 *
 * Why the order holds: a key is `prefix + suffix`, the suffix the last field's `width` bytes.
 * Every field of a layout is fixed-width or terminated, so no prefix is a proper prefix of
 * another: two keys with different prefixes compare as their prefixes do, whatever the suffixes.
 * Memcmp order is then prefix order, and suffix order inside a prefix. The engine turns this map
 * on only for such layouts (`keySuffixWidth` of the keyspace); keys of any other shape would break
 * it.
 *
 * Shape: a run holds its records in pages (`Float64Array`s of 4, then 16, then 64 records each),
 * `stride` numbers per record: the suffix as big-endian u32 words (zero-padded), then the value's
 * place in the arena (-1: inline), its length and the record's kind in one number, opIndex and
 * expiresAt, then room for a small value inline (48 bytes a record for an 8-byte suffix, plus 16
 * for a value of 9-16 bytes). Pages are carved from slabs that the helper thread has pre-touched
 * (`util/helper_thread.ts`): growing a run by doubling one array instead made and faulted in
 * fresh memory at every step (measured: 40% of a time-series load). The prefix is stored once per
 * run.
 *
 * Values: a value no longer than the tree's inline room is kept in its record, so a range over
 * one sensor reads its values from the same few pages as its keys. The room is set by the first
 * value the tree takes (its length rounded up to 8 bytes, at most {@link INLINE_VALUE_MAX}; none
 * for a longer one): readings of one keyspace mostly share a size. Longer values live in an arena
 * like the B+tree's (append-only chunks; an overwrite appends the new value). Measured (warm
 * latest-100 queries over 1,000 sensors x 1,000 readings of 16 bytes): ~44 us a query with the
 * values in the arena, laid out in arrival order (a cache miss a value), against ~20 us with them
 * in the record. The inline bytes are written and moved through a byte view of the page, never
 * as doubles (a load from a Float64Array may rewrite a NaN's bits).
 *
 * Out-of-order keys: an insert before the end of its run moves the records after it up by one.
 * Moves of up to `shiftMax` records (a reading a little late) are always taken; a longer one (a
 * reading far behind its sensor's latest) only while all the records moved so far stay within
 * `shiftBudget` times the records held, so the moving costs O(shiftBudget) per insert amortized
 * and a late reading now and then does not cost a rebuild of the segment.
 *
 * What it declines (`upsert` returns {@link RUN_DECLINED}; the segment then rebuilds itself as a
 * {@link BPlusTree}, see `mutable_segment.ts`): a key shorter than the suffix; an insert that would
 * move more records than the rule above allows (keys in no particular order within a prefix);
 * more than `runsMax` prefixes (the sorted list of runs would cost too much to keep). A run tree
 * replaced that way points at its successor (`replacedBy`), and its open cursors move there.
 *
 * Invariants: runs are never empty; within a run suffixes strictly ascend; `sorted` (when built)
 * holds every run in ascending prefix order, and each run's `sortedIndex` is its place there (a
 * seek to a whole key finds its run by the prefix hash, then its place in the order by that);
 * `modCount` changes exactly when a new key is inserted (and when the tree is replaced), so
 * cursors re-seek then.
 *
 * Called by `mutable_segment.ts`.
 *
 * @module
 */

import { EMPTY, KIND_PUT, type RecordCursor, type RecordSlot } from "../iter/record.ts";
import { assert } from "../util/assert.ts";
import { compareBytes, copyInto, copyOf, newCopyArray } from "../util/bytes.ts";
import { freshPlainBuffer } from "../util/helper_thread.ts";
import { keyHashAt } from "./key_filter.ts";
import { type BPlusTree, nextArenaChunk } from "./bplus_tree.ts";

/** Whether this platform stores the low byte of a 32-bit word first (typed arrays use its order). */
const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;
/** Shifts that take bytes 0..3 (in memory order) out of a 32-bit word read from memory. */
const SHIFT0 = LITTLE_ENDIAN ? 0 : 24;
const SHIFT1 = LITTLE_ENDIAN ? 8 : 16;
const SHIFT2 = LITTLE_ENDIAN ? 16 : 8;
const SHIFT3 = LITTLE_ENDIAN ? 24 : 0;

/** Returned by {@link RunTree.upsert} when the record was inserted. */
export const RUN_INSERTED = 1;
/** Returned by {@link RunTree.upsert} when an equal key's record was overwritten. */
export const RUN_OVERWRITTEN = 0;
/** Returned by {@link RunTree.upsert} when the tree cannot take the record (nothing changed). */
export const RUN_DECLINED = -1;

/** Default most records an out-of-order insert may always move inside its run. */
const DEFAULT_RUN_SHIFT_MAX = 64;
/** Default bound on all records moved by inserts, per record held (see the module comment). */
const DEFAULT_RUN_SHIFT_BUDGET = 8;
/** Runs longer than this are searched from a guessed place (see {@link RunTree.lowerBound}). */
const GUESS_MIN_RECORDS = 32;
/** Default most runs (prefixes) a tree holds. */
const DEFAULT_RUNS_MAX = 16384;
/** Largest suffix handled (bytes): a `uuid` or `bytes:16` last field. */
export const RUN_SUFFIX_MAX = 16;

/**
 * Numbers per record after the suffix words: the value's place (chunk * {@link CHUNK_SPAN} +
 * offset), its length * 4 + kind, opIndex, expiresAt.
 */
const REC = 4;
/** Most value bytes a record keeps inline (see the module comment). */
export const INLINE_VALUE_MAX = 16;
/** The arena position of a value kept inline in its record. */
const INLINE = -1;
/**
 * Arena offsets are below this: regular chunks are at most 1 MiB, and a value of a chunk of
 * its own starts at 0 (see `nextArenaChunk`).
 */
const CHUNK_SPAN = 2 ** 20;
/** Records of a run's first page, of its second, and of every page after. */
const PAGE0 = 4;
const PAGE1 = 16;
const PAGE = 64;
/** The first record of a run's third page. */
const START2 = PAGE0 + PAGE1;
/** The page of record `i` of a run. */
function pageOf(i: number): number {
  return i < PAGE0 ? 0 : i < START2 ? 1 : 2 + ((i - START2) >> 6);
}
/** The slot of record `i` of a run in its page. */
function slotOf(i: number): number {
  return i < PAGE0 ? i : i < START2 ? i - PAGE0 : (i - START2) & (PAGE - 1);
}
/**
 * Slabs: 8, 16 and 32 KiB (plain: small segments stay small), then {@link SLAB_MAX} each, the one
 * size of ours that the helper pre-touches (it keeps spares of four sizes per process, and the
 * B+tree's leaf slabs take three: with 64 and 128 KiB slabs too, a process that also held
 * B+trees kept trading pooled sizes, and loads faulted fresh slabs in themselves).
 */
const SLAB_MIN = 8192;
const SLAB_SMALL_MAX = 32 * 1024;
const SLAB_MAX = 256 * 1024;

/** Bytes of the slab after one of `previous` bytes (0: the first); see {@link SLAB_MAX}. */
export function nextRunSlabBytes(previous: number): number {
  const next = 2 * previous;
  return next > SLAB_SMALL_MAX ? SLAB_MAX : Math.max(SLAB_MIN, next);
}
/** Estimated bytes of a run's objects besides its records (run, prefix copy, array headers). */
const RUN_OBJECT_BYTES = 200;

class Run {
  count = 0;
  /** Pages of `stride` numbers per record (see the module comment and {@link pageOf}). */
  readonly pages: Float64Array[] = [];
  /** A byte view of each page (for inline values). */
  readonly pageBytes: Uint8Array[] = [];
  /** A 32-bit word view of each page (to copy an inline value a word at a time). */
  readonly pageWords: Int32Array[] = [];
  /** The prefix bytes (a copy the run owns). */
  readonly prefix: Uint8Array;
  /** `keyHashAt` of the prefix. */
  readonly hash: number;
  /** This run's index in the tree's prefix order once that order is built (-1 before). */
  sortedIndex = -1;

  constructor(prefix: Uint8Array, hash: number) {
    this.prefix = prefix;
    this.hash = hash;
  }
}

/** Sets `sortedIndex` of `sorted[from..]` to their positions. */
function numberFrom(sorted: Run[], from: number): void {
  for (let i = from; i < sorted.length; i++) sorted[i].sortedIndex = i;
}

/** Memcmp of two runs' prefixes. */
function comparePrefixes(a: Run, b: Run): number {
  const x = a.prefix;
  const y = b.prefix;
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/** Sorted runs of records by key prefix; see the module comment. Never removes keys. */
export class RunTree {
  /** Distinct keys held. */
  size = 0;
  /** Changes whenever a new key is inserted (or the tree is replaced); cursors re-seek then. */
  modCount = 0;
  /** Bytes of the suffix (the layout's last field). */
  readonly width: number;
  /** u32 words of the suffix. */
  readonly words: number;
  /** Numbers per record in a run (set, with the inline room, by the first value). */
  stride: number;
  /** Bytes of a value kept inline in its record (see the module comment). */
  inlineMax = 0;
  /** Numbers before a record's inline value bytes. */
  readonly inlineAt: number;
  /** The tree that took this one's records over, once it declined one (see the module comment). */
  replacedBy: BPlusTree | null = null;
  /** Arena chunks, each as a Uint8Array over its whole buffer. */
  readonly chunkBytes: Uint8Array[] = [];
  private chunk: Uint8Array = EMPTY;
  private chunkIndex = -1;
  private chunkUsed = 0;
  private readonly shiftMax: number;
  private readonly shiftBudget: number;
  private readonly runsMax: number;
  /** Records moved by out-of-order inserts so far. */
  private shifted = 0;
  /** Runs in creation order. */
  private readonly all: Run[] = [];
  /** Runs in prefix order, or null until a reader needs it. */
  private sorted: Run[] | null = null;
  /** Open addressing by prefix hash: index into `all` + 1, 0 = empty. */
  private table = new Int32Array(64);
  /** Suffix words of the key being inserted or looked up. */
  private readonly search: Float64Array;
  /** Scratch for {@link runEndingAt}'s probe key. */
  private probe = new Uint8Array(32);
  private allocated = 0;
  /** The slab pages are carved from, and the numbers of it in use. */
  private slab = new Float64Array(0);
  private slabUsed = 0;

  /**
   * `width`: suffix bytes, 1..{@link RUN_SUFFIX_MAX}. `shiftMax`, `shiftBudget`, `runsMax`: see
   * the module comment (tests make them small).
   */
  constructor(
    width: number,
    shiftMax = DEFAULT_RUN_SHIFT_MAX,
    runsMax = DEFAULT_RUNS_MAX,
    shiftBudget = DEFAULT_RUN_SHIFT_BUDGET,
  ) {
    assert(width >= 1 && width <= RUN_SUFFIX_MAX, `bad run suffix width ${width}`);
    this.width = width;
    this.words = (width + 3) >>> 2;
    this.stride = this.inlineAt = this.words + REC;
    this.shiftMax = shiftMax;
    this.runsMax = runsMax;
    this.shiftBudget = shiftBudget;
    this.search = new Float64Array(this.words);
    this.allocated = 4 * this.table.length;
  }

  /** Bytes allocated: arena chunks, run arrays, prefixes and the hash table (estimated objects). */
  memoryBytes(): number {
    return this.allocated;
  }

  /**
   * Inserts the record (copying the value into the arena), or overwrites the record of an equal
   * key in place. Returns {@link RUN_INSERTED}, {@link RUN_OVERWRITTEN}, or {@link RUN_DECLINED}
   * (nothing changed: see the module comment).
   */
  upsert(key: Uint8Array, value: Uint8Array, opIndex: number, kind: number, expiresAt: number): number {
    const plen = key.length - this.width;
    if (plen < 0) return RUN_DECLINED;
    const hash = keyHashAt(key, 0, plen);
    let run = this.find(key, plen, hash);
    if (run === null) {
      if (this.all.length >= this.runsMax) return RUN_DECLINED;
      if (this.all.length === 0) this.sizeInlineRoom(value.length);
      run = this.newRun(key, plen, hash);
    }
    this.loadSearch(key, plen);
    const n = run.count;
    const stride = this.stride;
    const words = this.words;
    const pages = run.pages;
    let pos = n;
    if (n > 0) {
      const c = this.compareAt(pages[pageOf(n - 1)], slotOf(n - 1) * stride);
      if (c <= 0) {
        // Not an append: the key is at or before the run's last one.
        const r = c === 0 ? n - 1 : this.searchRun(run, 0, n - 1);
        if (r >= 0) {
          const p = pageOf(r);
          const rec = pages[p];
          const b = slotOf(r) * stride + words;
          rec[b] = this.storeValue(run.pageBytes[p], b - words, value);
          rec[b + 1] = value.length * 4 + kind;
          rec[b + 2] = opIndex;
          rec[b + 3] = expiresAt;
          return RUN_OVERWRITTEN;
        }
        pos = ~r;
        const move = n - pos;
        if (move > this.shiftMax && this.shifted + move > this.shiftBudget * this.size) return RUN_DECLINED;
        this.shifted += move;
      }
    }
    if (pageOf(n) === pages.length) this.addPage(run);
    // Move the records after `pos` up by one, across pages: the numbers as numbers, the inline
    // value bytes as bytes.
    const inlineAt = this.inlineAt;
    const inlineBytes = this.inlineMax;
    for (let j = n; j > pos; j--) {
      const tp = pageOf(j);
      const to = pages[tp];
      const tb = slotOf(j) * stride;
      const fp = pageOf(j - 1);
      const from = pages[fp];
      const fb = slotOf(j - 1) * stride;
      for (let k = 0; k < inlineAt; k++) to[tb + k] = from[fb + k];
      if (inlineBytes > 0 && to[tb + words] === INLINE) {
        const tBytes = run.pageBytes[tp];
        const fBytes = run.pageBytes[fp];
        const t = this.inlineOffset(tb);
        const f = this.inlineOffset(fb);
        for (let k = 0; k < inlineBytes; k++) tBytes[t + k] = fBytes[f + k];
      }
    }
    const p = pageOf(pos);
    const rec = pages[p];
    const b = slotOf(pos) * stride;
    const search = this.search;
    for (let w = 0; w < words; w++) rec[b + w] = search[w];
    rec[b + words] = this.storeValue(run.pageBytes[p], b, value);
    rec[b + words + 1] = value.length * 4 + kind;
    rec[b + words + 2] = opIndex;
    rec[b + words + 3] = expiresAt;
    run.count = n + 1;
    this.size++;
    this.modCount++;
    return RUN_INSERTED;
  }

  /** Fills `out` with the record of `key` and returns true, or returns false if absent. */
  get(key: Uint8Array, out: RecordSlot): boolean {
    const plen = key.length - this.width;
    if (plen < 0) return false;
    const run = this.find(key, plen, keyHashAt(key, 0, plen));
    if (run === null) return false;
    this.loadSearch(key, plen);
    const r = this.searchRun(run, 0, run.count - 1);
    if (r < 0) return false;
    const p = pageOf(r);
    const rec = run.pages[p];
    const b = slotOf(r) * this.stride + this.words;
    out.key = key;
    const at = rec[b];
    const lengthKind = rec[b + 1];
    if (at === INLINE) {
      const off = this.inlineOffset(b - this.words);
      out.value = copyOf(run.pageBytes[p], off, off + (lengthKind >>> 2));
    } else {
      const chunk = (at / CHUNK_SPAN) | 0;
      const off = at - chunk * CHUNK_SPAN;
      out.value = copyOf(this.chunkBytes[chunk], off, off + (lengthKind >>> 2));
    }
    out.valueIsCopy = true;
    out.opIndex = rec[b + 2];
    out.expiresAt = rec[b + 3];
    out.kind = lengthKind & 3;
    return true;
  }

  /**
   * Calls `visit` for every record in key order: its key (in a buffer reused between calls, so
   * copy to keep), a view of its value, and its numbers.
   */
  forEach(
    visit: (key: Uint8Array, value: Uint8Array, opIndex: number, kind: number, expiresAt: number) => void,
  ): void {
    const buf = new Uint8Array(this.maxKeyLength());
    const stride = this.stride;
    const words = this.words;
    for (const run of this.sortedRuns()) {
      const plen = run.prefix.length;
      buf.set(run.prefix);
      const key = buf.subarray(0, plen + this.width);
      for (let i = 0; i < run.count; i++) {
        const p = pageOf(i);
        const rec = run.pages[p];
        const b = slotOf(i) * stride;
        this.writeSuffix(key, plen, rec, b);
        const at = rec[b + words];
        const lengthKind = rec[b + words + 1];
        let value: Uint8Array;
        if (at === INLINE) {
          const off = this.inlineOffset(b);
          value = run.pageBytes[p].subarray(off, off + (lengthKind >>> 2));
        } else {
          const chunk = (at / CHUNK_SPAN) | 0;
          value = new Uint8Array(this.chunkBytes[chunk].buffer, at - chunk * CHUNK_SPAN, lengthKind >>> 2);
        }
        visit(key, value, rec[b + words + 2], lengthKind & 3, rec[b + words + 3]);
      }
    }
  }

  /** Calls `visit` with the bytes, offset and length of every key, in no particular order. */
  forEachKey(visit: (bytes: Uint8Array, offset: number, length: number) => void): void {
    const buf = new Uint8Array(this.maxKeyLength());
    const stride = this.stride;
    for (const run of this.all) {
      const plen = run.prefix.length;
      buf.set(run.prefix);
      for (let i = 0; i < run.count; i++) {
        this.writeSuffix(buf, plen, run.pages[pageOf(i)], slotOf(i) * stride);
        visit(buf, 0, plen + this.width);
      }
    }
  }

  /** A cursor that survives inserts between calls (see {@link RunTreeCursor}). */
  cursor(reverse: boolean): RunTreeCursor {
    return new RunTreeCursor(this, reverse);
  }

  /** The runs in prefix order (built on first need, then kept up to date by inserts). */
  sortedRuns(): Run[] {
    let sorted = this.sorted;
    if (sorted === null) {
      sorted = this.sorted = this.all.slice().sort(comparePrefixes);
      numberFrom(sorted, 0);
    }
    return sorted;
  }

  /**
   * Finds the first key >= `target` (> with `strict`): its sorted run in `foundRun` and its
   * index there in `foundIndex`; `foundRun` is `sortedRuns().length` when every key is before
   * `target`.
   */
  lowerBound(target: Uint8Array, strict: boolean): void {
    const runs = this.sortedRuns();
    this.foundIndex = 0;
    // A target that is a run's prefix plus `width` bytes (a whole key: the usual seek of a range
    // over one prefix) lies in that run, found by its hash: one probe where the search by
    // prefix below reads ~log2(runs) runs' prefixes, each a cache miss in a big tree.
    const keyPrefix = target.length - this.width;
    let run = keyPrefix >= 0 ? this.find(target, keyPrefix, keyHashAt(target, 0, keyPrefix)) : null;
    if (run !== null) {
      this.foundRun = run.sortedIndex;
    } else if ((run = this.find(target, target.length, keyHashAt(target, 0, target.length))) !== null) {
      // The target is a run's prefix (where a forward range over that prefix starts, and a
      // reverse one ends): every key of the run is after it (longer), every key before the run
      // before it (runs are prefix-free).
      this.foundRun = run.sortedIndex;
      return;
    } else if ((run = this.runEndingAt(target)) !== null) {
      this.foundRun = run.sortedIndex + 1;
      return;
    } else {
      // First run whose keys are not all before `target`.
      let lo = 0;
      let hi = runs.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (classify(runs[mid].prefix, target) < 0) lo = mid + 1;
        else hi = mid;
      }
      this.foundRun = lo;
      if (lo === runs.length) return;
      run = runs[lo];
      if (classify(run.prefix, target) > 0) return;
    }
    const plen = run.prefix.length;
    // The target starts with this run's prefix: compare suffixes. Keys of the run are
    // `prefix + suffix`; the target's rest is zero-padded (or cut) to the suffix's words, and a
    // tie on those words is decided by the lengths: a rest shorter than the suffix is before
    // the record (the record is longer), a longer one after it.
    this.loadSearch(target, plen);
    const restLength = target.length - plen;
    const tie = restLength < this.width ? 1 : restLength > this.width ? -1 : 0;
    // The answer is the first record not before the target: `a` and `z` bracket it (records
    // before `a` are before the target, record `z` is not), narrowed by a binary search. In a
    // long run the bracket comes from a guess first: the place the target's suffix would have
    // if the run's suffixes were evenly spread between its first and last (readings at a steady
    // rate are), then steps of 1, 2, 4, ... away from it until the answer is passed. A reading's
    // place is then found in a handful of records near it, not ~log2(count) spread over the run
    // (each on another page). Unevenly spread suffixes only cost more steps.
    const n = run.count;
    let a = 0;
    let z = n;
    if (n > GUESS_MIN_RECORDS) {
      const g = this.guess(run, n);
      if (this.isBefore(run, g, tie, strict)) {
        a = g + 1;
        for (let step = 1; ; step *= 2) {
          const p = g + step;
          if (p >= n) break;
          if (!this.isBefore(run, p, tie, strict)) {
            z = p;
            break;
          }
          a = p + 1;
        }
      } else {
        z = g;
        for (let step = 1; ; step *= 2) {
          const p = g - step;
          if (p < 0) break;
          if (this.isBefore(run, p, tie, strict)) {
            a = p + 1;
            break;
          }
          z = p;
        }
      }
    }
    while (a < z) {
      const mid = (a + z) >>> 1;
      if (this.isBefore(run, mid, tie, strict)) a = mid + 1;
      else z = mid;
    }
    // Past the run's last record: the answer is the next run's first.
    if (a === n) this.foundRun++;
    else this.foundIndex = a;
  }

  /**
   * The run whose prefix is `target` with its last byte one less, or null: the target is then the
   * exclusive end of a range over that prefix (its `prefixSuccessor`: where a reverse range over
   * one prefix, such as a sensor's latest readings, seeks), found by one hash probe instead of a
   * search of the prefixes. Every key of that run is before the target and every key of the
   * runs after it is after: a prefix between the two would have the run's prefix as a proper
   * prefix (runs are prefix-free), and no key equals the target (its run's prefix would be a
   * proper prefix of the target, so of the run's prefix too).
   */
  private runEndingAt(target: Uint8Array): Run | null {
    const n = target.length;
    if (n === 0 || target[n - 1] === 0) return null;
    let probe = this.probe;
    if (probe.length < n) probe = this.probe = new Uint8Array(Math.max(n, 2 * probe.length));
    for (let i = 0; i < n - 1; i++) probe[i] = target[i];
    probe[n - 1] = target[n - 1] - 1;
    return this.find(probe, n, keyHashAt(probe, 0, n));
  }

  /**
   * Whether record `i` of `run` comes before the target loaded by `loadSearch` (or is equal to
   * it, when `strict`). `tie`: the order of a record against a target whose suffix words are
   * equal to its own (the target's rest is shorter or longer than the suffix; see lowerBound).
   */
  private isBefore(run: Run, i: number, tie: number, strict: boolean): boolean {
    let c = this.compareAt(run.pages[pageOf(i)], slotOf(i) * this.stride); // search vs record
    if (c === 0) c = -tie; // record vs target is `tie`; search vs record is its negation
    return c > 0 || (c === 0 && strict);
  }

  /**
   * Where the loaded search suffix would be in `run` (`count` records) if its suffixes were
   * evenly spread between the first and the last: an index in [0, count). From the first two
   * suffix words (an 8-byte timestamp's), as one number.
   */
  private guess(run: Run, count: number): number {
    const pages = run.pages;
    const last = pages[pageOf(count - 1)];
    const lb = slotOf(count - 1) * this.stride;
    const first = pages[0];
    const search = this.search;
    const two = this.words > 1;
    const lo = two ? first[0] * 0x1_0000_0000 + first[1] : first[0];
    const hi = two ? last[lb] * 0x1_0000_0000 + last[lb + 1] : last[lb];
    const s = two ? search[0] * 0x1_0000_0000 + search[1] : search[0];
    if (!(s > lo)) return 0;
    if (!(s < hi)) return count - 1;
    // lo < s < hi, so the fraction is in (0, 1]: the index is in [0, count).
    return Math.floor(((s - lo) / (hi - lo)) * (count - 1));
  }

  /** Results of {@link lowerBound}. */
  foundRun = 0;
  foundIndex = 0;

  /** Longest key held (prefix + suffix). */
  private maxKeyLength(): number {
    let n = 0;
    for (const run of this.all) n = Math.max(n, run.prefix.length);
    return n + this.width;
  }

  /** Writes the suffix of the record at `b` of `rec` into `key` from `at`. */
  writeSuffix(key: Uint8Array, at: number, rec: Float64Array, b: number): void {
    const width = this.width;
    let w = 0;
    let i = 0;
    for (; i + 4 <= width; i += 4, w++) {
      const word = rec[b + w];
      key[at + i] = word >>> 24;
      key[at + i + 1] = (word >>> 16) & 0xff;
      key[at + i + 2] = (word >>> 8) & 0xff;
      key[at + i + 3] = word & 0xff;
    }
    if (i < width) {
      const word = rec[b + w];
      for (let s = 24; i < width; i++, s -= 8) key[at + i] = (word >>> s) & 0xff;
    }
  }

  /** The run of prefix `key[0, plen)`, or null. */
  private find(key: Uint8Array, plen: number, hash: number): Run | null {
    const table = this.table;
    const mask = table.length - 1;
    const all = this.all;
    probe: for (let i = hash & mask;; i = (i + 1) & mask) {
      const ref = table[i];
      if (ref === 0) return null;
      const run = all[ref - 1];
      if (run.hash !== hash) continue;
      const p = run.prefix;
      if (p.length !== plen) continue;
      for (let j = 0; j < plen; j++) if (p[j] !== key[j]) continue probe;
      return run;
    }
  }

  private newRun(key: Uint8Array, plen: number, hash: number): Run {
    const run = new Run(key.slice(0, plen), hash);
    this.allocated += plen + RUN_OBJECT_BYTES;
    const all = this.all;
    all.push(run);
    if (2 * all.length > this.table.length) this.rehash(2 * this.table.length);
    else this.place(run.hash, all.length);
    const sorted = this.sorted;
    if (sorted !== null) {
      let lo = 0;
      let hi = sorted.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (comparePrefixes(sorted[mid], run) < 0) lo = mid + 1;
        else hi = mid;
      }
      sorted.splice(lo, 0, run);
      numberFrom(sorted, lo);
    }
    return run;
  }

  private place(hash: number, ref: number): void {
    const table = this.table;
    const mask = table.length - 1;
    let i = hash & mask;
    while (table[i] !== 0) i = (i + 1) & mask;
    table[i] = ref;
  }

  private rehash(size: number): void {
    this.allocated += 4 * (size - this.table.length);
    this.table = new Int32Array(size);
    const all = this.all;
    for (let r = 0; r < all.length; r++) this.place(all[r].hash, r + 1);
  }

  /** Gives `run` its next page (see {@link pageOf}), carved from the slab. */
  private addPage(run: Run): void {
    const k = run.pages.length;
    const size = (k === 0 ? PAGE0 : k === 1 ? PAGE1 : PAGE) * this.stride;
    if (this.slabUsed + size > this.slab.length) {
      const bytes = nextRunSlabBytes(this.slab.byteLength);
      this.slab = new Float64Array(freshPlainBuffer(Math.max(bytes, 8 * size)));
      this.allocated += this.slab.byteLength;
      this.slabUsed = 0;
    }
    const page = this.slab.subarray(this.slabUsed, this.slabUsed + size);
    run.pages.push(page);
    run.pageBytes.push(new Uint8Array(page.buffer, page.byteOffset, page.byteLength));
    run.pageWords.push(new Int32Array(page.buffer, page.byteOffset, 2 * size));
    this.slabUsed += size;
  }

  /** Loads the suffix words of `key[plen ..]` (zero-padded, at most `width` bytes) into `search`. */
  private loadSearch(key: Uint8Array, plen: number): void {
    const search = this.search;
    const end = Math.min(key.length, plen + this.width);
    for (let w = 0, i = plen; w < this.words; w++, i += 4) {
      if (i + 4 <= end) {
        search[w] = ((key[i] << 24) | (key[i + 1] << 16) | (key[i + 2] << 8) | key[i + 3]) >>> 0;
      } else {
        let word = 0;
        for (let j = i; j < i + 4; j++) word = word * 256 + (j < end ? key[j] : 0);
        search[w] = word;
      }
    }
  }

  /** Sign of `search` against the suffix of the record at `b` of `rec`. */
  private compareAt(rec: Float64Array, b: number): number {
    const search = this.search;
    for (let w = 0; w < this.words; w++) {
      const d = search[w] - rec[b + w];
      if (d !== 0) return d;
    }
    return 0;
  }

  /** Binary search of `search` in records `lo..hi` of `run`: its index, or ~insertion index. */
  private searchRun(run: Run, lo: number, hi: number): number {
    const pages = run.pages;
    const stride = this.stride;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = this.compareAt(pages[pageOf(mid)], slotOf(mid) * stride);
      if (c > 0) lo = mid + 1;
      else if (c < 0) hi = mid - 1;
      else return mid;
    }
    return ~lo;
  }

  /**
   * Sets the inline room by the tree's first value (see the module comment): its length rounded
   * up to 8 bytes, none when it is longer than {@link INLINE_VALUE_MAX}.
   */
  private sizeInlineRoom(length: number): void {
    const room = length <= INLINE_VALUE_MAX ? Math.max(8, (length + 7) & ~7) : 0;
    this.inlineMax = room;
    this.stride = this.inlineAt + room / 8;
  }

  /** Byte offset, in its page, of the inline value of the record whose numbers start at `b`. */
  inlineOffset(b: number): number {
    return (b + this.inlineAt) * 8;
  }

  /**
   * Stores `value` for the record at number `b` of a page whose bytes are `bytes`: inline when
   * it fits (returns {@link INLINE}), else in the arena (returns its place there).
   */
  private storeValue(bytes: Uint8Array, b: number, value: Uint8Array): number {
    if (value.length <= this.inlineMax) {
      copyInto(bytes, this.inlineOffset(b), value);
      return INLINE;
    }
    return this.chunkIndexFor(value.length) * CHUNK_SPAN + this.append(value);
  }

  /** The index of the chunk `append` will put `length` bytes into (making room first). */
  private chunkIndexFor(length: number): number {
    // The first value makes the first chunk, even an empty one (its index must name a chunk).
    if (this.chunkUsed + length > this.chunk.length || this.chunkIndex < 0) {
      this.chunk = nextArenaChunk(this.chunk.length, length);
      this.allocated += this.chunk.length;
      this.chunkBytes.push(this.chunk);
      this.chunkIndex = this.chunkBytes.length - 1;
      this.chunkUsed = 0;
    }
    return this.chunkIndex;
  }

  /** Copies `bytes` into the current chunk (room made by {@link chunkIndexFor}); their offset. */
  private append(bytes: Uint8Array): number {
    const at = this.chunkUsed;
    copyInto(this.chunk, at, bytes);
    this.chunkUsed = at + bytes.length;
    return at;
  }
}

/**
 * Where a run of prefix `prefix` stands against `target`: -1 when all its keys are before the
 * target, 1 when all are after it, 0 when the target starts with the prefix (the suffixes decide).
 */
function classify(prefix: Uint8Array, target: Uint8Array): number {
  const p = prefix.length;
  const n = Math.min(p, target.length);
  for (let i = 0; i < n; i++) {
    if (prefix[i] !== target[i]) return prefix[i] < target[i] ? -1 : 1;
  }
  // The target is a proper prefix of the run's prefix: every key of the run is longer, so after.
  return target.length < p ? 1 : 0;
}

/**
 * A {@link RecordCursor} over a {@link RunTree}. Survives inserts between calls: when the tree's
 * `modCount` changed since the cursor positioned itself, `next()` re-seeks to the first key
 * strictly after the last key it returned (in its direction). Once the tree was replaced by a
 * B+tree, it continues on that tree's cursor. Once exhausted it stays so until the next `seek`.
 * Given an end ({@link RunTreeCursor.limitEnd}), it is exhausted at the first record past it.
 */
export class RunTreeCursor implements RecordCursor {
  key: Uint8Array = EMPTY;
  opIndex = 0;
  kind = KIND_PUT;
  expiresAt = 0;
  valid = false;
  readonly reverse: boolean;
  private readonly tree: RunTree;
  private runs: Run[] = [];
  private ri = 0;
  private idx = 0;
  private run: Run | null = null;
  private seenModCount = -1;
  private started = false;
  /** The key buffer (`key` is it or a view of it) and the run whose prefix it holds. */
  private keyBuf: Uint8Array = EMPTY;
  private keyRun: Run | null = null;
  private valueView: Uint8Array = EMPTY;
  private valueStale = false;
  /** Where the current value's bytes are (an arena chunk), unless it is {@link inline}. */
  private valueSource: Uint8Array = EMPTY;
  private valueOffset = 0;
  private valueLength = 0;
  /** Whether the current value is inline: then its bytes are in {@link inlineWords}. */
  private inline = false;
  /**
   * The current record's inline value as 32-bit words of the page (so in its byte order),
   * copied when the cursor lands on it: the record's own bytes change when an equal key is
   * overwritten or a late key moves records up, and a value must stay as it was until the
   * cursor moves (arena values never change in place). A word at a time: a byte at a time cost
   * ~30 ns a record (a cursor walk over a run tree, `next` and `load`, ~72 ns a record against
   * ~48 by words and ~42 with no copy). Words alone, with no byte view over them: a view needs
   * an `ArrayBuffer` of its own per cursor, which cost more than the copies in a query that
   * reads a record or two (a sensor's latest).
   */
  private readonly inlineWords = new Int32Array(INLINE_VALUE_MAX / 4);
  /** The replacing tree's cursor, once the tree was replaced. */
  private inner: RecordCursor | null = null;
  /** The end set by {@link limitEnd} (undefined: none), and whether a record at it is in. */
  private endKey: Uint8Array | undefined = undefined;
  private endInclusive = true;
  /**
   * Where the end is in the sorted runs (see {@link placeEnd}), once `endPlaced` (false from
   * each seek to the first step after it).
   */
  private endRun = 0;
  private endIndex = 0;
  private endPlaced = true;
  /**
   * Forward: the current run's first index past the end, or its count. Reverse: its first index
   * not past the end, or 0. Set by {@link settle}, which also ends the stream when a step leaves
   * the run the end lies in.
   */
  private stop = 0;

  /** Prefer {@link RunTree.cursor}. */
  constructor(tree: RunTree, reverse: boolean) {
    this.tree = tree;
    this.reverse = reverse;
  }

  /** See {@link RecordCursor.seek}. */
  seek(target: Uint8Array | undefined, exclusive = false): boolean {
    this.started = true;
    const tree = this.tree;
    if (tree.replacedBy !== null) return this.seekInner(target, exclusive);
    this.seenModCount = tree.modCount;
    const runs = this.runs = tree.sortedRuns();
    this.endPlaced = this.endKey === undefined;
    if (target === undefined) {
      if (this.reverse) {
        const ri = runs.length - 1;
        return this.settle(ri, ri < 0 ? 0 : runs[ri].count - 1);
      }
      return this.settle(0, 0);
    }
    // Forward: the first key >= target (> when exclusive). Reverse: the one before the first
    // key > target (>= when exclusive).
    tree.lowerBound(target, this.reverse ? !exclusive : exclusive);
    let ri = tree.foundRun;
    let idx = tree.foundIndex;
    if (this.reverse) {
      if (idx > 0) idx--;
      else {
        ri--;
        idx = ri >= 0 ? runs[ri].count - 1 : 0;
      }
    }
    return this.settle(ri, idx);
  }

  /**
   * See {@link RecordCursor.limitEnd}: the end's place in the runs is found at the first step
   * after each seek (one search; the record a seek lands on is compared with the end, so a
   * query that reads one record, such as a sensor's latest, searches once), and each step
   * compares indices with it instead of keys. Always true.
   */
  limitEnd(key: Uint8Array, inclusive: boolean): boolean {
    this.endKey = key;
    this.endInclusive = inclusive;
    // Positioned already: the next step re-seeks after the current key, which places the end.
    this.seenModCount = -1;
    return true;
  }

  /**
   * Finds where the end is: forward, the first key past it (> the end when inclusive, >= when
   * not); reverse, the first key not past it (>= the end when inclusive, > when not).
   */
  private placeEnd(): void {
    const tree = this.tree;
    tree.lowerBound(this.endKey!, this.reverse ? !this.endInclusive : this.endInclusive);
    this.endRun = tree.foundRun;
    this.endIndex = tree.foundIndex;
    this.endPlaced = true;
  }

  /**
   * The first step after a seek with an end: places the end, sets the current run's `stop` by
   * it (the current record is inside: `settle` checked it), then steps.
   */
  private placeEndAndStep(): boolean {
    this.placeEnd();
    const run = this.run!;
    const ri = this.ri;
    if (this.reverse) this.stop = ri === this.endRun ? this.endIndex : 0;
    else this.stop = ri === this.endRun ? this.endIndex : run.count;
    return this.next();
  }

  /** See {@link RecordCursor.next}. */
  next(): boolean {
    const run = this.run;
    if (run !== null && this.seenModCount === this.tree.modCount) {
      if (this.reverse) {
        if (this.idx > this.stop) {
          this.load(run, --this.idx);
          return true;
        }
        if (!this.endPlaced) return this.placeEndAndStep();
        const ri = this.ri - 1;
        return this.settle(ri, ri < 0 ? 0 : this.runs[ri].count - 1);
      }
      if (this.idx + 1 < this.stop) {
        this.load(run, ++this.idx);
        return true;
      }
      if (!this.endPlaced) return this.placeEndAndStep();
      return this.settle(this.ri + 1, 0);
    }
    const inner = this.inner;
    if (inner !== null) return this.fromInner(inner.next());
    if (!this.started) return this.seek(undefined);
    if (!this.valid) return false;
    return this.seek(this.key, true);
  }

  /**
   * The current value, made on first read at a position: a view into the arena, or an array of
   * its own built from the cursor's copy of an inline value (valid until the cursor moves, as
   * `key` is).
   */
  get value(): Uint8Array {
    if (!this.valid) return EMPTY;
    const inner = this.inner;
    if (inner !== null) return inner.value;
    if (this.valueStale) {
      if (this.inline) this.valueView = this.inlineBytes();
      else {
        const source = this.valueSource;
        this.valueView = new Uint8Array(source.buffer, source.byteOffset + this.valueOffset, this.valueLength);
      }
      this.valueStale = false;
    }
    return this.valueView;
  }

  /** Not used: the value always comes from the tree. */
  set value(_v: Uint8Array) {
    throw new Error("a run tree cursor's value is read-only");
  }

  /** See {@link RecordCursor.copyValue}: one copy of the value's bytes, no view. */
  copyValue(): Uint8Array {
    if (!this.valid) return new Uint8Array(0);
    const inner = this.inner;
    if (inner !== null) return inner.copyValue();
    if (this.inline) return this.inlineBytes();
    const off = this.valueOffset;
    return copyOf(this.valueSource, off, off + this.valueLength);
  }

  /** A new array holding the current inline value (from {@link inlineWords}). */
  private inlineBytes(): Uint8Array {
    const n = this.valueLength;
    const out = newCopyArray(n);
    const words = this.inlineWords;
    let k = 0;
    for (let i = 0; k + 4 <= n; i++, k += 4) {
      const w = words[i];
      out[k] = w >> SHIFT0;
      out[k + 1] = w >> SHIFT1;
      out[k + 2] = w >> SHIFT2;
      out[k + 3] = w >> SHIFT3;
    }
    if (k < n) {
      const w = words[k >> 2];
      out[k] = w >> SHIFT0;
      if (k + 1 < n) out[k + 1] = w >> SHIFT1;
      if (k + 2 < n) out[k + 2] = w >> SHIFT2;
    }
    return out;
  }

  /** Makes the cursor invalid. */
  close(): void {
    this.valid = false;
    this.run = null;
    this.inner?.close();
  }

  /**
   * Positions at record `idx` of sorted run `ri`, or invalid when `ri` is outside or the record
   * is past the end (see {@link limitEnd}); sets where the current run's records stop.
   */
  private settle(ri: number, idx: number): boolean {
    const runs = this.runs;
    if (ri < 0 || ri >= runs.length) return this.exhaust();
    const run = runs[ri];
    if (this.endKey === undefined) {
      this.stop = this.reverse ? 0 : run.count;
    } else if (!this.endPlaced) {
      // Right after a seek: this record is compared with the end below; the next step places
      // the end (a stop at this record sends it there).
      this.stop = this.reverse ? idx : idx + 1;
    } else if (this.reverse) {
      // In: records at or after (endRun, endIndex).
      if (ri < this.endRun) return this.exhaust();
      this.stop = ri === this.endRun ? this.endIndex : 0;
      if (idx < this.stop) return this.exhaust();
    } else {
      // In: records before (endRun, endIndex).
      if (ri > this.endRun) return this.exhaust();
      this.stop = ri === this.endRun ? this.endIndex : run.count;
      if (idx >= this.stop) return this.exhaust();
    }
    this.ri = ri;
    this.idx = idx;
    this.run = run;
    this.load(run, idx);
    if (!this.endPlaced && this.pastEnd(this.key)) return this.exhaust();
    this.valid = true;
    return true;
  }

  /**
   * Whether `key` is past the end set by {@link limitEnd} in this cursor's direction (memcmp
   * order: run trees hold only layouts that sort so). REQUIRES: an end is set.
   */
  private pastEnd(key: Uint8Array): boolean {
    const c = compareBytes(key, this.endKey!);
    return (this.reverse ? c < 0 : c > 0) || (c === 0 && !this.endInclusive);
  }

  /** Makes the cursor invalid (the stream ended) and returns false. */
  private exhaust(): boolean {
    this.valid = false;
    this.run = null;
    return false;
  }

  /**
   * Loads record `i` of `run`: the key into the cursor's buffer, an inline value into its copy,
   * an arena value's place left for `value`.
   */
  private load(run: Run, i: number): void {
    const tree = this.tree;
    const p = pageOf(i);
    const rec = run.pages[p];
    const b = slotOf(i) * tree.stride;
    const plen = run.prefix.length;
    if (this.keyRun !== run) {
      const len = plen + tree.width;
      if (this.keyBuf.length < len) this.keyBuf = new Uint8Array(len);
      const key = this.key = len === this.keyBuf.length ? this.keyBuf : this.keyBuf.subarray(0, len);
      key.set(run.prefix);
      this.keyRun = run;
    }
    tree.writeSuffix(this.key, plen, rec, b);
    const v = b + tree.words;
    const at = rec[v];
    const lengthKind = rec[v + 1];
    const length = lengthKind >>> 2;
    if (at === INLINE) {
      // The inline room is 8 or 16 bytes (see sizeInlineRoom): two or four words.
      const words = run.pageWords[p];
      const w = tree.inlineOffset(b) >> 2;
      const copy = this.inlineWords;
      copy[0] = words[w];
      copy[1] = words[w + 1];
      if (length > 8) {
        copy[2] = words[w + 2];
        copy[3] = words[w + 3];
      }
      this.inline = true;
    } else {
      this.inline = false;
      const chunk = (at / CHUNK_SPAN) | 0;
      this.valueSource = tree.chunkBytes[chunk];
      this.valueOffset = at - chunk * CHUNK_SPAN;
    }
    this.valueLength = length;
    this.opIndex = rec[v + 2];
    this.expiresAt = rec[v + 3];
    this.kind = lengthKind & 3;
    this.valueStale = true;
  }

  /** Continues on the replacing tree (see the class comment). */
  private seekInner(target: Uint8Array | undefined, exclusive: boolean): boolean {
    let inner = this.inner;
    if (inner === null) inner = this.inner = this.tree.replacedBy!.cursor(this.reverse);
    this.run = null;
    return this.fromInner(inner.seek(target, exclusive));
  }

  /** Takes the inner cursor's position after it moved. */
  private fromInner(valid: boolean): boolean {
    const inner = this.inner!;
    // The replacing tree's cursor does not know the end: its keys are compared with it.
    if (valid && this.endKey !== undefined && this.pastEnd(inner.key)) valid = false;
    this.valid = valid;
    // `key` stays ours until the cursor moves: the inner cursor's buffer is its own.
    this.key = valid ? inner.key : this.key;
    this.keyRun = null;
    this.opIndex = inner.opIndex;
    this.kind = inner.kind;
    this.expiresAt = inner.expiresAt;
    return valid;
  }
}
