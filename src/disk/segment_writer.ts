/**
 * Writes a single-part disk segment (or a part of a multipart one) to `seg-<id>.data`, streaming:
 * records arrive one at a time in ascending key order, each full block is compressed,
 * checksummed and appended, and only the index (about one entry per block plus one per
 * `sparseStep` records) stays in memory. Called by the engine's merger (push: `add` per record,
 * so a merge can run in slices) and by tests and benches (`writeDiskSegment`, pull).
 *
 * Data file layout (details in `format.ts`, `block_builder.ts`, `sparse_index.ts` and
 * docs/FORMATS.md):
 *
 * ```
 * +------------------------------+ 0
 * | block 0 .. block b-1         |  stored bytes (lz4 or raw), contiguous, no padding
 * +------------------------------+ indexOffset
 * | index region                 |  block table (29 B/block), sparse ordinals, sparse keys,
 * |                              |  last key
 * +------------------------------+ fileSize - 136
 * | footer (136 B)               |  counts, widths, layout, index offset/length/CRC32C, magic,
 * |                              |  footer CRC32C
 * +------------------------------+ fileSize
 * ```
 *
 * Raw block (before compression): 16-byte header (recordCount u32, opWidth u8, flags u8,
 * reserved u16, opBase u64), then columns: opIndex deltas, kinds bitset (if any deletion
 * marker), expiresAt (if any record expires), key/value end offsets (variable widths only),
 * keys, values.
 *
 * Invariants asserted as records arrive: keys strictly ascending by the comparer, fixed widths
 * respected, opIndex and expiresAt safe non-negative integers, kind PUT or DELETE.
 * Durability: the file is written under its final name and synced before `finish` returns; the
 * engine publishes it by an atomic metadata replace (and syncs the directory), so a file no
 * metadata names is an orphan that the engine deletes on open.
 *
 * @module
 */
import { IOError } from "../api/errors.ts";
import { type FileHandle, type FileSystem, joinPath } from "../fs/file_system.ts";
import { type Comparer, KIND_DELETE, KIND_PUT, type RecordSlot } from "../iter/record.ts";
import { assert } from "../util/assert.ts";
import { type Crc32Function, crc32c } from "../util/crc32c.ts";
import { lz4BlockBound, lz4CompressInto } from "../util/lz4_block.ts";
import { BlockBuilder } from "./block_builder.ts";
import type { DiskSegmentInfo, DiskSegmentWriteOptions } from "./disk_segment.ts";
import {
  BLOCK_SIZE_BYTES_MAX,
  BLOCK_SIZE_BYTES_MIN,
  blockChecksum,
  CODEC_LZ4,
  CODEC_RAW,
  dataFileName,
  DEFAULT_BLOCK_SIZE_BYTES,
  DEFAULT_SPARSE_STEP,
  encodeFooter,
  FORMAT_VERSION,
  FORMAT_VERSION_CRC32C,
  KEY_FIXED_WIDTH_MAX,
  layoutOf,
  LAYOUTS,
  RAW_BLOCK_LENGTH_MAX,
  VALUE_FIXED_WIDTH_MAX,
} from "./format.ts";
import { IndexBuilder } from "./sparse_index.ts";

/** Stored blocks are gathered up to this many bytes before one append to the file. */
const WRITE_BUFFER_BYTES = 1 << 20;

/** Records that a pull source yields: an iterable, or a function returning the next or undefined. */
export type RecordSource = Iterable<RecordSlot> | (() => RecordSlot | undefined);

/** A streaming writer of one disk segment file. */
export class DiskSegmentWriter {
  /** The segment (or part) id. */
  readonly id: number;
  /** The data file's path. */
  readonly path: string;
  private readonly fs: FileSystem;
  private readonly compare: Comparer;
  private readonly keyWidth: number; // 0 = variable
  private readonly valueWidth: number; // -1 = variable
  private readonly lz4: boolean;
  private readonly sparseStep: number;
  private readonly blockSizeBytes: number;
  /** Footer version, and the block checksum it implies (`blockChecksum`). */
  private readonly formatVersion: number;
  private readonly blockCrc: Crc32Function;
  private readonly block: BlockBuilder;
  private readonly index: IndexBuilder;
  private handle: FileHandle | undefined;
  private pending = new Uint8Array(WRITE_BUFFER_BYTES);
  private pendingLength = 0;
  /** Output of block compression, reused for every block (`write` copies out of it). */
  private lz4Out = new Uint8Array(0);
  private fileOffset = 0;
  private blockFirst = 0;
  private maxRawBlockLength = 0;
  private prevKey: Uint8Array | undefined;
  private spareKey: Uint8Array | undefined;
  private firstKey: Uint8Array | undefined;
  private stats = {
    records: 0,
    deletes: 0,
    expiring: 0,
    minOp: 0,
    maxOp: 0,
    keyBytes: 0,
    valueBytes: 0,
  };
  private state: "open" | "finished" | "aborted" = "open";

