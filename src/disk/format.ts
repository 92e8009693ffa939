/**
 * The byte layout of disk segment files: constants, file names, the footer codec and the
 * bounds every reader enforces. `docs/FORMATS.md` ("Disk segments") repeats these tables; change
 * both together and bump `FORMAT_VERSION`.
 *
 * A single-part disk segment (also: a part of a multipart disk segment) is one file,
 * `seg-<id>.data` (id zero-padded to 10 digits, as the engine names every segment file):
 *
 * ```
 * +------------------------------+ offset 0
 * | block 0 (stored bytes)       |  blocks are contiguous; block i's offset, stored length,
 * | block 1                      |  raw length, codec, CRC-32 and first record ordinal are in
 * | ...                          |  the block table of the index region
 * +------------------------------+ footer.indexOffset
 * | index region                 |  block table, sparse index, last key (CRC32C in the footer)
 * +------------------------------+ fileSize - FOOTER_SIZE
 * | footer (FOOTER_SIZE = 136)   |  fixed size, read first; protected by its own CRC32C
 * +------------------------------+ fileSize
 * ```
 *
 * Footer (all integers big-endian; u64 holds a safe integer, i.e. below 2^53):
 *
 * ```
 * off  size  field
 *   0   4    formatVersion        = 2 (1: block CRCs are CRC-32C, still read)
 *   4   1    layout               0 fixed key + fixed value, 1 fixed key + variable value,
 *                                 2 variable key + fixed value, 3 variable key + variable value
 *   5   1    compression          0 none, 1 lz4 (what was asked; each block flags its own codec)
 *   6   2    reserved             = 0
 *   8   4    keyFixedWidth        1..65535 for fixed keys, 0 for variable keys
 *  12   4    valueFixedWidth      0..2^24 for fixed values, 0 for variable values
 *  16   8    segmentId            must equal the id in the file name
 *  24   8    recordCount          records (puts and deletion markers)
 *  32   8    deleteCount          deletion markers among them
 *  40   8    expiringCount        records with expiresAt != 0
 *  48   8    minOpIndex           0 when recordCount = 0
 *  56   8    maxOpIndex
 *  64   8    rawKeyBytes          sum of key lengths
 *  72   8    rawValueBytes        sum of value lengths
 *  80   4    blockCount           0 iff recordCount = 0
 *  84   4    sparseCount          index entries (every block's first key + every sparseStep-th)
 *  88   4    sparseStep           as written; 0 = block first keys only
 *  92   4    blockSizeBytes       target raw block size the writer used
 *  96   4    maxRawBlockLength    largest raw (decompressed) block, bounds every allocation
 * 100   4    lastKeyLength        length of the last key (0 when recordCount = 0)
 * 104   8    indexOffset          = end of the last block
 * 112   4    indexLength          indexOffset + indexLength = fileSize - FOOTER_SIZE
 * 116   4    indexCrc             CRC32C of the index region
 * 120   8    magic                "ZTDSEG01"
 * 128   4    reserved             = 0
 * 132   4    footerCrc            CRC32C of footer bytes [0, 132)
 * ```
 *
 * Called by the segment writer and reader; knows nothing about blocks' contents.
 *
 * @module
 */
import { CorruptionError } from "../api/errors.ts";
import { assert } from "../util/assert.ts";
import { type Crc32Function, crc32c } from "../util/crc32c.ts";
import { crc32 } from "../util/crc32.ts";
import { readU64, writeU64 } from "../util/bytes.ts";

/**
 * Version written in every data file footer. Readers accept this one and
 * {@link FORMAT_VERSION_CRC32C}: version 1 checksums blocks with CRC-32C, version 2 with CRC-32
 * (IEEE), which both runtimes compute natively (`util/crc32.ts`); nothing else differs.
 */
export const FORMAT_VERSION = 2;
/** The first format version: block checksums are CRC-32C (still read; written only by tests). */
export const FORMAT_VERSION_CRC32C = 1;

