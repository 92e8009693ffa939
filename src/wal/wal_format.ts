/**
 * The write-ahead log's byte layout, shared by `wal_writer.ts` and `wal_reader.ts` (and repeated
 * in docs/FORMATS.md). A WAL file is a header, then frames; a frame's payload holds one or more
 * records; a record holds one or more ops that share consecutive opIndexes.
 *
 * File header (20 bytes, integers big-endian):
 *
 * | offset | size | field                                           |
 * |--------|------|-------------------------------------------------|
 * | 0      | 5    | magic "ZTWAL"                                   |
 * | 5      | 1    | format version (2; 1: frames carry CRC-32C)     |
 * | 6      | 2    | reserved, 0                                     |
 * | 8      | 8    | segment id (u64)                                |
 * | 16     | 4    | crc32c of bytes 0..15                           |
 *
 * Frame (9 bytes of header when raw, 13 when lz4, then the payload):
 *
 * | offset | size | field                                                 |
 * |--------|------|-------------------------------------------------------|
 * | 0      | 4    | payloadLength: bytes stored after the frame header    |
 * | 4      | 4    | CRC-32 over bytes 8 .. end of payload (type..payload)  |
 * | 8      | 1    | type: 0 raw, 1 lz4 (a raw LZ4 block)                  |
 * | 9      | 4    | rawLength: payload size after decompression (lz4 only) |
 * | 9 / 13 | n    | payload: records, back to back                        |
 *
 * Record:
 *
 * | size      | field                                                         |
 * |-----------|---------------------------------------------------------------|
 * | 8         | opIndex of the first op (u64, at most 2^53 - 1)               |
 * | varint    | opCount (>= 1); op i has opIndex + i                          |
 * | ...       | opCount ops                                                   |
 *
 * Op:
 *
 * | size      | field                                                         |
 * |-----------|---------------------------------------------------------------|
 * | 1         | kind: 0 put, 1 deletion marker, 2 range deletion (key = start, value = end) |
 * | 1         | flags: bit 0 = has expiresAt; other bits 0                    |
 * | varint    | keyLength                                                     |
 * | keyLength | key                                                           |
 * | varint    | valueLength                                                   |
 * | valueLen. | value                                                         |
 * | 8         | expiresAt, float64 epoch ms (only with flag bit 0)            |
 *
 * A batch is always one record inside one frame, so the frame CRC makes it all or nothing.
 * Varints are unsigned LEB128 (`src/util/bytes.ts`).
 *
 * @module
 */
import { type Crc32Function, crc32c } from "../util/crc32c.ts";
import { crc32 } from "../util/crc32.ts";
import { readU64, writeU64 } from "../util/bytes.ts";

/** The four WAL modes of API.md §6. */
export type WalMode = "sync" | "sync-compressed" | "async-compressed" | "none";

/** One op of a batch. `expiresAt` is epoch ms, 0 = never. */
export interface WalOp {
  kind: number;
  key: Uint8Array;
  value: Uint8Array;
  expiresAt: number;
}

/**
 * A batch of ops as columns: op i is (`kinds[i]`, `keys[i]`, `values[i]`, `expiresAt[i]`) for
 * i < `count` (the arrays may be longer: a reused batch). No object per op: a million-record
 * load in batches made a million op objects on fresh pages for nothing.
 */
export interface WalBatch {
  count: number;
  kinds: ArrayLike<number>;
  keys: readonly Uint8Array[];
  values: readonly Uint8Array[];
  expiresAt: ArrayLike<number>;
}

const NO_BYTES = new Uint8Array(0);

/** A {@link WalBatch} that is filled op by op and can be reused once its writes are applied. */
export class OpColumns implements WalBatch {
  count = 0;
  kinds: number[] = [];
  keys: Uint8Array[] = [];
  values: Uint8Array[] = [];
  expiresAt: number[] = [];

  /** Appends op `count`. */
  add(kind: number, key: Uint8Array, value: Uint8Array, expiresAt: number): void {
    const i = this.count++;
    this.kinds[i] = kind;
    this.keys[i] = key;
    this.values[i] = value;
    this.expiresAt[i] = expiresAt;
  }

  /** Empties the batch and lets go of its keys and values (the arrays keep their length). */
  clear(): void {
    const keys = this.keys;
    const values = this.values;
    for (let i = 0; i < this.count; i++) {
      keys[i] = NO_BYTES;
      values[i] = NO_BYTES;
    }
    this.count = 0;
  }

