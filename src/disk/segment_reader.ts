/**
 * Reads a single-part disk segment (or a part): `openDiskSegment` reads only the footer and the
 * index region (one read each), checks their CRCs and structure, and keeps the index as flat
 * typed arrays. A point read binary-searches the sparse index in memory, gets exactly one block
 * through the block cache (read, CRC-checked, decompressed and structure-checked on a miss),
 * and binary-searches inside the block in place. Cursors live in `segment_cursor.ts`.
 *
 * Invariants: every stored byte passes its CRC32C before any of it is interpreted; every length
 * and offset is bounds-checked against the file size or the block before use (by `decodeFooter`,
 * `SegmentIndex.decode` and `BlockView.load`), so a damaged file raises CorruptionError with the
 * file path and offset, never wrong data, a hang or a huge allocation.
 *
 * Called by the engine (open, recovery, merges, verify) and by `multipart.ts` for each part.
 * File format: see `format.ts` and docs/FORMATS.md.
 *
 * @module
 */
import { ClosedError, CorruptionError } from "../api/errors.ts";
import { type FileHandle, type FileSystem, joinPath } from "../fs/file_system.ts";
import type { Comparer, RecordCursor, RecordSlot } from "../iter/record.ts";
import { compareBytes } from "../util/bytes.ts";
import { type Crc32Function, crc32c } from "../util/crc32c.ts";
import { lz4DecodeInto } from "../util/lz4_decode.ts";
import { BLOCK_OVERHEAD_BYTES, BlockView } from "./block.ts";
import type { BlockCache } from "./block_cache.ts";
import type { DiskCursorOptions, DiskSegment, DiskSegmentInfo } from "./disk_segment.ts";
import {
  blockChecksum,
  CODEC_LZ4,
  dataFileName,
  decodeFooter,
  type DiskLayout,
  type Footer,
  FOOTER_SIZE,
  LAYOUTS,
} from "./format.ts";
import { KeyProbe } from "./key_probe.ts";
import { DiskSegmentCursor } from "./segment_cursor.ts";
import { io } from "./segment_writer.ts";
import { SegmentIndex, type SegmentIndexData } from "./sparse_index.ts";
import { verifySegmentBlocks } from "./segment_verify.ts";

/** Reusable buffers of one reader (a cursor, or point reads that the cache cannot keep). */
export interface ReadScratch {
  /** Stored (compressed) bytes; grows to the largest stored block read through it. */
  buf: Uint8Array;
  /** Decoded bytes; grows to the largest raw block. */
  out: Uint8Array;
}

/** Fresh, empty scratch buffers. */
export function newScratch(): ReadScratch {
  return { buf: new Uint8Array(0), out: new Uint8Array(0) };
}

function grown(buf: Uint8Array, n: number): Uint8Array {
  return buf.length >= n ? buf : new Uint8Array(Math.max(n, buf.length * 2));
}

/**
 * Opens single-part disk segment `id` (or the one `info` describes) in `dir`. Reads only the
 * footer and index. Throws CorruptionError if the file is missing, truncated, damaged, belongs
 * to another id, or disagrees with `info` (record count, size); IOError if the provider fails.
 * `compare` must agree with memcmp on encoded keys (API.md §1); blocks are searched in place by
 * memcmp and `verify` checks the order with `compare`.
 */
export function openDiskSegment(
  fs: FileSystem,
  dir: string,
  infoOrId: DiskSegmentInfo | number,
  compare: Comparer,
  blockCache: BlockCache,
  preloaded?: PreloadedIndexes,
): SinglePartDiskSegment {
  const id = typeof infoOrId === "number" ? infoOrId : infoOrId.id;
  const name = dataFileName(id);
  const path = joinPath(dir, name);
  if (fs.stat(path) === undefined) {
    throw new CorruptionError(path, 0, "disk segment file is missing");
  }
  const handle = io(path, "open", () => fs.openFile(path, { readOnly: true }));
  try {
    const pre = preloaded?.get(id);
    const { footer, index, size } = pre === undefined
      ? readFooterAndIndex(handle, path, id)
      : adoptPreloaded(handle, path, id, pre);
    if (typeof infoOrId !== "number") {
      if (infoOrId.recordCount !== footer.recordCount || infoOrId.sizeBytes !== size) {
        throw new CorruptionError(
          path,
          size - FOOTER_SIZE,
          `file holds ${footer.recordCount} records in ${size} bytes, ` +
            `expected ${infoOrId.recordCount} in ${infoOrId.sizeBytes}`,
        );
      }
    }
    return new SinglePartDiskSegment(handle, path, name, size, footer, index, compare, blockCache);
  } catch (e) {
    handle.close();
    throw e;
  }
}