  /** Creates `dir/seg-<id>.data` (it must not exist) and gets ready for `add`. */
  constructor(fs: FileSystem, dir: string, id: number, options: DiskSegmentWriteOptions) {
    const { keyFixedWidth: kw, valueFixedWidth: vw } = options;
    assert(Number.isSafeInteger(id) && id >= 0, `segment id ${id}`);
    assert(
      kw === undefined || (Number.isInteger(kw) && kw >= 1 && kw <= KEY_FIXED_WIDTH_MAX),
      `keyFixedWidth ${kw}`,
    );
    assert(
      vw === undefined || (Number.isInteger(vw) && vw >= 0 && vw <= VALUE_FIXED_WIDTH_MAX),
      `valueFixedWidth ${vw}`,
    );
    this.formatVersion = options.formatVersion ?? FORMAT_VERSION;
    assert(
      this.formatVersion === FORMAT_VERSION || this.formatVersion === FORMAT_VERSION_CRC32C,
      `format version ${this.formatVersion}`,
    );
    this.blockCrc = blockChecksum(this.formatVersion);
    this.sparseStep = options.sparseStep ?? DEFAULT_SPARSE_STEP;
    this.blockSizeBytes = options.blockSizeBytes ?? DEFAULT_BLOCK_SIZE_BYTES;
    assert(
      Number.isInteger(this.sparseStep) && this.sparseStep >= 0 && this.sparseStep < 2 ** 32,
      "sparseStep",
    );
    assert(
      Number.isInteger(this.blockSizeBytes) && this.blockSizeBytes >= BLOCK_SIZE_BYTES_MIN &&
        this.blockSizeBytes <= BLOCK_SIZE_BYTES_MAX,
      `blockSizeBytes ${this.blockSizeBytes}`,
    );
    assert(options.compression === "lz4" || options.compression === "none", "compression");
    this.id = id;
    this.fs = fs;
    this.compare = options.compare;
    this.keyWidth = kw ?? 0;
    this.valueWidth = vw ?? -1;
    this.lz4 = options.compression === "lz4";
    this.block = new BlockBuilder(this.keyWidth, this.valueWidth);
    this.index = new IndexBuilder(kw === undefined);
    this.path = joinPath(dir, dataFileName(id));
    this.handle = io(
      this.path,
      "create",
      () => fs.openFile(this.path, { create: true, exclusive: true }),
    );
  }

  /** Records added so far. */
  get recordCount(): number {
    return this.stats.records;
  }

  /** Bytes written to the file so far (stored blocks, before index and footer). */
  get bytesWritten(): number {
    return this.fileOffset + this.pendingLength;
  }

  /** Appends one record; it must sort strictly after the previous one. The slot may be reused. */
  add(r: RecordSlot): void {
    assert(this.state === "open", "add after finish or abort");
    const { key, value } = r;
    this.checkRecord(r);
    if (
      this.block.count > 0 &&
      this.block.estimatedSizeWith(key.length, value.length) > this.blockSizeBytes
    ) {
      this.flushBlock();
    }
    const ordinal = this.stats.records;
    if (this.block.count === 0) this.blockFirst = ordinal;
    if (this.block.count === 0 || (this.sparseStep > 0 && ordinal % this.sparseStep === 0)) {
      this.index.addEntry(ordinal, key);
    }
    assert(
      this.block.estimatedSizeWith(key.length, value.length) <= RAW_BLOCK_LENGTH_MAX,
      "record fits a block",
    );
    this.block.add(key, value, r.opIndex, r.kind, r.expiresAt);
    const s = this.stats;
    if (ordinal === 0 || r.opIndex < s.minOp) s.minOp = r.opIndex;
    if (r.opIndex > s.maxOp) s.maxOp = r.opIndex;
    if (r.kind === KIND_DELETE) s.deletes++;
    if (r.expiresAt !== 0) s.expiring++;
    s.keyBytes += key.length;
    s.valueBytes += value.length;
    s.records++;
    this.rememberKey(key);
  }

