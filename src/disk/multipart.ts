/**
 * Multipart disk segments: one logical disk segment made of ordered, immutable parts, each a
 * single-part disk segment file `seg-<partId>.data`, listed by a small descriptor file
 * `seg-<id>.multi`. A later descriptor may list a part unchanged (a merge carries it forward),
 * so a part file can belong to several descriptors over time; the engine refcounts part files
 * and deletes one only when no published descriptor and no open reader uses it.
 *
 * Descriptor layout (integers big-endian):
 *
 * ```
 * off   size   field
 *  0    8      magic "ZTMULTI1"
 *  8    4      formatVersion = 1
 * 12    4      partCount p (>= 1)
 * 16    8      segment id (the descriptor's own id; equals the id in the file name)
 * 24    8      recordCount (sum of the parts' record counts)
 * 32    ...    p part entries, in key order:
 *                +0  u64 part id
 *                +8  u64 part recordCount (>= 1)
 *                +16 u32 firstKeyLength, then the part's first key
 *                +.. u32 lastKeyLength, then the part's last key
 * end-4 4      CRC32C of bytes [0, end-4)
 * ```
 *
 * Invariants (asserted when written, checked as corruption when read): parts are non-empty, ids
 * are distinct, firstKey <= lastKey inside a part and lastKey of part i < firstKey of part i+1,
 * and each part file agrees with its entry (record count, first and last key, layout).
 *
 * Called by the engine's merger (write parts with `MultipartWriter` or carry old ones, then
 * `writeMultipartDescriptor`) and its open path (`openMultipartSegment`, `openAnyDiskSegment`).
 *
 * @module
 */
import { ClosedError, CorruptionError } from "../api/errors.ts";
import { type FileSystem, joinPath } from "../fs/file_system.ts";
import type { Comparer, RecordCursor, RecordSlot } from "../iter/record.ts";
import { EMPTY } from "../iter/record.ts";
import { assert } from "../util/assert.ts";
import { compareBytes, readU64, writeU64 } from "../util/bytes.ts";
import { crc32c } from "../util/crc32c.ts";
import type { BlockCache } from "./block_cache.ts";
import type {
  DiskCursorOptions,
  DiskSegment,
  DiskSegmentInfo,
  DiskSegmentWriteOptions,
} from "./disk_segment.ts";
import { type DiskLayout, multipartFileName } from "./format.ts";
import { openDiskSegment, type PreloadedIndexes, SinglePartDiskSegment } from "./segment_reader.ts";
import { DiskSegmentWriter, io, type RecordSource } from "./segment_writer.ts";

/** Version of the descriptor (`.multi`) format; its parts carry their own (`format.ts`). */
const MULTIPART_FORMAT_VERSION = 1;

const MAGIC = [0x5a, 0x54, 0x4d, 0x55, 0x4c, 0x54, 0x49, 0x31]; // "ZTMULTI1"
const HEADER_SIZE = 32;
/** A descriptor larger than this is not read (about 100k parts of 512-byte keys). */
const DESCRIPTOR_MAX_BYTES = 128 << 20;

/** What a descriptor says about one part (a DiskSegmentInfo fits). */
export interface PartRef {
  /** The part's id (its file is `seg-<id>.data`). */
  readonly id: number;
  /** Records in the part (>= 1). */
  readonly recordCount: number;
  /** The part's first key. */
  readonly firstKey: Uint8Array | undefined;
  /** The part's last key. */
  readonly lastKey: Uint8Array | undefined;
}

/** What a written descriptor holds. */
export interface MultipartInfo {
  /** The multipart segment's id (its descriptor is `seg-<id>.multi`). */
  readonly id: number;
  /** The descriptor file name (part files are not listed here: see `parts`). */
  readonly descriptorFile: string;
  /** Bytes of the descriptor file. */
  readonly descriptorBytes: number;
  /** The parts, in key order. */
  readonly parts: readonly PartRef[];
  /** Sum of the parts' record counts. */
  readonly recordCount: number;
}

/**
 * Writes descriptor `seg-<id>.multi` listing `parts` in order (each already written and synced),
 * syncs it and returns what it holds. The file must not exist. Asserts the part invariants.
 */
