/**
 * A decoded block: raw block bytes (see `block_builder.ts` for the layout) plus the section
 * offsets computed once when the block is loaded, and the accessors and in-block binary searches
 * that the segment reader and cursors use. Owned by the block cache (for point reads) or by a
 * cursor (its current-block buffer, reused from block to block).
 *
 * Invariants, established by `load` before any accessor runs: the header's count matches the
 * block table, every section lies inside the raw length and the sections add up to it exactly,
 * variable end offsets are non-decreasing and end at their heap's length. So accessors never
 * read outside the block, whatever the bytes are (the CRC was checked before `load` too).
 *
 * Keys are compared in place in memcmp order (a KeyProbe, four bytes a step), which API.md §1
 * requires the keyspace comparer to agree with; this is what lets a binary search allocate
 * nothing.
 *
 * @module
 */
import { EMPTY } from "../iter/record.ts";
import type { KeyProbe } from "./key_probe.ts";
import { BLOCK_HEADER_SIZE } from "./format.ts";
import {
  FLAG_EXPIRY,
  FLAG_KEY_ENDS_U32,
  FLAG_KINDS,
  FLAG_VALUE_ENDS_U32,
} from "./block_builder.ts";
import { copyOf } from "../util/bytes.ts";

/** Object overhead charged to the block cache on top of a block's raw bytes. */
export const BLOCK_OVERHEAD_BYTES = 256;

/** A decoded block, readable by record index 0..count-1. */
export class BlockView {
  /** Raw block bytes (the first `length` bytes of the array are the block). */
  bytes: Uint8Array = EMPTY;
  /** Records in the block. */
  count = 0;
  /** Segment-wide ordinal of record 0. */
  first = 0;
  /** Bytes charged to the block cache. */
  sizeBytes = 0;
  /**
   * Readers that hold this (cached) block across calls: cursors positioned on it. The cache
   * reuses a dropped block's buffer only when none do.
   */
  pins = 0;
  private readonly keyWidth: number; // 0 = variable
  private readonly valueWidth: number; // -1 = variable
  private opWidth = 0;
  private opBase = 0;
  private kindsStart = -1;
  private expiryStart = -1;
  private keyEndsStart = 0;
  private keyEndsU32 = false;
  private valueEndsStart = 0;
  private valueEndsU32 = false;
  private keysStart = 0;
  private valuesStart = 0;
  /**
   * Search hints of a cached block (see {@link BlockView.buildHints}): per record, the four key
   * bytes after the prefix that every key of the block shares, as an order-preserving int32.
   */
  private hints: Int32Array | undefined;
  /** Length of that shared prefix. */
  private hintPrefix = 0;
  /** The range `narrow` leaves for the full-key search. */
  private narrowLo = 0;
  private narrowHi = 0;

  /** `keyWidth` 0 = variable keys; `valueWidth` -1 = variable values. */
  constructor(keyWidth: number, valueWidth: number) {
    this.keyWidth = keyWidth;
    this.valueWidth = valueWidth;
  }

  /**
   * See `CachedBlock.release`: gives up the buffer when no cursor holds the block. The block
   * is then empty (any later use fails its bounds checks instead of reading another block).
   */
  release(): Uint8Array | undefined {
    if (this.pins !== 0) return undefined;
    const bytes = this.bytes;
    this.bytes = EMPTY;
    this.count = 0;
    this.hints = undefined;
    return bytes;
  }

  /**
   * Takes `bytes[0, length)` as the raw block holding records `first .. first+expectedCount-1`.
   * Returns `undefined` when its structure is sound, else what is wrong (the caller raises
   * CorruptionError with the file and block offset).
   */
  load(
    bytes: Uint8Array,
    length: number,
    expectedCount: number,
    first: number,
  ): string | undefined {
    if (length < BLOCK_HEADER_SIZE || length > bytes.length) {
      return `raw block length ${length} too short`;
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, length);
    const n = view.getUint32(0);
    if (n !== expectedCount) return `block holds ${n} records, index says ${expectedCount}`;
    const opWidth = bytes[4];
    const flags = bytes[5];
    if (opWidth > 7) return `opIndex width ${opWidth} > 7`;
    if (flags > 15 || view.getUint16(6) !== 0) return `bad block flags ${flags}`;
    const hi = view.getUint32(8);
    if (hi > 0x1f_ffff) return "opBase exceeds a safe integer";
    this.bytes = bytes;
    this.hints = undefined;
    this.count = n;
    this.first = first;
    this.sizeBytes = length + BLOCK_OVERHEAD_BYTES;
    this.opWidth = opWidth;
    this.opBase = hi * 0x1_0000_0000 + view.getUint32(12);
    this.keyEndsU32 = (flags & FLAG_KEY_ENDS_U32) !== 0;
    this.valueEndsU32 = (flags & FLAG_VALUE_ENDS_U32) !== 0;
    return this.layOut(flags, length);
  }