  /** Asserts the record invariants (messages are built only on failure: this runs per record). */
  private checkRecord(r: RecordSlot): void {
    const { key, value } = r;
    if (this.keyWidth !== 0 && key.length !== this.keyWidth) {
      assert(false, `key length ${key.length} != keyFixedWidth ${this.keyWidth}`);
    }
    if (this.valueWidth >= 0 && value.length !== this.valueWidth) {
      assert(false, `value length ${value.length} != valueFixedWidth ${this.valueWidth}`);
    }
    if (!(r.opIndex >= 0 && Number.isSafeInteger(r.opIndex))) assert(false, `opIndex ${r.opIndex}`);
    if (r.kind !== KIND_PUT && r.kind !== KIND_DELETE) assert(false, `kind ${r.kind}`);
    if (!(r.expiresAt >= 0 && Number.isSafeInteger(r.expiresAt))) {
      assert(false, `expiresAt ${r.expiresAt}`);
    }
    if (this.prevKey !== undefined && !(this.compare(this.prevKey, key) < 0)) {
      assert(false, "records arrive in strictly ascending key order");
    }
  }

  /** Keeps a copy of the last key (fixed keys: two buffers swapped, so no allocation). */
  private rememberKey(key: Uint8Array): void {
    let copy: Uint8Array;
    if (this.keyWidth !== 0) {
      copy = this.spareKey ?? new Uint8Array(this.keyWidth);
      for (let i = 0; i < key.length; i++) copy[i] = key[i];
      this.spareKey = this.prevKey;
    } else {
      copy = key.slice();
    }
    if (this.firstKey === undefined) this.firstKey = key.slice();
    this.prevKey = copy;
  }

  /** Compresses (when it saves 1/32 or more), checksums and queues the current block. */
  private flushBlock(): void {
    const raw = this.block.finish();
    let stored = raw;
    let codec = CODEC_RAW;
    if (this.lz4) {
      // The in-house compressor writes into a reused buffer (no allocation per block) and skips
      // ahead quickly over incompressible data; lz4js is several times slower on the event loop.
      const bound = lz4BlockBound(raw.length);
      if (this.lz4Out.length < bound) this.lz4Out = new Uint8Array(bound);
      const n = lz4CompressInto(raw, 0, raw.length, this.lz4Out, 0);
      if (n > 0 && n <= raw.length - (raw.length >> 5)) {
        stored = this.lz4Out.subarray(0, n); // copied by `write` before the buffer is reused
        codec = CODEC_LZ4;
      }
    }
    const offset = this.fileOffset + this.pendingLength;
    this.index.addBlock(offset, stored.length, raw.length, this.blockCrc(stored), this.blockFirst, codec);
    if (raw.length > this.maxRawBlockLength) this.maxRawBlockLength = raw.length;
    this.write(stored);
    this.block.reset();
  }

  private write(bytes: Uint8Array): void {
    if (this.pendingLength + bytes.length > this.pending.length) this.flushPending();
    if (bytes.length >= this.pending.length) {
      const h = this.handle!;
      io(this.path, "write", () => h.append(bytes));
      this.fileOffset += bytes.length;
      return;
    }
    this.pending.set(bytes, this.pendingLength);
    this.pendingLength += bytes.length;
  }

  private flushPending(): void {
    if (this.pendingLength === 0) return;
    const h = this.handle!;
    const chunk = this.pending.subarray(0, this.pendingLength);
    io(this.path, "write", () => h.append(chunk));
    this.fileOffset += this.pendingLength;
    this.pendingLength = 0;
  }

  /** Writes the last block, the index and the footer, syncs and closes. */
  finish(): DiskSegmentInfo {
    const info = this.writeTail();
    const h = this.handle!;
    io(this.path, "sync", () => h.sync());
    return this.close(info);
  }

  /** Like `finish`, but syncs without blocking the event loop where the runtime allows it. */
  async finishAsync(): Promise<DiskSegmentInfo> {
    const info = this.writeTail();
    const h = this.handle!;
    try {
      await h.syncAsync();
    } catch (e) {
      this.abort();
      throw new IOError(`sync of ${this.path} failed`, { cause: e });
    }
    return this.close(info);
  }

