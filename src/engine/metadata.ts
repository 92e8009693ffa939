/**
 * The metadata file `meta`: what a data directory is (format version, keyspace identity and
 * spec, the options that shape its files), which segments are current, and the opIndex
 * high-water mark.
 *
 *   offset  size  field
 *   0       8     magic "ZTMETA\0\x01"
 *   8       4     u32 BE length N of the JSON body
 *   12      4     u32 BE CRC-32C of the JSON body
 *   16      N     JSON body (UTF-8), see `Metadata`
 *
 * Replaced atomically: write `meta.tmp`, sync it, rename over `meta`, sync the directory. A crash
 * at any point leaves either the old or the new file; a leftover `meta.tmp` is removed on open.
 *
 * @module
 */
import { CorruptionError, IOError } from "../api/errors.ts";
import { crc32c } from "../util/crc32c.ts";
import { type FileSystem, joinPath } from "../fs/file_system.ts";
import { META_FILE, META_TMP_FILE } from "./file_names.ts";

/** Version of the data-directory format this code writes and reads. */
export const FORMAT_VERSION = 1;

const MAGIC = new Uint8Array([0x5a, 0x54, 0x4d, 0x45, 0x54, 0x41, 0x00, 0x01]); // "ZTMETA\0\1"
const HEADER_BYTES = 16;
const BODY_MAX_BYTES = 64 * 1024 * 1024;

/** A disk segment as the metadata records it (single-part, or multipart with its parts). */
export interface DiskSegmentRecord {
  id: number;
  /** Part ids in key order; `[id]` for a single-part segment. */
  parts: number[];
  recordCount: number;
}

/** A range tombstone as stored in metadata (hex bytes; an empty end is unbounded). */
export interface StoredTombstone {
  start: string;
  end: string;
  opIndex: number;
}

/** The JSON body of the metadata file. */
export interface Metadata {
  formatVersion: number;
  keyspace: { identity: string; canonical: string; spec: unknown };
  /** Options that shape the files; fixed when the database is created. */
  shape: {
    keyFixedWidth: number | null;
    valueFixedWidth: number | null;
    layout: string;
  };
  /** Every opIndex ever returned is <= this (a lease: raised before numbers above it are used). */
  opIndexReserved: number;
  /** Exact highest opIndex at the last clean close or publish. */
  lastOpIndex: number;
  /** Ids below this were allocated; new segments take ids from here up. */
  nextSegmentId: number;
  /** In-memory segments with id <= this are persisted in disk segments; their WALs are obsolete. */
  persistedSegmentId: number;
  diskSegment: DiskSegmentRecord | null;
  /** Bottom segments, oldest first. */
  bottomSegments: DiskSegmentRecord[];
  /**
   * Range tombstones merged out of the WALs that may still hide records in bottom segments.
   * Dropped when a merge has applied them to every segment (nothing below it). Optional.
   */
  rangeTombstones?: StoredTombstone[];
  /**
   * Change feed (src/engine/change_feed.ts): every opIndex above this is in a WAL file (a live
   * `wal-<id>.log` or a retained `wal-<id>.old`); it is the highest opIndex dropped from
   * retention. Optional: absent in directories written before the change feed existed.
   */
  changeFeedFloor?: number;
  /** Merged WAL files kept as `wal-<id>.old` for the change feed, oldest first. Optional. */
  changeFeedFiles?: RetainedWal[];
}

/** A merged WAL file kept for the change feed. */
export interface RetainedWal {
  /** Segment id: the file is `wal-<id>.old`. */
  id: number;
  /** Every op in the file has an opIndex <= this (the tree's lastOpIndex when it was frozen). */
  lastOpIndex: number;
  /** File size in bytes, counted against changeFeedRetentionBytes. */
  bytes: number;
}

/** Encodes `meta` into the file bytes. */
export function encodeMetadata(meta: Metadata): Uint8Array {
  const body = new TextEncoder().encode(JSON.stringify(meta));
  const out = new Uint8Array(HEADER_BYTES + body.length);
  out.set(MAGIC, 0);
  const view = new DataView(out.buffer);
  view.setUint32(8, body.length);
  view.setUint32(12, crc32c(body));
  out.set(body, HEADER_BYTES);
  return out;
}

/** Decodes and checks metadata bytes read from `path`. Throws `CorruptionError`. */
export function decodeMetadata(bytes: Uint8Array, path: string): Metadata {
  if (bytes.length < HEADER_BYTES) {
    throw new CorruptionError(path, 0, `file is ${bytes.length} bytes, shorter than its header`);
  }
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC[i]) throw new CorruptionError(path, i, "bad magic: not a metadata file");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getUint32(8);
  if (length > BODY_MAX_BYTES || HEADER_BYTES + length !== bytes.length) {
    throw new CorruptionError(path, 8, `body length ${length} does not match file size ${bytes.length}`);
  }
  const body = bytes.subarray(HEADER_BYTES);
  if (crc32c(body) !== view.getUint32(12)) {
    throw new CorruptionError(path, HEADER_BYTES, "checksum mismatch in metadata body");
  }
  let meta: Metadata;
  try {
    meta = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch (e) {
    throw new CorruptionError(path, HEADER_BYTES, "metadata body is not valid JSON", { cause: e });
  }
  if (meta?.formatVersion !== FORMAT_VERSION) {
    throw new CorruptionError(path, HEADER_BYTES, `unsupported format version ${meta?.formatVersion}`);
  }
  return meta;
}

/** Reads `dir/meta`, or returns undefined if there is none. */
export function readMetadata(fs: FileSystem, dir: string): Metadata | undefined {
  const path = joinPath(dir, META_FILE);
  if (!fs.stat(path)) return undefined;
  return decodeMetadata(fs.readFile(path), path);
}

/** Atomically replaces `dir/meta` with `meta` (temp file, sync, rename, sync directory). */
export function writeMetadata(fs: FileSystem, dir: string, meta: Metadata): void {
  const tmp = joinPath(dir, META_TMP_FILE);
  const file = fs.openFile(tmp, { create: true, truncate: true });
  try {
    file.write(encodeMetadata(meta), 0);
    file.sync();
  } finally {
    file.close();
  }
  fs.rename(tmp, joinPath(dir, META_FILE));
  try {
    fs.syncDir(dir);
  } catch (e) {
    throw new MetadataSyncError(dir, e);
  }
}

/**
 * `meta` was replaced but the directory sync after the rename failed: the new file is in place,
 * and after a power loss either the old or the new one may be there. Whoever wrote it must keep
 * every file that either one names, and write nothing more (the engine stops accepting writes).
 */
export class MetadataSyncError extends IOError {
  constructor(dir: string, cause: unknown) {
    super(
      `the metadata in ${dir} was replaced, but the directory sync failed (${
        cause instanceof Error ? cause.message : String(cause)
      }): the old or the new metadata may survive a crash`,
      { cause },
    );
  }
}
