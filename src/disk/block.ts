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

  /** `keyWidth` 0 = variable keys; `valueWidth` -1 = variable values. */
  constructor(keyWidth: number, valueWidth: number) {
    this.keyWidth = keyWidth;
    this.valueWidth = valueWidth;
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

  /** First record index in [lo, hi) whose key is >= the probe (> with `strict`), else hi. */
  search(probe: KeyProbe, lo: number, hi: number, strict: boolean): number {
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = this.compareKey(probe, mid);
      if (c > 0 || (strict && c === 0)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Copy of key `i` (allocates; for verify and diagnostics, not hot paths). */
  keyCopy(i: number): Uint8Array {
    const off = this.keyOffset(i);
    return this.bytes.slice(off, off + this.keyLength(i));
  }

  /** Copy of value `i`. */
  valueCopy(i: number): Uint8Array {
    const off = this.valueOffset(i);
    return this.bytes.slice(off, off + this.valueLength(i));
  }

  /** Whether the unused high bits of the kinds bitset are zero (verify only). */
  kindsPaddingClear(): boolean {
    if (this.kindsStart < 0 || (this.count & 7) === 0) return true;
    return (this.bytes[this.kindsStart + (this.count >> 3)] >> (this.count & 7)) === 0;
  }
}
