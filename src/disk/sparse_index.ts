/**
 * The index region of a data file: the block table and the sparse index, built by the writer
 * (`IndexBuilder`) and decoded into flat typed arrays by the reader (`SegmentIndex`) so that
 * opening a segment allocates a handful of arrays, not one object per key.
 *
 * Index region layout (integers big-endian; b = blockCount, m = sparseCount, K = key width):
 *
 * ```
 * off         size                 field
 *  0          29*b                 block table, one entry per block:
 *                                    +0  u64 offset of the block's stored bytes in the file
 *                                    +8  u32 storedLength (bytes on disk)
 *                                    +12 u32 rawLength (decompressed; = storedLength if raw)
 *                                    +16 u32 CRC32C of the stored bytes
 *                                    +20 u64 firstRecord: ordinal of the block's first record
 *                                    +28 u8  codec: 0 raw, 1 lz4
 *  .          8*m                  sparse ordinals (u64), strictly increasing, first = 0
 *  .          4*m                  sparse key end offsets into the key heap (variable keys only)
 *  .          K*m | end[m-1]       sparse key heap: the key of each sparse ordinal
 *  .          lastKeyLength        the segment's last key
 * ```
 *
 * The sparse ordinals are exactly: every block's first record, plus every multiple of
 * sparseStep (when sparseStep > 0). Because every block starts an entry, the entries between two
 * neighbours always lie in one block, and a point lookup reads exactly one block.
 *
 * Invariants checked by `decode` (structure, so no later read goes out of bounds): blocks tile
 * [0, indexOffset) in order, raw lengths within the footer's maximum, first records strictly
 * increasing from 0, ordinals exactly the set above, key ends non-decreasing and ending at the
 * heap. Key order is checked by `verify`, which reads every key anyway.
 *
 * @module
 */
import { CorruptionError } from "../api/errors.ts";
import { assert } from "../util/assert.ts";
import { readU64, writeU64 } from "../util/bytes.ts";
import { EMPTY } from "../iter/record.ts";
import type { KeyProbe } from "./key_probe.ts";
import {
  BLOCK_ENTRY_SIZE,
  BLOCK_HEADER_SIZE,
  CODEC_LZ4,
  CODEC_RAW,
  type Footer,
} from "./format.ts";

/** Collects block table entries and sparse keys while a segment is written. */
export class IndexBuilder {
  private blocks = new Grow();
  private ordinals = new Grow();
  private keyEnds = new Grow();
  private keys = new Grow();
  private readonly varKeys: boolean;
  /** Blocks recorded. */
  blockCount = 0;
  /** Sparse entries recorded. */
  sparseCount = 0;

  /** `varKeys`: keys are variable-width (store end offsets). */
  constructor(varKeys: boolean) {
    this.varKeys = varKeys;
  }

  /** Records a block written at `offset`. */
  addBlock(
    offset: number,
    stored: number,
    raw: number,
    crc: number,
    firstRecord: number,
    codec: number,
  ): void {
    const p = this.blocks.reserve(BLOCK_ENTRY_SIZE);
    const v = this.blocks.view;
    writeU64(v, p, offset);
    v.setUint32(p + 8, stored);
    v.setUint32(p + 12, raw);
    v.setUint32(p + 16, crc);
    writeU64(v, p + 20, firstRecord);
    v.setUint8(p + 28, codec);
    this.blockCount++;
  }

  /** Records sparse entry (`ordinal`, `key`); ordinals arrive strictly increasing. */
  addEntry(ordinal: number, key: Uint8Array): void {
    // reserve() may replace the buffer and its view: take the view after it.
    const at = this.ordinals.reserve(8);
    writeU64(this.ordinals.view, at, ordinal);
    this.keys.bytes(key);
    if (this.varKeys) {
      const endAt = this.keyEnds.reserve(4);
      this.keyEnds.view.setUint32(endAt, this.keys.length);
    }
    this.sparseCount++;
  }

  /** Bytes held in memory so far (bounded: about (blocks + records/sparseStep) entries). */
  get sizeBytes(): number {
    return this.blocks.length + this.ordinals.length + this.keyEnds.length + this.keys.length;
  }

