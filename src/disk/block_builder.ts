/**
 * Builds the raw (uncompressed) bytes of one block from records in key order. Owned by the
 * segment writer, which feeds it one record at a time, asks `estimatedSize` to decide where a
 * block ends, and calls `finish` to get the bytes it then compresses and checksums.
 *
 * Raw block layout (integers big-endian; n = recordCount; K, V = fixed widths):
 *
 * ```
 * off            size             field
 *  0             4                recordCount n (>= 1; equals the block table's count)
 *  4             1                opWidth w (0..7): bytes per opIndex delta
 *  5             1                flags: bit0 kinds bitset present, bit1 expiresAt column present,
 *                                 bit2 key ends are u32 (else u16), bit3 value ends are u32
 *                                 (else u16); bits 4-7 zero
 *  6             2                reserved = 0
 *  8             8                opBase = smallest opIndex in the block
 * 16             n*w              opIndex - opBase, w bytes each, big-endian
 *  .             ceil(n/8)        kinds bitset (flag bit0): bit (i & 7) of byte (i >> 3) set =
 *                                 record i is a deletion marker; unused high bits zero
 *  .             8n               expiresAt column (flag bit1): u64 epoch ms, 0 = never
 *  .             n*2 or n*4       key end offsets into the key heap (variable keys only)
 *  .             n*2 or n*4       value end offsets into the value heap (variable values only)
 *  .             n*K | keyEnd[n-1]      keys: fixed stride K, or the key heap
 *  .             n*V | valueEnd[n-1]    values: fixed stride V, or the value heap
 * ```
 *
 * The sections add up to the raw length exactly. Why columns: fixed-width keys sit at a fixed
 * stride with no length fields (the fixed-key layouts binary-search them in place), opIndex and
 * flags cost w + 1/8 bytes a record instead of 9, a column that is all zero (no deletion
 * markers, no expiry) is absent, and similar bytes side by side compress better with LZ4.
 *
 * @module
 */
import { assert } from "../util/assert.ts";
import { writeU64 } from "../util/bytes.ts";
import { KIND_DELETE } from "../iter/record.ts";
import { BLOCK_HEADER_SIZE } from "./format.ts";

/** Flag bits of the raw block header. */
export const FLAG_KINDS = 1;
/** See {@link FLAG_KINDS}. */
export const FLAG_EXPIRY = 2;
/** See {@link FLAG_KINDS}. */
export const FLAG_KEY_ENDS_U32 = 4;
/** See {@link FLAG_KINDS}. */
export const FLAG_VALUE_ENDS_U32 = 8;

/** Accumulates one block's records; reused for every block of a segment. */
export class BlockBuilder {
  /** Records added since the last reset. */
  count = 0;
  private readonly keyWidth: number; // 0 = variable
  private readonly valueWidth: number; // -1 = variable
  private ops: Float64Array = new Float64Array(256);
  private expiry: Float64Array = new Float64Array(256);
  private kinds = new Uint8Array(256);
  private keyEnds = new Uint32Array(256);
  private valueEnds = new Uint32Array(256);
  private keyHeap = new Heap();
  private valueHeap = new Heap();
  private hasDelete = false;
  private hasExpiry = false;
  private out = new Uint8Array(1024);

  /** `keyWidth` 0 = variable keys; `valueWidth` -1 = variable values. */
  constructor(keyWidth: number, valueWidth: number) {
    this.keyWidth = keyWidth;
    this.valueWidth = valueWidth;
  }

  /** Bytes this block would take with one more record of these lengths (an upper bound). */
  estimatedSizeWith(keyLength: number, valueLength: number): number {
    const n = this.count + 1;
    const perRecord = 8 + (this.keyWidth === 0 ? 4 : 0) + (this.valueWidth < 0 ? 4 : 0) +
      (this.hasExpiry ? 8 : 0);
    return BLOCK_HEADER_SIZE + n * perRecord + this.keyHeap.length + keyLength +
      this.valueHeap.length + valueLength;
  }

  /** Appends one record (the caller checked widths and order). */
  add(key: Uint8Array, value: Uint8Array, opIndex: number, kind: number, expiresAt: number): void {
    if (this.count === this.ops.length) this.grow();
    const i = this.count++;
    this.ops[i] = opIndex;
    this.kinds[i] = kind;
    this.expiry[i] = expiresAt;
    if (kind === KIND_DELETE) this.hasDelete = true;
    if (expiresAt !== 0) this.hasExpiry = true;
    this.keyHeap.append(key);
    this.valueHeap.append(value);
    this.keyEnds[i] = this.keyHeap.length;
    this.valueEnds[i] = this.valueHeap.length;
  }