export function writeMultipartDescriptor(
  fs: FileSystem,
  dir: string,
  id: number,
  parts: readonly PartRef[],
): MultipartInfo {
  assert(parts.length >= 1, "a multipart disk segment has at least one part");
  let size = HEADER_SIZE + 4;
  let total = 0;
  const ids = new Set<number>();
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    assert(
      p.recordCount >= 1 && p.firstKey !== undefined && p.lastKey !== undefined,
      `part ${p.id} is empty`,
    );
    assert(compareBytes(p.firstKey, p.lastKey) <= 0, `part ${p.id} first key above its last`);
    assert(
      i === 0 || compareBytes(parts[i - 1].lastKey!, p.firstKey) < 0,
      `part ${p.id} overlaps the previous`,
    );
    assert(!ids.has(p.id), `part ${p.id} listed twice`);
    ids.add(p.id);
    size += 24 + p.firstKey.length + p.lastKey.length;
    total += p.recordCount;
  }
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  out.set(MAGIC, 0);
  v.setUint32(8, MULTIPART_FORMAT_VERSION);
  v.setUint32(12, parts.length);
  writeU64(v, 16, id);
  writeU64(v, 24, total);
  let pos = HEADER_SIZE;
  for (const p of parts) {
    writeU64(v, pos, p.id);
    writeU64(v, pos + 8, p.recordCount);
    pos = putKey(out, v, pos + 16, p.firstKey!);
    pos = putKey(out, v, pos, p.lastKey!);
  }
  v.setUint32(pos, crc32c(out, 0, pos));
  assert(pos + 4 === size, "descriptor size");
  const name = multipartFileName(id);
  const path = joinPath(dir, name);
  const h = io(path, "create", () => fs.openFile(path, { create: true, exclusive: true }));
  try {
    io(path, "write", () => h.append(out));
    io(path, "sync", () => h.sync());
  } finally {
    h.close();
  }
  const refs = parts.map((p) => ({
    id: p.id,
    recordCount: p.recordCount,
    firstKey: p.firstKey,
    lastKey: p.lastKey,
  }));
  return { id, descriptorFile: name, descriptorBytes: size, parts: refs, recordCount: total };
}

function putKey(out: Uint8Array, v: DataView, pos: number, key: Uint8Array): number {
  v.setUint32(pos, key.length);
  out.set(key, pos + 4);
  return pos + 4 + key.length;
}

