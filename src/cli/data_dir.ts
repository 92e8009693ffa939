/**
 * Reads a data directory as the tools see it, without opening a tree and without taking its
 * lock: the metadata, the keyspace rebuilt from its stored spec, every file with its size and
 * role, and each disk segment's parts, record counts and bytes.
 *
 * Invariants: nothing here writes a file. Disk segments are opened with the bytewise comparer,
 * which equals every compiled keyspace comparer (API.md §1), so segments can be read even when
 * the keyspace cannot be rebuilt (a custom value codec). Called by `inspect`, `verify`, `get`,
 * `scan`, `compact` and `demo`.
 *
 * @module
 */
import { DatabaseNotFoundError, SchemaError } from "../api/errors.ts";
import { BlockCache } from "../disk/block_cache.ts";
import type { DiskSegment } from "../disk/disk_segment.ts";
import { MultipartDiskSegment } from "../disk/multipart.ts";
import type { SinglePartDiskSegment } from "../disk/segment_reader.ts";
import { type DiskSegmentRecord, type Metadata, readMetadata } from "../engine/metadata.ts";
import { openRecordedSegment } from "../engine/disk_set.ts";
import {
  LOCK_FILE,
  META_FILE,
  META_TMP_FILE,
  parseRetainedWalFileName,
  parseSegmentFileName,
  parseWalFileName,
} from "../engine/file_names.ts";
import { type FileSystem, joinPath } from "../fs/file_system.ts";
import {
  type AnyKeyspace,
  defineKeyspace,
  keyspaceFromSpec,
  type KeyspaceSpec,
} from "../keyspace/define_keyspace.ts";
import { compareBytes } from "../util/bytes.ts";
import { ZoneTree } from "../api/zone_tree.ts";

/** What a file of the data directory is. */
export type FileRole =
  | "meta"
  | "meta.tmp"
  | "lock"
  | "wal"
  | "wal (obsolete)"
  | "wal (retained)"
  | "wal (retained, unlisted)"
  | "segment"
  | "segment (unreferenced)"
  | "other";

/** The roles of WAL files (live, merged and obsolete, kept for the change feed). */
export const WAL_ROLES: readonly FileRole[] = [
  "wal",
  "wal (obsolete)",
  "wal (retained)",
  "wal (retained, unlisted)",
];

/** A file of the data directory. */
export interface DirFile {
  name: string;
  sizeBytes: number;
  role: FileRole;
}

/** The keyspace of a data directory, rebuilt from its metadata. */
export interface StoredKeyspace {
  /** The rebuilt keyspace; with a custom value codec its values decode to raw bytes. */
  keyspace: AnyKeyspace;
  /** True when values are raw bytes (a custom value codec that only code can rebuild). */
  rawValues: boolean;
}

/** A data directory as read from its files. */
export interface DataDir {
  dir: string;
  meta: Metadata;
  files: DirFile[];
}

/** One part of a disk segment (a single-part segment is its own one part). */
export interface PartInfo {
  id: number;
  file: string;
  recordCount: number;
  deleteCount: number;
  sizeBytes: number;
  blockCount: number;
}

/** A disk segment as opened from its files. */
export interface SegmentInfo {
  id: number;
  kind: "single" | "multipart";
  recordCount: number;
  deleteCount: number;
  sizeBytes: number;
  files: string[];
  parts: PartInfo[];
}

/** Reads `dir`'s metadata and file list. Throws DatabaseNotFoundError, CorruptionError. */
export function readDataDir(fs: FileSystem, dir: string): DataDir {
  const stat = fs.stat(dir);
  if (stat === undefined) {
    throw new DatabaseNotFoundError(`no database in ${dir} (the directory does not exist)`);
  }
  if (!stat.isDirectory) {
    throw new DatabaseNotFoundError(`no database in ${dir} (it is a file, not a directory)`);
  }
  const meta = readMetadata(fs, dir);
  if (meta === undefined) {
    throw new DatabaseNotFoundError(`no database in ${dir} (no metadata file)`);
  }
  const live = liveSegmentIds(meta);
  const files = fs.list(dir).map((name): DirFile => ({
    name,
    sizeBytes: fs.stat(joinPath(dir, name))?.size ?? 0,
    role: roleOf(name, meta, live),
  }));
  return { dir, meta, files };
}

/** Ids of every segment and part file the metadata references. */
export function liveSegmentIds(meta: Metadata): Set<number> {
  const ids = new Set<number>();
  for (const r of segmentRecords(meta)) {
    ids.add(r.record.id);
    for (const p of r.record.parts) ids.add(p);
  }
  return ids;
}