  /** The index region bytes, ending with `lastKey`. */
  finish(lastKey: Uint8Array | undefined): Uint8Array {
    const parts = [this.blocks, this.ordinals, this.keyEnds, this.keys];
    let size = lastKey?.length ?? 0;
    for (const p of parts) size += p.length;
    const out = new Uint8Array(size);
    let pos = 0;
    for (const p of parts) {
      out.set(p.buf.subarray(0, p.length), pos);
      pos += p.length;
    }
    if (lastKey) out.set(lastKey, pos);
    return out;
  }
}

/**
 * The fields of a decoded index as plain data (typed arrays and numbers): what
 * {@link SegmentIndex.data} returns and {@link SegmentIndex.fromData} takes back. The merge
 * Worker, which has just read and checked the index of each part it wrote, posts this to the
 * engine's thread so that publishing the merge does not decode it a second time there.
 */
export interface SegmentIndexData {
  blockCount: number;
  blockOffset: Float64Array;
  blockStored: Uint32Array;
  blockRaw: Uint32Array;
  blockCrc: Uint32Array;
  blockCodec: Uint8Array;
  blockFirst: Float64Array;
  sparseCount: number;
  entryOrdinal: Float64Array;
  entryBlock: Uint32Array;
  lastKey: Uint8Array;
  keyWidth: number;
  keyHeap: Uint8Array;
  keyEnds: Uint32Array | undefined;
}

/** The decoded index of an open segment. */
export class SegmentIndex {
  /** Blocks in the segment. */
  readonly blockCount: number;
  /** File offset of each block. */
  readonly blockOffset: Float64Array;
  /** Stored (on-disk) length of each block. */
  readonly blockStored: Uint32Array;
  /** Raw (decoded) length of each block. */
  readonly blockRaw: Uint32Array;
  /** CRC32C of each block's stored bytes. */
  readonly blockCrc: Uint32Array;
  /** Codec of each block. */
  readonly blockCodec: Uint8Array;
  /** First record ordinal of each block, plus recordCount as a sentinel at [blockCount]. */
  readonly blockFirst: Float64Array;
  /** Sparse entries. */
  readonly sparseCount: number;
  /** Ordinal of each sparse entry, plus recordCount as a sentinel at [sparseCount]. */
  readonly entryOrdinal: Float64Array;
  /** Block holding each sparse entry. */
  readonly entryBlock: Uint32Array;
  /** The last key of the segment (EMPTY when it has no records). */
  readonly lastKey: Uint8Array;
  private readonly keyWidth: number; // 0 = variable
  private readonly keyHeap: Uint8Array;
  private readonly keyEnds: Uint32Array | undefined;

  /** One constructor for both sources, so every index has the same shape. */
  private constructor(d: SegmentIndexData) {
    this.blockCount = d.blockCount;
    this.blockOffset = d.blockOffset;
    this.blockStored = d.blockStored;
    this.blockRaw = d.blockRaw;
    this.blockCrc = d.blockCrc;
    this.blockCodec = d.blockCodec;
    this.blockFirst = d.blockFirst;
    this.sparseCount = d.sparseCount;
    this.entryOrdinal = d.entryOrdinal;
    this.entryBlock = d.entryBlock;
    this.lastKey = d.lastKey;
    this.keyWidth = d.keyWidth;
    this.keyHeap = d.keyHeap;
    this.keyEnds = d.keyEnds;
  }

  /** The index as plain data (shares the arrays). */
  data(): SegmentIndexData {
    return {
      blockCount: this.blockCount,
      blockOffset: this.blockOffset,
      blockStored: this.blockStored,
      blockRaw: this.blockRaw,
      blockCrc: this.blockCrc,
      blockCodec: this.blockCodec,
      blockFirst: this.blockFirst,
      sparseCount: this.sparseCount,
      entryOrdinal: this.entryOrdinal,
      entryBlock: this.entryBlock,
      lastKey: this.lastKey,
      keyWidth: this.keyWidth,
      keyHeap: this.keyHeap,
      keyEnds: this.keyEnds,
    };
  }