/** The block checksum of a data file of format `version` (see {@link FORMAT_VERSION}). */
export function blockChecksum(version: number): Crc32Function {
  return version === FORMAT_VERSION_CRC32C ? crc32c : crc32;
}
/** Bytes of the fixed-size footer at the end of a data file. */
export const FOOTER_SIZE = 136;
/** ASCII "ZTDSEG01". */
const FOOTER_MAGIC = [0x5a, 0x54, 0x44, 0x53, 0x45, 0x47, 0x30, 0x31];

/** Largest fixed key width the format accepts. */
export const KEY_FIXED_WIDTH_MAX = 65535;
/** Largest fixed value width the format accepts (16 MiB). */
export const VALUE_FIXED_WIDTH_MAX = 1 << 24;
/** Largest raw block: a single record bigger than this cannot be stored (1 GiB). */
export const RAW_BLOCK_LENGTH_MAX = 1 << 30;
/** Smallest and largest target block size the writer accepts. */
export const BLOCK_SIZE_BYTES_MIN = 256;
/** See {@link BLOCK_SIZE_BYTES_MIN}. */
export const BLOCK_SIZE_BYTES_MAX = 64 << 20;

/**
 * Default target raw block size: 16 KiB, chosen with `bench/disk_bench.ts` (numbers in
 * docs/FORMATS.md). A point read that misses the block cache reads, checks and decodes one whole
 * block, so its cost grows with the block (about 50 µs at 16 KiB, 80 µs at 32 KiB, 22 ms at
 * ZoneTree's 4 MiB for 1M 116-byte records), while compression gains little past 16 KiB (30.4% of
 * raw, 28.5% at 4 MiB; 34% at 4 KiB) and scans do not depend on it measurably. Smaller blocks
 * cost index memory (0.5 MB per million records at 16 KiB) and reopen time (about 1 ms).
 */
export const DEFAULT_BLOCK_SIZE_BYTES = 16 * 1024;
/** Default sparse index step (API.md `sparseStep`). */
export const DEFAULT_SPARSE_STEP = 1024;

/** Bytes of one block table entry in the index region. */
export const BLOCK_ENTRY_SIZE = 29;
/** Bytes of the raw block header. */
export const BLOCK_HEADER_SIZE = 16;

/** Block codec ids (block table `codec` byte). */
export const CODEC_RAW = 0;
/** LZ4 raw block (no frame). */
export const CODEC_LZ4 = 1;

/** The four physical layouts, chosen from the key and value widths. */
export type DiskLayout =
  | "fixed-key-fixed-value"
  | "fixed-key-variable-value"
  | "variable-key-fixed-value"
  | "variable-key-variable-value";

/** Layout names by their footer byte. */
export const LAYOUTS: readonly DiskLayout[] = [
  "fixed-key-fixed-value",
  "fixed-key-variable-value",
  "variable-key-fixed-value",
  "variable-key-variable-value",
];

/** The layout for the given widths (`undefined` = variable). */
export function layoutOf(keyFixedWidth?: number, valueFixedWidth?: number): DiskLayout {
  return LAYOUTS[(keyFixedWidth === undefined ? 2 : 0) + (valueFixedWidth === undefined ? 1 : 0)];
}

/** Zero-padded decimal id, as every segment file name carries it (sorts in id order). */
export function padId(id: number): string {
  return String(id).padStart(10, "0");
}

/** Name of the data file of single-part disk segment (or part) `id`. */
export function dataFileName(id: number): string {
  return `seg-${padId(id)}.data`;
}

/** Name of the descriptor file of multipart disk segment `id`. */
export function multipartFileName(id: number): string {
  return `seg-${padId(id)}.multi`;
}

/**
 * Parses a disk segment file name: `{ id, kind }` for `seg-<id>.data` / `seg-<id>.multi`,
 * `undefined` for anything else (the engine deletes unreferenced matches as orphans on open).
 */