/** The disk segment (if any) and the bottom segments, with their place in the layers. */
export function segmentRecords(meta: Metadata): { label: string; record: DiskSegmentRecord }[] {
  const out: { label: string; record: DiskSegmentRecord }[] = [];
  if (meta.diskSegment) out.push({ label: "disk segment", record: meta.diskSegment });
  meta.bottomSegments.forEach((record, i) => out.push({ label: `bottom segment ${i}`, record }));
  return out;
}

function roleOf(name: string, meta: Metadata, live: Set<number>): FileRole {
  if (name === META_FILE) return "meta";
  if (name === META_TMP_FILE) return "meta.tmp";
  if (name === LOCK_FILE) return "lock";
  // Merged WALs the change feed keeps are listed in the metadata; the engine renames a listed
  // `.log` to `.old` and removes unlisted merged ones on open.
  const retained = new Set((meta.changeFeedFiles ?? []).map((f) => f.id));
  const walId = parseWalFileName(name);
  if (walId !== undefined) {
    if (walId > meta.persistedSegmentId) return "wal";
    return retained.has(walId) ? "wal (retained)" : "wal (obsolete)";
  }
  const oldId = parseRetainedWalFileName(name);
  if (oldId !== undefined) {
    return retained.has(oldId) ? "wal (retained)" : "wal (retained, unlisted)";
  }
  const segId = parseSegmentFileName(name);
  if (segId !== undefined) return live.has(segId) ? "segment" : "segment (unreferenced)";
  return "other";
}

/**
 * Rebuilds the keyspace from the metadata's spec and checks that it has the stored identity.
 * A custom value codec cannot be rebuilt: its values are then read as raw bytes through a
 * stand-in codec with the same id and width (so the identity still matches).
 */
export function storedKeyspace(meta: Metadata): StoredKeyspace {
  const spec = meta.keyspace.spec as KeyspaceSpec;
  const value = spec?.value as unknown;
  let keyspace: AnyKeyspace;
  let rawValues = false;
  if (typeof value === "object" && value !== null && "custom" in value) {
    rawValues = true;
    const width = meta.shape.valueFixedWidth ?? undefined;
    keyspace = defineKeyspace({
      key: spec.key,
      value: {
        id: String((value as { custom: unknown }).custom),
        encode: (v: Uint8Array) => v,
        decode: (b: Uint8Array) => b,
        ...(width === undefined ? {} : { fixedWidth: width }),
      },
    });
  } else {
    keyspace = keyspaceFromSpec(spec);
  }
  if (keyspace.identity !== meta.keyspace.identity) {
    throw new SchemaError(
      `the keyspace spec in the metadata rebuilds to identity ${keyspace.identity}, ` +
        `but the database stores ${meta.keyspace.identity} (written by another version?)`,
    );
  }
  return { keyspace, rawValues };
}

/** Opens the disk segment `record` names (as the kind it says), bytewise comparer; close it. */
export function openSegment(
  fs: FileSystem,
  dir: string,
  record: DiskSegmentRecord,
  cache = new BlockCache(0),
): DiskSegment {
  return openRecordedSegment(fs, dir, record, compareBytes, cache);
}

/** Describes an open disk segment. */
export function describeSegment(segment: DiskSegment): SegmentInfo {
  const parts: readonly SinglePartDiskSegment[] = segment instanceof MultipartDiskSegment
    ? segment.parts
    : [segment as SinglePartDiskSegment];
  return {
    id: segment instanceof MultipartDiskSegment ? segment.id : parts[0].id,
    kind: segment instanceof MultipartDiskSegment ? "multipart" : "single",
    recordCount: segment.recordCount,
    deleteCount: segment.deleteCount,
    sizeBytes: segment.sizeBytes,
    files: [...segment.files],
    parts: parts.map((p) => ({
      id: p.id,
      file: p.files[0],
      recordCount: p.recordCount,
      deleteCount: p.deleteCount,
      sizeBytes: p.sizeBytes,
      blockCount: p.footer.blockCount,
    })),
  };
}

/** Total bytes of the files with one of `roles`. */
export function bytesOf(files: readonly DirFile[], ...roles: FileRole[]): number {
  let n = 0;
  for (const f of files) if (roles.includes(f.role)) n += f.sizeBytes;
  return n;
}

/** Opens the tree in `dir` read-only with its stored keyspace (takes the lock while open). */
export function openStoredTree(dir: string, keyspace: AnyKeyspace): Promise<ZoneTree> {
  return ZoneTree.open({ dir, keyspace, mode: "open", readOnly: true, maintenance: "manual" });
}