  /**
   * An index from data that {@link SegmentIndex.data} produced for the same file (in another
   * thread): checked for consistency with footer `f`, not decoded again.
   */
  static fromData(file: string, f: Footer, d: SegmentIndexData): SegmentIndex {
    const ok = d.blockCount === f.blockCount && d.sparseCount === f.sparseCount &&
      d.keyWidth === f.keyFixedWidth && d.lastKey.length === f.lastKeyLength &&
      d.blockOffset.length === f.blockCount && d.blockFirst.length === f.blockCount + 1 &&
      d.entryOrdinal.length === f.sparseCount + 1 && d.entryBlock.length === f.sparseCount &&
      (f.keyFixedWidth === 0
        ? d.keyEnds !== undefined && d.keyEnds.length === f.sparseCount
        : d.keyHeap.length === f.sparseCount * f.keyFixedWidth);
    if (!ok) throw new CorruptionError(file, f.indexOffset, "index handed over does not match the footer");
    return new SegmentIndex(d);
  }

  /**
   * Decodes the index region `bytes` (CRC already checked) for footer `f`. Throws
   * CorruptionError naming `file` and the offset of the first bad field.
   */
  static decode(file: string, f: Footer, bytes: Uint8Array): SegmentIndex {
    const bad = (rel: number, what: string) => new CorruptionError(file, f.indexOffset + rel, what);
    const b = f.blockCount;
    const m = f.sparseCount;
    const d: SegmentIndexData = {
      blockCount: b,
      blockOffset: new Float64Array(b),
      blockStored: new Uint32Array(b),
      blockRaw: new Uint32Array(b),
      blockCrc: new Uint32Array(b),
      blockCodec: new Uint8Array(b),
      blockFirst: new Float64Array(b + 1),
      sparseCount: m,
      entryOrdinal: new Float64Array(m + 1),
      entryBlock: new Uint32Array(m),
      lastKey: EMPTY,
      keyWidth: f.keyFixedWidth,
      keyHeap: EMPTY,
      keyEnds: undefined,
    };
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    decodeBlocks(d, f, view, bad);
    let pos = b * BLOCK_ENTRY_SIZE;
    decodeOrdinals(d, f, view, pos, bad);
    pos += 8 * m;
    let heapLength = m * f.keyFixedWidth;
    if (f.keyFixedWidth === 0) {
      if (pos + 4 * m > bytes.length) throw bad(pos, "sparse key ends run past the index");
      const ends = new Uint32Array(m);
      let prev = 0;
      for (let i = 0; i < m; i++) {
        ends[i] = view.getUint32(pos + 4 * i);
        if (ends[i] < prev) throw bad(pos + 4 * i, "sparse key ends decrease");
        prev = ends[i];
      }
      d.keyEnds = ends;
      pos += 4 * m;
      heapLength = prev;
    }
    if (pos + heapLength + f.lastKeyLength !== bytes.length) {
      throw bad(
        pos,
        `index sections take ${
          pos + heapLength + f.lastKeyLength
        } bytes, index has ${bytes.length}`,
      );
    }
    d.keyHeap = bytes.subarray(pos, pos + heapLength);
    d.lastKey = bytes.slice(pos + heapLength, bytes.length);
    return new SegmentIndex(d);
  }

  /** memcmp(probe key, sparse key e). */
  compareEntry(probe: KeyProbe, e: number): number {
    if (this.keyWidth !== 0) return probe.compare(this.keyHeap, e * this.keyWidth, this.keyWidth);
    const off = e === 0 ? 0 : this.keyEnds![e - 1];
    return probe.compare(this.keyHeap, off, this.keyEnds![e] - off);
  }

  /** Copy of sparse key `e`. */
  entryKey(e: number): Uint8Array {
    if (this.keyWidth !== 0) return this.keyHeap.slice(e * this.keyWidth, (e + 1) * this.keyWidth);
    return this.keyHeap.slice(e === 0 ? 0 : this.keyEnds![e - 1], this.keyEnds![e]);
  }

  /** The last entry whose key is <= the probe's, or -1 when it sorts before every key. */
  findEntry(key: KeyProbe): number {
    let lo = 0;
    let hi = this.sparseCount;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.compareEntry(key, mid) >= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }

