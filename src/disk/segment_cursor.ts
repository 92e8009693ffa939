/**
 * The cursor over a single-part disk segment (the RecordCursor contract of
 * `src/iter/record.ts`), forward or reverse. Created by `SinglePartDiskSegment.cursor`; the
 * merging iterator and the merger drive it.
 *
 * Position: a block number and a record index inside it. A seek binary-searches the sparse
 * index, loads one block and binary-searches inside it; `next` steps inside the block and moves
 * to the neighbouring block at its edge.
 *
 * Cache policy: by default a cursor reads a block from the cache only if it is already there
 * (`peek`, no recency change) and otherwise decodes it into its own buffer, so a full scan
 * evicts nothing that point reads rely on. With `fillCache` it goes through the cache like `get`.
 *
 * Allocation: fixed-width keys and values are copied into two buffers the cursor owns (no
 * allocation per record); variable-width ones are views into the current block (one small
 * view per field). Either way they stay valid until the cursor moves, as the contract says.
 * The value is materialized lazily, on the first read of `value` at a position.
 *
 * @module
 */
import { ClosedError } from "../api/errors.ts";
import { EMPTY, type RecordCursor } from "../iter/record.ts";
import { compareBytes, copyBytes, copyOf } from "../util/bytes.ts";
import { BlockView } from "./block.ts";
import { KeyProbe } from "./key_probe.ts";
import { newScratch, type ReadScratch, type SinglePartDiskSegment } from "./segment_reader.ts";

/** A cursor over one single-part disk segment. */
export class DiskSegmentCursor implements RecordCursor {
  /** Current key (valid while `valid`, until the cursor moves). */
  key: Uint8Array = EMPTY;
  private valueBytes: Uint8Array = EMPTY;
  /** True when `valueBytes` is not yet filled for the current record (see `value`). */
  private valueStale = false;
  /** Current opIndex. */
  opIndex = 0;
  /** Current kind. */
  kind = 0;
  /** Current expiresAt. */
  expiresAt = 0;
  /** Whether the cursor is on a record. */
  valid = false;
  /** Direction, fixed at creation. */
  readonly reverse: boolean;
  private seg: SinglePartDiskSegment | undefined;
  private readonly fillCache: boolean;
  private readonly own: BlockView;
  private readonly scratch: ReadScratch = newScratch();
  private readonly probe = new KeyProbe();
  private blk: BlockView | undefined;
  private blockNo = -1;
  private i = 0;
  private started = false;
  private readonly keyBuf: Uint8Array | undefined;
  private readonly valueBuf: Uint8Array | undefined;

  /** Use `SinglePartDiskSegment.cursor`. */
  constructor(seg: SinglePartDiskSegment, reverse: boolean, fillCache: boolean) {
    this.seg = seg;
    this.reverse = reverse;
    this.fillCache = fillCache;
    this.own = new BlockView(seg.keyWidth, seg.valueWidth);
    if (seg.keyWidth > 0) this.keyBuf = new Uint8Array(seg.keyWidth);
    if (seg.valueWidth >= 0) this.valueBuf = new Uint8Array(seg.valueWidth);
  }

  /**
   * Current value, materialized on first access: key-only scans (`keys()`, counts) and records a
   * merge shadows never pay for the copy. Valid until the cursor moves.
   */
  get value(): Uint8Array {
    if (this.valueStale) this.fillValue();
    return this.valueBytes;
  }

  set value(v: Uint8Array) {
    this.valueBytes = v;
    this.valueStale = false;
  }

  /** See RecordCursor.copyValue: sliced straight out of the block when not read yet. */
  copyValue(): Uint8Array {
    if (!this.valid) return new Uint8Array(0);
    if (!this.valueStale) return copyBytes(this.valueBytes);
    const blk = this.blk!;
    const vOff = blk.valueOffset(this.i);
    const n = this.valueBuf !== undefined ? this.valueBuf.length : blk.valueLength(this.i);
    return copyOf(blk.bytes, vOff, vOff + n);
  }

  /** See RecordCursor.seek. */
  seek(target: Uint8Array | undefined, exclusive = false): boolean {
    const seg = this.live();
    this.started = true;
    const n = seg.recordCount;
    if (n === 0) return this.invalidate();
    if (target === undefined) return this.moveTo(this.reverse ? n - 1 : 0);
    const idx = seg.index;
    // Past the last key no block needs reading (merging cursors often seek past a segment).
    const vsLast = compareBytes(target, idx.lastKey);
    if (vsLast > 0 || (vsLast === 0 && exclusive && !this.reverse)) {
      return this.moveTo(this.reverse ? n - 1 : n);
    }
    const probe = this.probe.set(target);
    const e = idx.findEntry(probe);
    if (e < 0) return this.moveTo(this.reverse ? -1 : 0);
    this.useBlock(idx.entryBlock[e]);
    const blk = this.blk!;
    const lo = idx.entryOrdinal[e] - blk.first;
    const hi = idx.entryOrdinal[e + 1] - blk.first;
    // Forward: first key >= target (> if exclusive). Reverse: one before the first key
    // > target (>= if exclusive), i.e. the last key <= target (< if exclusive).
    const at = this.reverse
      ? blk.search(probe, lo, hi, !exclusive) - 1
      : blk.search(probe, lo, hi, exclusive);
    return this.moveTo(blk.first + at);
  }