/** Reads and checks the footer, then the index region it points to. */
export function readFooterAndIndex(
  handle: FileHandle,
  path: string,
  id: number,
): { footer: Footer; index: SegmentIndex; size: number } {
  const size = io(path, "stat", () => handle.size());
  if (size < FOOTER_SIZE) {
    throw new CorruptionError(
      path,
      0,
      `file is ${size} bytes, shorter than a footer (${FOOTER_SIZE})`,
    );
  }
  const footerBytes = new Uint8Array(FOOTER_SIZE);
  readFully(handle, path, footerBytes, size - FOOTER_SIZE, FOOTER_SIZE, "footer");
  const footer = decodeFooter(path, footerBytes, size - FOOTER_SIZE, size, id);
  const indexBytes = new Uint8Array(footer.indexLength);
  readFully(handle, path, indexBytes, footer.indexOffset, footer.indexLength, "index");
  if (crc32c(indexBytes) !== footer.indexCrc) {
    throw new CorruptionError(path, footer.indexOffset, "index checksum mismatch");
  }
  return { footer, index: SegmentIndex.decode(path, footer, indexBytes), size };
}

/**
 * A part's footer and decoded index as another thread read them from the same immutable file
 * (the merge Worker posts these for the parts of the segment it wrote), with the file's size.
 */
export interface PreloadedIndex {
  size: number;
  footer: Footer;
  index: SegmentIndexData;
}

/** Preloaded indexes by segment (part) id (`footer.segmentId`). */
export type PreloadedIndexes = ReadonlyMap<number, PreloadedIndex>;

/** The footer and index of an open segment, as plain data for another thread. */
export function preloadedIndexOf(segment: SinglePartDiskSegment): PreloadedIndex {
  return { size: segment.sizeBytes, footer: segment.footer, index: segment.index.data() };
}

/** Takes a preloaded footer and index for `handle`, after checking that they describe it. */
function adoptPreloaded(
  handle: FileHandle,
  path: string,
  id: number,
  pre: PreloadedIndex,
): { footer: Footer; index: SegmentIndex; size: number } {
  const size = io(path, "stat", () => handle.size());
  if (size !== pre.size || pre.footer.segmentId !== id) {
    throw new CorruptionError(
      path,
      0,
      `the index handed over is for segment ${pre.footer.segmentId} of ${pre.size} bytes, ` +
        `the file is segment ${id} of ${size} bytes`,
    );
  }
  return { footer: pre.footer, index: SegmentIndex.fromData(path, pre.footer, pre.index), size };
}

/** Reads exactly `length` bytes at `position` or throws CorruptionError (file too short). */
export function readFully(
  handle: FileHandle,
  path: string,
  buf: Uint8Array,
  position: number,
  length: number,
  what: string,
): void {
  const n = io(path, "read", () => handle.read(buf, position, length));
  if (n !== length) {
    throw new CorruptionError(path, position + n, `${what} truncated: ${n} of ${length} bytes`);
  }
}

/** An open single-part disk segment. */
export class SinglePartDiskSegment implements DiskSegment {
  /** Segment id. */
  readonly id: number;
  /** The data file's path. */
  readonly path: string;
  /** `[seg-<id>.data]`. */
  readonly files: readonly string[];
  /** Bytes on disk. */
  readonly sizeBytes: number;
  /** Records, deletion markers included. */
  readonly recordCount: number;
  /** Physical layout. */
  readonly layout: DiskLayout;
  /** The decoded footer. */
  readonly footer: Footer;
  /** The decoded index (block table + sparse index). */
  readonly index: SegmentIndex;
  /** First key, or undefined when empty. */
  readonly firstKey: Uint8Array | undefined;
  /** Last key, or undefined when empty. */
  readonly lastKey: Uint8Array | undefined;
  /** The comparer the segment was opened with. */
  readonly compare: Comparer;
  /** The shared block cache. */
  readonly cache: BlockCache;
  /** 0 = variable keys. */
  readonly keyWidth: number;
  /** -1 = variable values. */
  readonly valueWidth: number;
  private handle: FileHandle | undefined;
  /** The block checksum of this file's format version. */
  private readonly blockCrc: Crc32Function;
  private readonly scratch: ReadScratch = newScratch();
  private readonly getView: BlockView;
  private readonly probe = new KeyProbe();

  /** Use `openDiskSegment`. */
  constructor(
    handle: FileHandle,
    path: string,
    name: string,
    size: number,
    footer: Footer,
    index: SegmentIndex,
    compare: Comparer,
    cache: BlockCache,
  ) {
    this.handle = handle;
    this.path = path;
    this.files = [name];
    this.sizeBytes = size;
    this.footer = footer;
    this.blockCrc = blockChecksum(footer.formatVersion);
    this.index = index;
    this.id = footer.segmentId;
    this.recordCount = footer.recordCount;
    this.layout = LAYOUTS[footer.layout];
    this.keyWidth = footer.layout < 2 ? footer.keyFixedWidth : 0;
    this.valueWidth = (footer.layout & 1) === 0 ? footer.valueFixedWidth : -1;
    this.firstKey = index.sparseCount > 0 ? index.entryKey(0) : undefined;
    this.lastKey = footer.recordCount > 0 ? index.lastKey : undefined;
    this.compare = compare;
    this.cache = cache;
    this.getView = new BlockView(this.keyWidth, this.valueWidth);
  }