  /** The block holding record `ordinal` (0 <= ordinal < recordCount). */
  blockOf(ordinal: number): number {
    assert(ordinal >= 0 && ordinal < this.blockFirst[this.blockCount], "ordinal in range");
    let lo = 0;
    let hi = this.blockCount - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.blockFirst[mid] <= ordinal) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Bytes this index holds in memory. */
  get sizeBytes(): number {
    return this.blockCount * 37 + this.sparseCount * 12 + this.keyHeap.length +
      (this.keyEnds?.length ?? 0) * 4 + this.lastKey.length;
  }
}

/** A growable byte buffer with a DataView, for the index builder. */
class Grow {
  buf = new Uint8Array(1024);
  view = new DataView(this.buf.buffer);
  length = 0;

  reserve(n: number): number {
    const need = this.length + n;
    if (need > this.buf.length) {
      const next = new Uint8Array(Math.max(need, this.buf.length * 2));
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    const at = this.length;
    this.length = need;
    return at;
  }

  bytes(b: Uint8Array): void {
    const at = this.reserve(b.length);
    this.buf.set(b, at);
  }
}

/** Decodes and checks the block table into `d`. */
function decodeBlocks(
  d: SegmentIndexData,
  f: Footer,
  v: DataView,
  bad: (rel: number, what: string) => CorruptionError,
): void {
  let offset = 0;
  let first = 0;
  for (let i = 0; i < d.blockCount; i++) {
    const p = i * BLOCK_ENTRY_SIZE;
    const stored = v.getUint32(p + 8);
    const raw = v.getUint32(p + 12);
    const codec = v.getUint8(p + 28);
    if (readU64(v, p) !== offset) throw bad(p, `block ${i} offset is not ${offset}`);
    if (raw < BLOCK_HEADER_SIZE || raw > f.maxRawBlockLength) {
      throw bad(p + 12, `block ${i} raw length ${raw}`);
    }
    const codecOk = codec === CODEC_RAW
      ? stored === raw
      : codec === CODEC_LZ4 && stored > 0 && stored < raw;
    if (!codecOk) {
      throw bad(p + 28, `block ${i} codec ${codec} with stored ${stored}, raw ${raw}`);
    }
    const firstRecord = readU64(v, p + 20);
    if (i === 0 ? firstRecord !== 0 : firstRecord <= first) {
      throw bad(p + 20, `block ${i} first record ${firstRecord} out of order`);
    }
    if (firstRecord >= f.recordCount) {
      throw bad(p + 20, `block ${i} first record ${firstRecord} past the end`);
    }
    d.blockOffset[i] = offset;
    d.blockStored[i] = stored;
    d.blockRaw[i] = raw;
    d.blockCrc[i] = v.getUint32(p + 16);
    d.blockCodec[i] = codec;
    d.blockFirst[i] = firstRecord;
    offset += stored;
    first = firstRecord;
  }
  if (offset !== f.indexOffset) {
    throw bad(0, `blocks end at ${offset}, index starts at ${f.indexOffset}`);
  }
  d.blockFirst[d.blockCount] = f.recordCount;
}

/** Checks that the ordinals are exactly block starts ∪ multiples of sparseStep. */
function decodeOrdinals(
  d: SegmentIndexData,
  f: Footer,
  v: DataView,
  start: number,
  bad: (rel: number, what: string) => CorruptionError,
): void {
  const step = f.sparseStep;
  let block = 0;
  let expected = 0;
  for (let e = 0; e < d.sparseCount; e++) {
    const p = start + 8 * e;
    const ord = readU64(v, p);
    if (ord !== expected || ord >= f.recordCount) {
      throw bad(p, `sparse entry ${e} is ordinal ${ord}, expected ${expected}`);
    }
    while (d.blockFirst[block + 1] <= ord) block++;
    d.entryOrdinal[e] = ord;
    d.entryBlock[e] = block;
    const nextStep = step > 0 ? (Math.floor(ord / step) + 1) * step : Infinity;
    expected = Math.min(nextStep, d.blockFirst[block + 1]);
  }
  if (expected < f.recordCount) throw bad(start, `sparse index ends before ordinal ${expected}`);
  d.entryOrdinal[d.sparseCount] = f.recordCount;
}