export function parseDiskFileName(
  name: string,
): { id: number; kind: "data" | "multi" } | undefined {
  const m = /^seg-(\d{10,16})\.(data|multi)$/.exec(name);
  return m ? { id: Number(m[1]), kind: m[2] as "data" | "multi" } : undefined;
}

/** Everything the footer says, decoded and checked. */
export interface Footer {
  /** {@link FORMAT_VERSION} (or {@link FORMAT_VERSION_CRC32C}): decides the block checksum. */
  formatVersion: number;
  layout: number;
  compression: number;
  keyFixedWidth: number;
  valueFixedWidth: number;
  segmentId: number;
  recordCount: number;
  deleteCount: number;
  expiringCount: number;
  minOpIndex: number;
  maxOpIndex: number;
  rawKeyBytes: number;
  rawValueBytes: number;
  blockCount: number;
  sparseCount: number;
  sparseStep: number;
  blockSizeBytes: number;
  maxRawBlockLength: number;
  lastKeyLength: number;
  indexOffset: number;
  indexLength: number;
  indexCrc: number;
}

/** Encodes `f` as the FOOTER_SIZE bytes that end a data file. */
export function encodeFooter(f: Footer): Uint8Array {
  const out = new Uint8Array(FOOTER_SIZE);
  const v = new DataView(out.buffer);
  v.setUint32(0, f.formatVersion);
  v.setUint8(4, f.layout);
  v.setUint8(5, f.compression);
  v.setUint32(8, f.keyFixedWidth);
  v.setUint32(12, f.valueFixedWidth);
  const u64s = [
    f.segmentId,
    f.recordCount,
    f.deleteCount,
    f.expiringCount,
    f.minOpIndex,
    f.maxOpIndex,
    f.rawKeyBytes,
    f.rawValueBytes,
  ];
  for (let i = 0; i < u64s.length; i++) writeU64(v, 16 + 8 * i, u64s[i]);
  const u32s = [
    f.blockCount,
    f.sparseCount,
    f.sparseStep,
    f.blockSizeBytes,
    f.maxRawBlockLength,
    f.lastKeyLength,
  ];
  for (let i = 0; i < u32s.length; i++) v.setUint32(80 + 4 * i, u32s[i]);
  writeU64(v, 104, f.indexOffset);
  v.setUint32(112, f.indexLength);
  v.setUint32(116, f.indexCrc);
  out.set(FOOTER_MAGIC, 120);
  v.setUint32(132, crc32c(out, 0, 132));
  return out;
}

/**
 * Decodes and checks the footer of `file` (`bytes` = its last FOOTER_SIZE bytes, at
 * `fileOffset`). Checks the CRC before reading any field, then every field's range and the
 * agreement between fields and the file size. Throws CorruptionError on the first problem.
 */
export function decodeFooter(
  file: string,
  bytes: Uint8Array,
  fileOffset: number,
  fileSize: number,
  expectedId: number,
): Footer {
  assert(bytes.length === FOOTER_SIZE, "footer buffer size");
  const bad = (rel: number, what: string) => new CorruptionError(file, fileOffset + rel, what);
  const v = new DataView(bytes.buffer, bytes.byteOffset, FOOTER_SIZE);
  if (crc32c(bytes, 0, 132) !== v.getUint32(132)) throw bad(0, "footer checksum mismatch");
  for (let i = 0; i < 8; i++) {
    if (bytes[120 + i] !== FOOTER_MAGIC[i]) throw bad(120, "not a disk segment file (bad magic)");
  }
  const version = v.getUint32(0);
  if (version !== FORMAT_VERSION && version !== FORMAT_VERSION_CRC32C) {
    throw bad(0, `unknown format version ${version}`);
  }
  const u64 = (rel: number) => {
    const n = readU64(v, rel);
    if (n < 0) throw bad(rel, "64-bit field exceeds a safe integer");
    return n;
  };
  const f: Footer = {
    formatVersion: version,
    layout: v.getUint8(4),
    compression: v.getUint8(5),
    keyFixedWidth: v.getUint32(8),
    valueFixedWidth: v.getUint32(12),
    segmentId: u64(16),
    recordCount: u64(24),
    deleteCount: u64(32),
    expiringCount: u64(40),
    minOpIndex: u64(48),
    maxOpIndex: u64(56),
    rawKeyBytes: u64(64),
    rawValueBytes: u64(72),
    blockCount: v.getUint32(80),
    sparseCount: v.getUint32(84),
    sparseStep: v.getUint32(88),
    blockSizeBytes: v.getUint32(92),
    maxRawBlockLength: v.getUint32(96),
    lastKeyLength: v.getUint32(100),
    indexOffset: u64(104),
    indexLength: v.getUint32(112),
    indexCrc: v.getUint32(116),
  };
  checkFooterFields(f, bad, v, fileSize, expectedId);
  return f;
}