  /** The raw block bytes (a view valid until the next `finish`). Does not reset. */
  finish(): Uint8Array {
    const n = this.count;
    assert(n > 0, "finish of an empty block");
    let opBase = this.ops[0];
    let opMax = opBase;
    for (let i = 1; i < n; i++) {
      const op = this.ops[i];
      if (op < opBase) opBase = op;
      if (op > opMax) opMax = op;
    }
    let opWidth = 0;
    for (let span = opMax - opBase; span > 0; span = Math.floor(span / 256)) opWidth++;
    const varKeys = this.keyWidth === 0;
    const varValues = this.valueWidth < 0;
    const keyEndWidth = this.keyHeap.length > 0xffff ? 4 : 2;
    const valueEndWidth = this.valueHeap.length > 0xffff ? 4 : 2;
    const flags = (this.hasDelete ? FLAG_KINDS : 0) | (this.hasExpiry ? FLAG_EXPIRY : 0) |
      (keyEndWidth === 4 ? FLAG_KEY_ENDS_U32 : 0) | (valueEndWidth === 4 ? FLAG_VALUE_ENDS_U32 : 0);
    const size = BLOCK_HEADER_SIZE + n * opWidth + (this.hasDelete ? (n + 7) >> 3 : 0) +
      (this.hasExpiry ? 8 * n : 0) + (varKeys ? n * keyEndWidth : 0) +
      (varValues ? n * valueEndWidth : 0) + this.keyHeap.length + this.valueHeap.length;
    if (this.out.length < size) this.out = new Uint8Array(Math.max(size, this.out.length * 2));
    const out = this.out.subarray(0, size);
    out.fill(0);
    const view = new DataView(out.buffer, out.byteOffset, size);
    view.setUint32(0, n);
    out[4] = opWidth;
    out[5] = flags;
    writeU64(view, 8, opBase);
    let pos = this.writeOps(out, BLOCK_HEADER_SIZE, opBase, opWidth);
    pos = this.writeFlagColumns(out, view, pos);
    if (varKeys) pos = writeEnds(view, pos, this.keyEnds, n, keyEndWidth);
    if (varValues) pos = writeEnds(view, pos, this.valueEnds, n, valueEndWidth);
    out.set(this.keyHeap.bytes(), pos);
    pos += this.keyHeap.length;
    out.set(this.valueHeap.bytes(), pos);
    pos += this.valueHeap.length;
    assert(pos === size, "raw block sections add up to its size");
    return out;
  }

  /** Forgets the records, keeping the buffers. */
  reset(): void {
    this.count = 0;
    this.keyHeap.length = 0;
    this.valueHeap.length = 0;
    this.hasDelete = false;
    this.hasExpiry = false;
  }

  private writeOps(out: Uint8Array, pos: number, opBase: number, opWidth: number): number {
    for (let i = 0; i < this.count; i++) {
      let delta = this.ops[i] - opBase;
      for (let k = opWidth - 1; k >= 0; k--) {
        out[pos + k] = delta % 256;
        delta = Math.floor(delta / 256);
      }
      pos += opWidth;
    }
    return pos;
  }

  private writeFlagColumns(out: Uint8Array, view: DataView, pos: number): number {
    const n = this.count;
    if (this.hasDelete) {
      for (let i = 0; i < n; i++) {
        if (this.kinds[i] === KIND_DELETE) out[pos + (i >> 3)] |= 1 << (i & 7);
      }
      pos += (n + 7) >> 3;
    }
    if (this.hasExpiry) {
      for (let i = 0; i < n; i++) writeU64(view, pos + 8 * i, this.expiry[i]);
      pos += 8 * n;
    }
    return pos;
  }

  private grow(): void {
    const cap = this.ops.length * 2;
    this.ops = growF64(this.ops, cap);
    this.expiry = growF64(this.expiry, cap);
    const kinds = new Uint8Array(cap);
    kinds.set(this.kinds);
    this.kinds = kinds;
    const keyEnds = new Uint32Array(cap);
    keyEnds.set(this.keyEnds);
    this.keyEnds = keyEnds;
    const valueEnds = new Uint32Array(cap);
    valueEnds.set(this.valueEnds);
    this.valueEnds = valueEnds;
  }
}

function growF64(a: Float64Array, cap: number): Float64Array {
  const b = new Float64Array(cap);
  b.set(a);
  return b;
}

function writeEnds(
  view: DataView,
  pos: number,
  ends: Uint32Array,
  n: number,
  width: number,
): number {
  if (width === 2) {
    for (let i = 0; i < n; i++) view.setUint16(pos + 2 * i, ends[i]);
  } else {
    for (let i = 0; i < n; i++) view.setUint32(pos + 4 * i, ends[i]);
  }
  return pos + n * width;
}

/** A growable byte heap (keys or values of one block, back to back). */
class Heap {
  buf = new Uint8Array(4096);
  length = 0;

  append(b: Uint8Array): void {
    const need = this.length + b.length;
    if (need > this.buf.length) {
      const next = new Uint8Array(Math.max(need, this.buf.length * 2));
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
    }
    if (b.length <= 32) {
      // A short loop beats set() for the 8-32 byte keys of typical keyspaces.
      for (let i = 0; i < b.length; i++) this.buf[this.length + i] = b[i];
    } else {
      this.buf.set(b, this.length);
    }
    this.length = need;
  }

  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}