  /** Largest opIndex held. */
  get maxOpIndex(): number {
    return this.footer.maxOpIndex;
  }

  /** Deletion markers held. */
  get deleteCount(): number {
    return this.footer.deleteCount;
  }

  /** Bytes of index held in memory. */
  get indexBytes(): number {
    return this.index.sizeBytes;
  }

  /** See DiskSegment.get. */
  get(key: Uint8Array, out: RecordSlot): boolean {
    const idx = this.index;
    const probe = this.probe.set(key);
    const e = idx.findEntry(probe);
    if (e < 0) return false;
    if (e === idx.sparseCount - 1 && compareBytes(key, idx.lastKey) > 0) return false;
    const blk = this.blockForGet(idx.entryBlock[e]);
    const lo = idx.entryOrdinal[e] - blk.first;
    const hi = idx.entryOrdinal[e + 1] - blk.first;
    const i = blk.search(probe, lo, hi, false);
    if (i >= hi || blk.compareKey(probe, i) !== 0) return false;
    out.key = key;
    out.value = blk.valueCopy(i);
    out.valueIsCopy = true;
    out.opIndex = blk.opIndex(i);
    out.kind = blk.kind(i);
    out.expiresAt = blk.expiresAt(i);
    return true;
  }

  /** See DiskSegment.cursor. */
  cursor(reverse: boolean, options?: DiskCursorOptions): RecordCursor {
    return new DiskSegmentCursor(this, reverse, options?.fillCache ?? false);
  }

  /**
   * Block `b` through the cache: a hit, or read + check + decode + insert. A block the cache
   * cannot hold at all (capacity 0, or a huge block) is decoded into `reuse` instead (default:
   * this segment's own point-read buffers), so a cache-less get allocates no block buffer.
   */
  blockForGet(b: number, reuseView?: BlockView, reuseScratch?: ReadScratch): BlockView {
    const cached = this.cache.get(this.id, b) as BlockView | undefined;
    if (cached !== undefined) return cached;
    if (!this.cache.fits(this.index.blockRaw[b] + BLOCK_OVERHEAD_BYTES)) {
      const view = reuseView ?? this.getView;
      this.readBlock(b, view, reuseScratch ?? this.scratch);
      return view;
    }
    const blk = new BlockView(this.keyWidth, this.valueWidth);
    this.readBlock(b, blk, undefined);
    blk.buildHints();
    this.cache.set(this.id, b, blk);
    return blk;
  }

  /** Block `b` if the cache holds it, without changing its recency. */
  peekBlock(b: number): BlockView | undefined {
    return this.cache.peek(this.id, b) as BlockView | undefined;
  }

  /**
   * Reads block `b` from the file into `into`: checks the CRC of the stored bytes, decodes,
   * checks the structure. With `scratch`, the block is decoded into its reusable buffers (a
   * cursor's own block, or an uncacheable point read); without, into a fresh array that the
   * block then owns (cacheable). `idx` defaults to the open index; `verify` passes the one it
   * re-read from the file.
   */
  readBlock(b: number, into: BlockView, scratch: ReadScratch | undefined, idx = this.index): void {
    const handle = this.handle;
    if (handle === undefined) throw new ClosedError(`disk segment ${this.path} is closed`);
    const stored = idx.blockStored[b];
    const raw = idx.blockRaw[b];
    const offset = idx.blockOffset[b];
    const lz4 = idx.blockCodec[b] === CODEC_LZ4;
    let out: Uint8Array;
    if (scratch === undefined) out = this.cache.takeBuffer(raw) ?? new Uint8Array(raw);
    else out = scratch.out = grown(scratch.out, raw);
    let buf = out;
    if (lz4) {
      const s = scratch ?? this.scratch;
      buf = s.buf = grown(s.buf, stored);
    }
    readFully(handle, this.path, buf, offset, stored, `block ${b}`);
    if (this.blockCrc(buf, 0, stored) !== idx.blockCrc[b]) {
      throw new CorruptionError(this.path, offset, `block ${b} checksum mismatch`);
    }
    if (lz4 && !lz4DecodeInto(buf, 0, stored, raw === out.length ? out : out.subarray(0, raw))) {
      throw new CorruptionError(
        this.path,
        offset,
        `block ${b} does not decompress to ${raw} bytes`,
      );
    }
    const problem = into.load(
      out,
      raw,
      idx.blockFirst[b + 1] - idx.blockFirst[b],
      idx.blockFirst[b],
    );
    if (problem !== undefined) {
      throw new CorruptionError(this.path, offset, `block ${b}: ${problem}`);
    }
  }

  /** See DiskSegment.verify. */
  verify(): void {
    const handle = this.handle;
    if (handle === undefined) throw new ClosedError(`disk segment ${this.path} is closed`);
    const { footer, index } = readFooterAndIndex(handle, this.path, this.id);
    verifySegmentBlocks(this, footer, index);
  }

  /** See DiskSegment.close. The engine also calls `cache.dropSegment(id)` when files go. */
  close(): void {
    const h = this.handle;
    this.handle = undefined;
    h?.close();
  }
}