function checkFooterFields(
  f: Footer,
  bad: (rel: number, what: string) => CorruptionError,
  v: DataView,
  fileSize: number,
  expectedId: number,
): void {
  if (f.layout > 3) throw bad(4, `unknown layout ${f.layout}`);
  if (f.compression > 1) throw bad(5, `unknown compression ${f.compression}`);
  if (v.getUint16(6) !== 0 || v.getUint32(128) !== 0) throw bad(6, "reserved bytes are not zero");
  const fixedKey = f.layout < 2;
  const fixedValue = (f.layout & 1) === 0;
  if (
    fixedKey ? f.keyFixedWidth < 1 || f.keyFixedWidth > KEY_FIXED_WIDTH_MAX : f.keyFixedWidth !== 0
  ) {
    throw bad(8, `key width ${f.keyFixedWidth} does not fit layout ${LAYOUTS[f.layout]}`);
  }
  if (fixedValue ? f.valueFixedWidth > VALUE_FIXED_WIDTH_MAX : f.valueFixedWidth !== 0) {
    throw bad(12, `value width ${f.valueFixedWidth} does not fit layout ${LAYOUTS[f.layout]}`);
  }
  if (f.segmentId !== expectedId) {
    throw bad(16, `footer names segment ${f.segmentId}, expected ${expectedId}`);
  }
  const n = f.recordCount;
  if (f.deleteCount > n || f.expiringCount > n) throw bad(32, "marker counts exceed recordCount");
  if (f.minOpIndex > f.maxOpIndex) throw bad(48, "minOpIndex > maxOpIndex");
  if ((f.blockCount === 0) !== (n === 0) || f.blockCount > n) {
    throw bad(80, `blockCount ${f.blockCount} for ${n} records`);
  }
  if (f.sparseCount < f.blockCount || f.sparseCount > n) {
    throw bad(84, `sparseCount ${f.sparseCount} out of range`);
  }
  if (f.blockSizeBytes < BLOCK_SIZE_BYTES_MIN || f.blockSizeBytes > BLOCK_SIZE_BYTES_MAX) {
    throw bad(92, `blockSizeBytes ${f.blockSizeBytes} out of range`);
  }
  if (
    f.maxRawBlockLength > RAW_BLOCK_LENGTH_MAX || (n > 0 && f.maxRawBlockLength < BLOCK_HEADER_SIZE)
  ) {
    throw bad(96, `maxRawBlockLength ${f.maxRawBlockLength} out of range`);
  }
  if (
    fixedKey ? n > 0 && f.lastKeyLength !== f.keyFixedWidth : f.lastKeyLength > RAW_BLOCK_LENGTH_MAX
  ) {
    throw bad(100, `lastKeyLength ${f.lastKeyLength} out of range`);
  }
  if (f.indexOffset + f.indexLength !== fileSize - FOOTER_SIZE) {
    throw bad(104, `index [${f.indexOffset}, +${f.indexLength}) does not end at the footer`);
  }
  if (f.indexLength < f.blockCount * BLOCK_ENTRY_SIZE + f.sparseCount * 8) {
    throw bad(112, `indexLength ${f.indexLength} too small`);
  }
}