  /** See RecordCursor.next. */
  next(): boolean {
    if (!this.started) return this.seek(undefined);
    if (!this.valid) return false;
    const blk = this.blk!;
    if (!this.reverse) {
      if (this.i + 1 < blk.count) {
        this.i++;
        this.materialize();
        return true;
      }
      return this.enterBlock(this.blockNo + 1);
    }
    if (this.i > 0) {
      this.i--;
      this.materialize();
      return true;
    }
    return this.enterBlock(this.blockNo - 1);
  }

  /** See RecordCursor.close. */
  close(): void {
    this.valueStale = false;
    this.seg = undefined;
    this.dropBlock();
    this.blockNo = -1;
    this.valid = false;
  }

  private live(): SinglePartDiskSegment {
    if (this.seg === undefined) throw new ClosedError("disk segment cursor is closed");
    return this.seg;
  }

  private invalidate(): boolean {
    this.valid = false;
    this.valueStale = false;
    return false;
  }

  /** Positions on segment ordinal `ord`, or invalid when it is outside [0, recordCount). */
  private moveTo(ord: number): boolean {
    const seg = this.live();
    if (ord < 0 || ord >= seg.recordCount) return this.invalidate();
    const blk = this.blk;
    if (blk === undefined || ord < blk.first || ord >= blk.first + blk.count) {
      this.useBlock(seg.index.blockOf(ord));
    }
    this.i = ord - this.blk!.first;
    this.materialize();
    return true;
  }

  /** Moves to the first (forward) or last (reverse) record of block `b`, or invalid. */
  private enterBlock(b: number): boolean {
    const seg = this.live();
    if (b < 0 || b >= seg.index.blockCount) return this.invalidate();
    this.useBlock(b);
    this.i = this.reverse ? this.blk!.count - 1 : 0;
    this.materialize();
    return true;
  }

  private useBlock(b: number): void {
    if (b === this.blockNo) return;
    const seg = this.live();
    // If the read below throws, the cursor must not be left on a half-loaded block.
    this.valid = false;
    this.valueStale = false;
    this.blockNo = -1;
    this.dropBlock();
    let blk = this.fillCache ? seg.blockForGet(b, this.own, this.scratch) : seg.peekBlock(b);
    if (blk === undefined) {
      seg.readBlock(b, this.own, this.scratch);
      blk = this.own;
    }
    // A cached block stays whole while the cursor is on it (the cache would reuse its buffer).
    if (blk !== this.own) blk.pins++;
    this.blk = blk;
    this.blockNo = b;
  }

  /** Leaves the current block, unpinning it if it is a cached one. */
  private dropBlock(): void {
    const blk = this.blk;
    if (blk !== undefined && blk !== this.own) blk.pins--;
    this.blk = undefined;
  }

  private fillValue(): void {
    const blk = this.blk!;
    const bytes = blk.bytes;
    const vOff = blk.valueOffset(this.i);
    const vb = this.valueBuf;
    if (vb !== undefined) {
      // A byte loop beats set(subarray(...)) up to a few hundred bytes (Bun's subarray is slow).
      if (vb.length <= 512) {
        for (let j = 0; j < vb.length; j++) vb[j] = bytes[vOff + j];
      } else {
        vb.set(bytes.subarray(vOff, vOff + vb.length));
      }
      this.valueBytes = vb;
    } else {
      this.valueBytes = bytes.subarray(vOff, vOff + blk.valueLength(this.i));
    }
    this.valueStale = false;
  }

  private materialize(): void {
    const blk = this.blk!;
    const i = this.i;
    const bytes = blk.bytes;
    const kOff = blk.keyOffset(i);
    const kb = this.keyBuf;
    if (kb !== undefined) {
      for (let j = 0; j < kb.length; j++) kb[j] = bytes[kOff + j];
      this.key = kb;
    } else {
      this.key = bytes.subarray(kOff, kOff + blk.keyLength(i));
    }
    this.valueStale = true;
    this.opIndex = blk.opIndex(i);
    this.kind = blk.kind(i);
    this.expiresAt = blk.expiresAt(i);
    this.valid = true;
  }
}