  /** The columns of `ops`, in order. */
  static of(ops: Iterable<WalOp>): OpColumns {
    const c = new OpColumns();
    for (const op of ops) c.add(op.kind, op.key, op.value, op.expiresAt);
    return c;
  }
}

/** The file magic, "ZTWAL". */
export const WAL_MAGIC: Uint8Array = new Uint8Array([0x5a, 0x54, 0x57, 0x41, 0x4c]);
/**
 * The format version this code writes. Readers (and appends to a file that already exists)
 * take it and {@link WAL_FORMAT_VERSION_CRC32C}: version 1 checksums frames with CRC-32C,
 * version 2 with CRC-32 (IEEE), native in both runtimes (`util/crc32.ts`); nothing else differs.
 */
export const WAL_FORMAT_VERSION = 2;
/** The first WAL format: frames checksummed with CRC-32C (still read and appended to). */
export const WAL_FORMAT_VERSION_CRC32C = 1;

/** The frame checksum of a WAL of format `version`. */
export function walFrameChecksum(version: number): Crc32Function {
  return version === WAL_FORMAT_VERSION_CRC32C ? crc32c : crc32;
}
/** Size of the file header. */
export const WAL_HEADER_BYTES = 20;
/** Frame header size of a raw frame. */
export const FRAME_HEADER_RAW_BYTES = 9;
/** Frame header size of an lz4 frame. */
export const FRAME_HEADER_LZ4_BYTES = 13;
/** Frame type: the payload is stored as is. */
export const FRAME_TYPE_RAW = 0;
/** Frame type: the payload is one raw LZ4 block. */
export const FRAME_TYPE_LZ4 = 1;
/** Upper bound of a frame's payload (stored or raw). Larger batches are refused by the writer. */
export const FRAME_PAYLOAD_MAX_BYTES = 0x2000_0000;
/** The smallest record: opIndex, opCount, kind, flags, keyLength, valueLength. */
export const RECORD_MIN_BYTES = 13;
/** Op flag bit: an 8-byte expiresAt follows the value. */
export const OP_FLAG_EXPIRES = 1;
/** The largest op kind (range deletion). */
export const OP_KIND_MAX = 2;
/**
 * Upper bound of LZ4's expansion: each output byte of a match costs at least 1/255 input byte,
 * so a block of n bytes never decompresses to more than about 255 n.
 */
export const LZ4_EXPANSION_MAX = 256;

/** What `decodeWalHeader` says when the header fails its checksum (maybe torn, not corrupt). */
export const HEADER_CHECKSUM_MISMATCH = "file header checksum mismatch";

/** Encodes the file header for `segmentId` (format `version`: tests write the older one). */
export function encodeWalHeader(segmentId: number, version = WAL_FORMAT_VERSION): Uint8Array {
  const out = new Uint8Array(WAL_HEADER_BYTES);
  const view = new DataView(out.buffer);
  out.set(WAL_MAGIC, 0);
  out[5] = version;
  writeU64(view, 8, segmentId);
  view.setUint32(16, crc32c(out, 0, 16));
  return out;
}

/**
 * Decodes a file header from `bytes[start, start + WAL_HEADER_BYTES)`. Returns the segment id,
 * or a string saying what is wrong.
 */
export function decodeWalHeader(bytes: Uint8Array, start: number): number | string {
  const view = new DataView(bytes.buffer, bytes.byteOffset + start, WAL_HEADER_BYTES);
  if (view.getUint32(16) !== crc32c(bytes, start, start + 16)) return HEADER_CHECKSUM_MISMATCH;
  for (let i = 0; i < WAL_MAGIC.length; i++) {
    if (bytes[start + i] !== WAL_MAGIC[i]) return "not a WAL file (bad magic)";
  }
  if (bytes[start + 5] !== WAL_FORMAT_VERSION && bytes[start + 5] !== WAL_FORMAT_VERSION_CRC32C) {
    return `unsupported WAL format version ${bytes[start + 5]}`;
  }
  const segmentId = readU64(view, 8);
  return segmentId < 0 ? "segment id exceeds 2^53" : segmentId;
}

/** The directory part of a "/"-separated path ("." when there is none). */
export function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  if (i < 0) return ".";
  return i === 0 ? "/" : path.slice(0, i);
}