  /** Computes the section offsets; checks they tile the block exactly. */
  private layOut(flags: number, length: number): string | undefined {
    const n = this.count;
    let pos = BLOCK_HEADER_SIZE + n * this.opWidth;
    this.kindsStart = -1;
    this.expiryStart = -1;
    if (flags & FLAG_KINDS) {
      this.kindsStart = pos;
      pos += (n + 7) >> 3;
    }
    if (flags & FLAG_EXPIRY) {
      this.expiryStart = pos;
      pos += 8 * n;
    }
    let keyHeap = n * this.keyWidth;
    if (this.keyWidth === 0) {
      this.keyEndsStart = pos;
      pos += n * (this.keyEndsU32 ? 4 : 2);
      if (pos > length) return "key end offsets run past the block";
      keyHeap = this.checkEnds(this.keyEndsStart, this.keyEndsU32);
    }
    let valueHeap = n * this.valueWidth;
    if (this.valueWidth < 0) {
      this.valueEndsStart = pos;
      pos += n * (this.valueEndsU32 ? 4 : 2);
      if (pos > length) return "value end offsets run past the block";
      valueHeap = this.checkEnds(this.valueEndsStart, this.valueEndsU32);
    }
    if (keyHeap < 0 || valueHeap < 0) return "end offsets decrease";
    this.keysStart = pos;
    this.valuesStart = pos + keyHeap;
    if (pos + keyHeap + valueHeap !== length) {
      return `block sections take ${pos + keyHeap + valueHeap} bytes, block has ${length}`;
    }
    return undefined;
  }

  /** The heap length the ends imply, or -1 when they decrease. */
  private checkEnds(start: number, u32: boolean): number {
    let prev = 0;
    for (let i = 0; i < this.count; i++) {
      const end = u32 ? this.u32(start + 4 * i) : this.u16(start + 2 * i);
      if (end < prev) return -1;
      prev = end;
    }
    return prev;
  }

  /** Byte offset of key `i` in `bytes`. */
  keyOffset(i: number): number {
    if (this.keyWidth !== 0) return this.keysStart + i * this.keyWidth;
    return this.keysStart + (i === 0 ? 0 : this.keyEnd(i - 1));
  }

  /** Length of key `i`. */
  keyLength(i: number): number {
    if (this.keyWidth !== 0) return this.keyWidth;
    return this.keyEnd(i) - (i === 0 ? 0 : this.keyEnd(i - 1));
  }

  /** Byte offset of value `i` in `bytes`. */
  valueOffset(i: number): number {
    if (this.valueWidth >= 0) return this.valuesStart + i * this.valueWidth;
    return this.valuesStart + (i === 0 ? 0 : this.valueEnd(i - 1));
  }

  /** Length of value `i`. */
  valueLength(i: number): number {
    if (this.valueWidth >= 0) return this.valueWidth;
    return this.valueEnd(i) - (i === 0 ? 0 : this.valueEnd(i - 1));
  }

  private keyEnd(i: number): number {
    return this.keyEndsU32
      ? this.u32(this.keyEndsStart + 4 * i)
      : this.u16(this.keyEndsStart + 2 * i);
  }

  private valueEnd(i: number): number {
    return this.valueEndsU32
      ? this.u32(this.valueEndsStart + 4 * i)
      : this.u16(this.valueEndsStart + 2 * i);
  }

  /**
   * Big-endian integers at `p`, assembled from byte loads. The per-record accessors run once or
   * more per record of every scan and search; Bun's JIT did not inline DataView reads there
   * (they showed up as separate `getUint16` frames taking about a tenth of a disk scan), while
   * typed array loads always inline (the same finding as in `key_probe.ts`).
   */
  private u16(p: number): number {
    const b = this.bytes;
    return (b[p] << 8) | b[p + 1];
  }

  private u32(p: number): number {
    const b = this.bytes;
    return ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
  }

  /** opIndex of record `i`. */
  opIndex(i: number): number {
    const w = this.opWidth;
    const p = BLOCK_HEADER_SIZE + i * w;
    switch (w) {
      case 0:
        return this.opBase;
      case 1:
        return this.opBase + this.bytes[p];
      case 2:
        return this.opBase + this.u16(p);
      case 3:
        return this.opBase + ((this.bytes[p] << 16) | this.u16(p + 1));
      case 4:
        return this.opBase + this.u32(p);
    }
    let d = 0;
    for (let k = 0; k < w; k++) d = d * 256 + this.bytes[p + k];
    return this.opBase + d;
  }

  /** Kind of record `i` (KIND_PUT or KIND_DELETE). */
  kind(i: number): number {
    if (this.kindsStart < 0) return 0;
    return (this.bytes[this.kindsStart + (i >> 3)] >> (i & 7)) & 1;
  }