  /**
   * Closes and removes the file (an unfinished segment is garbage). Idempotent; does nothing
   * after a successful `finish`.
   */
  abort(): void {
    if (this.state !== "open") return;
    this.state = "aborted";
    try {
      this.handle?.close();
    } finally {
      this.handle = undefined;
      try {
        this.fs.remove(this.path);
      } catch {
        // Best effort: the error that made us abort is the one to report, and the engine
        // removes a segment file that no metadata names when it next opens the directory.
      }
    }
  }

  private writeTail(): DiskSegmentInfo {
    assert(this.state === "open", "finish after finish or abort");
    try {
      if (this.block.count > 0) this.flushBlock();
      this.flushPending();
      const indexOffset = this.fileOffset;
      const indexBytes = this.index.finish(this.prevKey);
      assert(indexBytes.length < 2 ** 32, "index region fits u32");
      const s = this.stats;
      const footer = encodeFooter({
        formatVersion: this.formatVersion,
        layout: LAYOUTS.indexOf(
          layoutOf(this.keyWidth || undefined, this.valueWidth < 0 ? undefined : this.valueWidth),
        ),
        compression: this.lz4 ? 1 : 0,
        keyFixedWidth: this.keyWidth,
        valueFixedWidth: Math.max(0, this.valueWidth),
        segmentId: this.id,
        recordCount: s.records,
        deleteCount: s.deletes,
        expiringCount: s.expiring,
        minOpIndex: s.minOp,
        maxOpIndex: s.maxOp,
        rawKeyBytes: s.keyBytes,
        rawValueBytes: s.valueBytes,
        blockCount: this.index.blockCount,
        sparseCount: this.index.sparseCount,
        sparseStep: this.sparseStep,
        blockSizeBytes: this.blockSizeBytes,
        maxRawBlockLength: this.maxRawBlockLength,
        lastKeyLength: this.prevKey?.length ?? 0,
        indexOffset,
        indexLength: indexBytes.length,
        indexCrc: crc32c(indexBytes),
      });
      this.write(indexBytes);
      this.write(footer);
      this.flushPending();
      return this.info();
    } catch (e) {
      this.abort();
      throw e;
    }
  }

  private info(): DiskSegmentInfo {
    const s = this.stats;
    return {
      id: this.id,
      layout: layoutOf(
        this.keyWidth || undefined,
        this.valueWidth < 0 ? undefined : this.valueWidth,
      ),
      files: [dataFileName(this.id)],
      sizeBytes: this.fileOffset,
      recordCount: s.records,
      deleteCount: s.deletes,
      expiringCount: s.expiring,
      minOpIndex: s.minOp,
      maxOpIndex: s.maxOp,
      firstKey: this.firstKey,
      lastKey: this.prevKey?.slice(),
      blockCount: this.index.blockCount,
      rawKeyBytes: s.keyBytes,
      rawValueBytes: s.valueBytes,
    };
  }

  private close(info: DiskSegmentInfo): DiskSegmentInfo {
    this.state = "finished";
    const h = this.handle!;
    this.handle = undefined;
    io(this.path, "close", () => h.close());
    return info;
  }
}

/**
 * Writes `records` (strictly ascending keys) as single-part disk segment `id` in `dir` and
 * returns what it holds. The file is synced; nothing else (the directory, the metadata) is.
 * On any error the partial file is removed and the error rethrown.
 */
export function writeDiskSegment(
  fs: FileSystem,
  dir: string,
  id: number,
  records: RecordSource,
  options: DiskSegmentWriteOptions,
): DiskSegmentInfo {
  const w = new DiskSegmentWriter(fs, dir, id, options);
  try {
    if (typeof records === "function") {
      for (let r = records(); r !== undefined; r = records()) w.add(r);
    } else {
      for (const r of records) w.add(r);
    }
    return w.finish();
  } catch (e) {
    w.abort();
    throw e;
  }
}

/** Runs `fn`, wrapping a storage provider error in IOError naming the file and operation. */
export function io<T>(path: string, op: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof Error && e.name === "AssertionError") throw e;
    throw new IOError(`${op} of ${path} failed: ${(e as Error)?.message ?? e}`, { cause: e });
  }
}