/** Reads and checks descriptor `seg-<id>.multi` (CRC first, then every length in bounds). */
export function readMultipartDescriptor(
  fs: FileSystem,
  dir: string,
  id: number,
): MultipartInfo & { offsets: number[] } {
  const name = multipartFileName(id);
  const path = joinPath(dir, name);
  const st = fs.stat(path);
  if (st === undefined) throw new CorruptionError(path, 0, "multipart descriptor is missing");
  if (st.size > DESCRIPTOR_MAX_BYTES) {
    throw new CorruptionError(path, 0, `descriptor of ${st.size} bytes is too large`);
  }
  const bytes = io(path, "read", () => fs.readFile(path));
  const bad = (at: number, what: string) => new CorruptionError(path, at, what);
  if (bytes.length < HEADER_SIZE + 4) {
    throw bad(0, `descriptor is ${bytes.length} bytes, too short`);
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const end = bytes.length - 4;
  if (crc32c(bytes, 0, end) !== v.getUint32(end)) throw bad(end, "descriptor checksum mismatch");
  for (let i = 0; i < 8; i++) {
    if (bytes[i] !== MAGIC[i]) throw bad(0, "not a multipart descriptor (bad magic)");
  }
  if (v.getUint32(8) !== MULTIPART_FORMAT_VERSION) throw bad(8, `unknown format version ${v.getUint32(8)}`);
  const count = v.getUint32(12);
  if (count < 1 || count > (end - HEADER_SIZE) / 24) {
    throw bad(12, `part count ${count} out of range`);
  }
  if (readU64(v, 16) !== id) {
    throw bad(16, `descriptor names segment ${readU64(v, 16)}, expected ${id}`);
  }
  const total = readU64(v, 24);
  const parts: PartRef[] = [];
  const offsets: number[] = [];
  let pos = HEADER_SIZE;
  let sum = 0;
  for (let i = 0; i < count; i++) {
    if (pos + 20 > end) throw bad(pos, `part entry ${i} runs past the end`);
    offsets.push(pos);
    const partId = readU64(v, pos);
    const recordCount = readU64(v, pos + 8);
    if (partId < 0 || recordCount < 1) {
      throw bad(pos, `part entry ${i}: id ${partId}, ${recordCount} records`);
    }
    const firstKey = getKey(bytes, v, pos + 16, end, bad);
    pos += 20 + firstKey.length;
    if (pos + 4 > end) throw bad(pos, `part entry ${i} runs past the end`);
    const lastKey = getKey(bytes, v, pos, end, bad);
    pos += 4 + lastKey.length;
    parts.push({ id: partId, recordCount, firstKey, lastKey });
    sum += recordCount;
  }
  if (pos !== end) throw bad(pos, `descriptor has ${end - pos} trailing bytes`);
  if (sum !== total) throw bad(24, `recordCount ${total} is not the parts' sum ${sum}`);
  return {
    id,
    descriptorFile: name,
    descriptorBytes: bytes.length,
    parts,
    recordCount: total,
    offsets,
  };
}

function getKey(
  bytes: Uint8Array,
  v: DataView,
  pos: number,
  end: number,
  bad: (at: number, what: string) => CorruptionError,
): Uint8Array {
  const len = v.getUint32(pos);
  if (pos + 4 + len > end) throw bad(pos, `key length ${len} runs past the end`);
  return bytes.slice(pos + 4, pos + 4 + len);
}

/**
 * Opens multipart disk segment `id`: reads its descriptor, opens every part, and checks that
 * each part agrees with its entry and that parts are ordered and disjoint. Throws
 * CorruptionError (naming the descriptor or the part file) on any disagreement.
 */
export function openMultipartSegment(
  fs: FileSystem,
  dir: string,
  id: number,
  compare: Comparer,
  blockCache: BlockCache,
  preloaded?: PreloadedIndexes,
): MultipartDiskSegment {
  const desc = readMultipartDescriptor(fs, dir, id);
  const path = joinPath(dir, desc.descriptorFile);
  const parts: SinglePartDiskSegment[] = [];
  try {
    for (let i = 0; i < desc.parts.length; i++) {
      const part = openDiskSegment(fs, dir, desc.parts[i].id, compare, blockCache, preloaded);
      parts.push(part);
      checkPartAgrees(
        path,
        desc.offsets[i],
        desc.parts[i],
        part,
        i === 0 ? undefined : parts[i - 1],
      );
    }
  } catch (e) {
    for (const p of parts) p.close();
    throw e;
  }
  return new MultipartDiskSegment(fs, dir, id, desc.descriptorBytes, parts, compare);
}

function checkPartAgrees(
  path: string,
  at: number,
  ref: PartRef,
  part: SinglePartDiskSegment,
  prev: SinglePartDiskSegment | undefined,
): void {
  const same = (a: Uint8Array | undefined, b: Uint8Array | undefined) =>
    a !== undefined && b !== undefined && compareBytes(a, b) === 0;
  if (
    part.recordCount !== ref.recordCount || !same(part.firstKey, ref.firstKey) ||
    !same(part.lastKey, ref.lastKey)
  ) {
    throw new CorruptionError(path, at, `part ${ref.id} does not match its descriptor entry`);
  }
  if (prev !== undefined) {
    if (
      prev.layout !== part.layout || prev.keyWidth !== part.keyWidth ||
      prev.valueWidth !== part.valueWidth
    ) {
      throw new CorruptionError(path, at, `part ${ref.id} has another layout than part ${prev.id}`);
    }
    if (compareBytes(prev.lastKey!, part.firstKey!) >= 0) {
      throw new CorruptionError(path, at, `part ${ref.id} overlaps part ${prev.id}`);
    }
  }
}

/** A disk segment as the metadata names it: its id and its part ids in key order. */
export interface SegmentParts {
  readonly id: number;
  readonly parts: readonly number[];
}

/** Whether `ref` is a single-part segment: its only part is itself (`seg-<id>.data`). */
export function isSinglePart(ref: SegmentParts): boolean {
  return ref.parts.length === 1 && ref.parts[0] === ref.id;
}

/**
 * Opens the disk segment `ref` names, as the kind it says (single when its only part is
 * itself), so that a missing descriptor is reported as `seg-<id>.multi` missing rather than as
 * a single-part file that was never meant to exist. Used by the engine and the merge Worker.
 * `preloaded` supplies parts' footers and indexes already read (by the merge Worker), so that
 * only the others are read and decoded here.
 */
export function openRecordedSegment(
  fs: FileSystem,
  dir: string,
  ref: SegmentParts,
  compare: Comparer,
  blockCache: BlockCache,
  preloaded?: PreloadedIndexes,
): DiskSegment {
  return isSinglePart(ref)
    ? openDiskSegment(fs, dir, ref.id, compare, blockCache, preloaded)
    : openMultipartSegment(fs, dir, ref.id, compare, blockCache, preloaded);
}

/** The parts of an open segment: itself when single, else its parts. */
export function partsOf(segment: DiskSegment): readonly SinglePartDiskSegment[] {
  if (segment instanceof SinglePartDiskSegment) return [segment];
  if (segment instanceof MultipartDiskSegment) return segment.parts;
  return [];
}

/** Opens disk segment `id` whichever kind it is: multipart if `seg-<id>.multi` exists. */
export function openAnyDiskSegment(
  fs: FileSystem,
  dir: string,
  id: number,
  compare: Comparer,
  blockCache: BlockCache,
): DiskSegment {
  if (fs.stat(joinPath(dir, multipartFileName(id))) !== undefined) {
    return openMultipartSegment(fs, dir, id, compare, blockCache);
  }
  return openDiskSegment(fs, dir, id, compare, blockCache);
}

/** An open multipart disk segment: one SegmentReader over its ordered parts. */
export class MultipartDiskSegment implements DiskSegment {
  /** The multipart segment's id. */
  readonly id: number;
  /** The open parts, in key order. */
  readonly parts: readonly SinglePartDiskSegment[];
  /** Descriptor name, then every part's file. */
  readonly files: readonly string[];
  /** Records over all parts. */
  readonly recordCount: number;
  /** Bytes on disk: descriptor + parts. */
  readonly sizeBytes: number;
  /** Layout of every part. */
  readonly layout: DiskLayout;
  /** First key of the first part. */
  readonly firstKey: Uint8Array | undefined;
  /** Last key of the last part. */
  readonly lastKey: Uint8Array | undefined;
  /** Largest opIndex over the parts. */
  readonly maxOpIndex: number;
  /** Deletion markers over the parts. */
  readonly deleteCount: number;
  private readonly fs: FileSystem;
  private readonly dir: string;
  private readonly compare: Comparer;
  private closed = false;

  /** Use `openMultipartSegment`. */
  constructor(
    fs: FileSystem,
    dir: string,
    id: number,
    descriptorBytes: number,
    parts: SinglePartDiskSegment[],
    compare: Comparer,
  ) {
    assert(parts.length >= 1, "multipart has parts");
    this.fs = fs;
    this.dir = dir;
    this.id = id;
    this.parts = parts;
    this.compare = compare;
    this.files = [multipartFileName(id), ...parts.flatMap((p) => p.files)];
    this.recordCount = parts.reduce((n, p) => n + p.recordCount, 0);
    this.sizeBytes = parts.reduce((n, p) => n + p.sizeBytes, descriptorBytes);
    this.layout = parts[0].layout;
    this.firstKey = parts[0].firstKey;
    this.lastKey = parts[parts.length - 1].lastKey;
    this.maxOpIndex = parts.reduce((n, p) => Math.max(n, p.maxOpIndex), 0);
    this.deleteCount = parts.reduce((n, p) => n + p.deleteCount, 0);
  }

  /** Part ids in key order. */
  get partIds(): number[] {
    return this.parts.map((p) => p.id);
  }

  /** Bytes of index held in memory over all parts. */
  get indexBytes(): number {
    return this.parts.reduce((n, p) => n + p.indexBytes, 0);
  }

  /** The first part whose last key is >= key (> with strict), or parts.length. */
  partFor(key: Uint8Array, strict: boolean): number {
    let lo = 0;
    let hi = this.parts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareBytes(this.parts[mid].lastKey!, key);
      if (c < 0 || (strict && c === 0)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The last part whose first key is <= key (< with strict), or -1. */
  partBefore(key: Uint8Array, strict: boolean): number {
    let lo = 0;
    let hi = this.parts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareBytes(this.parts[mid].firstKey!, key);
      if (c < 0 || (!strict && c === 0)) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }

  /** See DiskSegment.get: routed to the one part whose key range holds `key`. */
  get(key: Uint8Array, out: RecordSlot): boolean {
    this.checkOpen();
    const i = this.partFor(key, false);
    if (i >= this.parts.length) return false;
    return this.parts[i].get(key, out);
  }

  /** See DiskSegment.cursor: chains the parts' cursors. */
  cursor(reverse: boolean, options?: DiskCursorOptions): RecordCursor {
    this.checkOpen();
    return new MultipartCursor(this, reverse, options);
  }

  /** Re-reads the descriptor, checks every part against it, then verifies every part. */
  verify(): void {
    this.checkOpen();
    const desc = readMultipartDescriptor(this.fs, this.dir, this.id);
    const path = joinPath(this.dir, desc.descriptorFile);
    if (desc.parts.length !== this.parts.length) {
      throw new CorruptionError(
        path,
        12,
        `descriptor lists ${desc.parts.length} parts, ${this.parts.length} are open`,
      );
    }
    for (let i = 0; i < this.parts.length; i++) {
      const part = this.parts[i];
      if (desc.parts[i].id !== part.id) {
        throw new CorruptionError(path, desc.offsets[i], `part ${i} is not ${part.id}`);
      }
      checkPartAgrees(
        path,
        desc.offsets[i],
        desc.parts[i],
        part,
        i === 0 ? undefined : this.parts[i - 1],
      );
      if (i > 0 && this.compare(this.parts[i - 1].lastKey!, part.firstKey!) >= 0) {
        throw new CorruptionError(
          path,
          desc.offsets[i],
          `part ${part.id} is not above the previous part`,
        );
      }
      part.verify();
    }
  }

  /** Closes every part. Idempotent. */
  close(): void {
    this.closed = true;
    for (const p of this.parts) p.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new ClosedError(`multipart disk segment ${this.files[0]} is closed`);
  }
}

/** A cursor over a multipart segment: one part cursor at a time, chained in key order. */
class MultipartCursor implements RecordCursor {
  key: Uint8Array = EMPTY;
  private valueSet: Uint8Array | undefined;
  opIndex = 0;
  kind = 0;
  expiresAt = 0;
  valid = false;
  readonly reverse: boolean;
  private seg: MultipartDiskSegment | undefined;
  private readonly options: DiskCursorOptions | undefined;
  private cur: RecordCursor | undefined;
  private partNo = -1;
  private started = false;

  constructor(seg: MultipartDiskSegment, reverse: boolean, options: DiskCursorOptions | undefined) {
    this.seg = seg;
    this.reverse = reverse;
    this.options = options;
  }

  /** The part cursor's value, read through so that its lazy materialization is kept. */
  get value(): Uint8Array {
    return this.valueSet ?? (this.valid ? this.cur!.value : EMPTY);
  }

  set value(v: Uint8Array) {
    this.valueSet = v;
  }

  /** See RecordCursor.copyValue: the part cursor's. */
  copyValue(): Uint8Array {
    if (this.valueSet !== undefined) return this.valueSet.slice();
    return this.valid ? this.cur!.copyValue() : new Uint8Array(0);
  }

  seek(target: Uint8Array | undefined, exclusive = false): boolean {
    const seg = this.live();
    this.started = true;
    const n = seg.parts.length;
    let p: number;
    if (target === undefined) p = this.reverse ? n - 1 : 0;
    else p = this.reverse ? seg.partBefore(target, exclusive) : seg.partFor(target, exclusive);
    if (p < 0 || p >= n) return this.invalidate();
    // The chosen part holds a key on the right side of target, so this seek finds one.
    this.usePart(p).seek(target, exclusive);
    return this.take();
  }

  next(): boolean {
    if (!this.started) return this.seek(undefined);
    if (!this.valid) return false;
    if (this.cur!.next()) return this.take();
    const p = this.partNo + (this.reverse ? -1 : 1);
    if (p < 0 || p >= this.live().parts.length) return this.invalidate();
    this.usePart(p).seek(undefined);
    return this.take();
  }

  close(): void {
    this.cur?.close();
    this.cur = undefined;
    this.seg = undefined;
    this.valid = false;
  }

  private live(): MultipartDiskSegment {
    if (this.seg === undefined) throw new ClosedError("multipart cursor is closed");
    return this.seg;
  }

  private usePart(p: number): RecordCursor {
    if (p !== this.partNo || this.cur === undefined) {
      this.cur?.close();
      this.cur = undefined;
      this.partNo = -1;
      this.cur = this.live().parts[p].cursor(this.reverse, this.options);
      this.partNo = p;
    }
    return this.cur;
  }

  private invalidate(): boolean {
    this.valid = false;
    return false;
  }

  private take(): boolean {
    const c = this.cur!;
    if (!c.valid) return this.invalidate();
    this.key = c.key;
    this.valueSet = undefined;
    this.opIndex = c.opIndex;
    this.kind = c.kind;
    this.expiresAt = c.expiresAt;
    this.valid = true;
    return true;
  }
}

/** Options of `MultipartWriter`. */
export interface MultipartWriteOptions extends DiskSegmentWriteOptions {
  /** Hands out a fresh id for each part (the engine's segment id counter). */
  allocateId: () => number;
  /** Parts aim at this many records at least (API.md multipartMinItemCount)... */
  partMinItemCount: number;
  /** ...and never hold more than this many (multipartMaxItemCount). */
  partMaxItemCount: number;
  /** Records expected in total, if known: parts are then balanced between min and max. */
  expectedRecordCount?: number;
}

/**
 * The record count at which a part is cut: `max` when the total is unknown; else the total split
 * into the fewest parts of at most `max`, evenly (so no tiny last part), but at least `min`.
 */
export function partTargetItemCount(
  expected: number | undefined,
  min: number,
  max: number,
): number {
  assert(min >= 1 && max >= min, `part item counts ${min}..${max}`);
  if (expected === undefined || expected <= max) return max;
  const parts = Math.ceil(expected / max);
  return Math.min(max, Math.max(min, Math.ceil(expected / parts)));
}

/**
 * Writes records (strictly ascending) as a sequence of parts, cutting a part at
 * `partTargetItemCount` records. Returns the part infos; the caller combines them with carried
 * parts in `writeMultipartDescriptor`. `abort` removes every part it wrote.
 */
export class MultipartWriter {
  private readonly fs: FileSystem;
  private readonly dir: string;
  private readonly options: MultipartWriteOptions;
  private readonly cut: number;
  private current: DiskSegmentWriter | undefined;
  private readonly done: DiskSegmentInfo[] = [];

  /** Prepares to write parts into `dir`. */
  constructor(fs: FileSystem, dir: string, options: MultipartWriteOptions) {
    this.fs = fs;
    this.dir = dir;
    this.options = options;
    this.cut = partTargetItemCount(
      options.expectedRecordCount,
      options.partMinItemCount,
      options.partMaxItemCount,
    );
  }

  /** Appends one record (strictly above the previous one, across parts too). */
  add(r: RecordSlot): void {
    if (this.current === undefined) {
      this.current = new DiskSegmentWriter(
        this.fs,
        this.dir,
        this.options.allocateId(),
        this.options,
      );
    }
    this.current.add(r);
    if (this.current.recordCount >= this.cut) this.finishPart();
  }

  /** Records in parts finished so far plus the open one. */
  get recordCount(): number {
    return this.done.reduce((n, p) => n + p.recordCount, 0) + (this.current?.recordCount ?? 0);
  }

  private finishPart(): void {
    const w = this.current!;
    this.current = undefined;
    const last = this.done[this.done.length - 1]?.lastKey;
    const info = w.finish();
    assert(last === undefined || this.options.compare(last, info.firstKey!) < 0, "parts ascend");
    this.done.push(info);
  }

  /** Finishes the open part and returns every part written, in key order. */
  finish(): DiskSegmentInfo[] {
    if (this.current !== undefined) this.finishPart();
    return this.done.slice();
  }

  /** Aborts the open part and removes every finished one. */
  abort(): void {
    this.current?.abort();
    this.current = undefined;
    for (const p of this.done) {
      try {
        this.fs.remove(joinPath(this.dir, p.files[0]));
      } catch {
        // Best effort, as in DiskSegmentWriter.abort: an orphan part is removed on the next open.
      }
    }
    this.done.length = 0;
  }
}

/**
 * Convenience: writes `records` as parts (ids from `allocateId`) plus descriptor `id`. Returns
 * the descriptor info and the part infos. On error removes what it wrote and rethrows.
 */
export function writeMultipartSegment(
  fs: FileSystem,
  dir: string,
  id: number,
  records: RecordSource,
  options: MultipartWriteOptions,
): { descriptor: MultipartInfo; parts: DiskSegmentInfo[] } {
  const w = new MultipartWriter(fs, dir, options);
  try {
    if (typeof records === "function") {
      for (let r = records(); r !== undefined; r = records()) w.add(r);
    } else {
      for (const r of records) w.add(r);
    }
    const parts = w.finish();
    return { descriptor: writeMultipartDescriptor(fs, dir, id, parts), parts };
  } catch (e) {
    w.abort();
    throw e;
  }
}