  /** expiresAt of record `i` (0 = never). */
  expiresAt(i: number): number {
    if (this.expiryStart < 0) return 0;
    const p = this.expiryStart + 8 * i;
    return this.u32(p) * 0x1_0000_0000 + this.u32(p + 4);
  }

  /** memcmp(probe key, key of record i): negative, zero or positive. Allocates nothing. */
  compareKey(probe: KeyProbe, i: number): number {
    return probe.compare(this.bytes, this.keyOffset(i), this.keyLength(i));
  }

  /**
   * Builds the search hints of a block that is going into the block cache, where point reads
   * search it again and again: a binary search over 4 bytes per record touches a few cache lines
   * of a compact array instead of a key scattered over the 16 KiB block at every step (most of
   * a warm get was spent waiting for those lines). Every key lies between the first and the last
   * (the block is sorted), so all share their common prefix P; record i's hint is key bytes
   * [|P|, |P|+4) big-endian, zero-padded past the key's end, sign-flipped to an int32. For any
   * two keys a hint order (<, >) implies the same key order; equal hints say nothing. O(records),
   * about 4 bytes per record, charged to `sizeBytes`.
   */
  buildHints(): void {
    const n = this.count;
    const b = this.bytes;
    const first = this.keyOffset(0);
    const last = this.keyOffset(n - 1);
    const shared = Math.min(this.keyLength(0), this.keyLength(n - 1));
    let cp = 0;
    while (cp < shared && b[first + cp] === b[last + cp]) cp++;
    const hints = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      hints[i] = hintWord(b, this.keyOffset(i) + cp, this.keyLength(i) - cp);
    }
    this.hints = hints;
    this.hintPrefix = cp;
    this.sizeBytes += 4 * n;
  }

  /** First record index in [lo, hi) whose key is >= the probe (> with `strict`), else hi. */
  search(probe: KeyProbe, lo: number, hi: number, strict: boolean): number {
    if (this.hints !== undefined && hi - lo > 4) {
      const decided = this.narrow(probe, lo, hi);
      if (decided >= 0) return decided;
      lo = this.narrowLo;
      hi = this.narrowHi;
    }
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = this.compareKey(probe, mid);
      if (c > 0 || (strict && c === 0)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * With hints: the answer when the shared prefix alone decides it, else -1 and the part of
   * [lo, hi) where the answer lies in `narrowLo`..`narrowHi`: records before narrowLo have a
   * smaller hint (so a smaller key), records from narrowHi on a larger one.
   */
  private narrow(probe: KeyProbe, lo: number, hi: number): number {
    const hints = this.hints!;
    const key = probe.key;
    const b = this.bytes;
    const cp = this.hintPrefix;
    const first = this.keyOffset(0);
    // Against the shared prefix: a probe below it precedes every key, above it follows them.
    const m = key.length < cp ? key.length : cp;
    for (let j = 0; j < m; j++) {
      const d = key[j] - b[first + j];
      if (d !== 0) return d < 0 ? lo : hi;
    }
    if (key.length < cp) return lo; // a proper prefix of P sorts before every key
    const h = hintWord(key, cp, key.length - cp);
    let a = lo;
    let z = hi;
    while (a < z) {
      const mid = (a + z) >>> 1;
      if (hints[mid] < h) a = mid + 1;
      else z = mid;
    }
    let e = a;
    z = hi;
    while (e < z) {
      const mid = (e + z) >>> 1;
      if (hints[mid] <= h) e = mid + 1;
      else z = mid;
    }
    this.narrowLo = a;
    this.narrowHi = e;
    return -1;
  }

  /** Copy of key `i` (allocates; for verify and diagnostics, not hot paths). */
  keyCopy(i: number): Uint8Array {
    const off = this.keyOffset(i);
    return this.bytes.slice(off, off + this.keyLength(i));
  }

  /** Copy of value `i`. */
  valueCopy(i: number): Uint8Array {
    const off = this.valueOffset(i);
    return copyOf(this.bytes, off, off + this.valueLength(i));
  }

  /** Whether the unused high bits of the kinds bitset are zero (verify only). */
  kindsPaddingClear(): boolean {
    if (this.kindsStart < 0 || (this.count & 7) === 0) return true;
    return (this.bytes[this.kindsStart + (this.count >> 3)] >> (this.count & 7)) === 0;
  }
}

/**
 * Bytes [off, off + min(4, len)) of `b` as a big-endian word, zero-padded to four bytes, with
 * the sign bit flipped so that int32 order is memcmp order of the padded bytes.
 */
function hintWord(b: Uint8Array, off: number, len: number): number {
  if (len >= 4) {
    return ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) ^ SIGN;
  }
  let w = 0;
  for (let k = 0; k < 4; k++) w = (w << 8) | (k < len ? b[off + k] : 0);
  return w ^ SIGN;
}

/** Flips an int32's sign bit: maps unsigned order onto signed order. */
const SIGN = -0x8000_0000;
