/**
 * Names of the files in a data directory (API.md §6: WAL files contain "wal", the metadata file
 * is "meta", the lock file "lock"; every other file holds segment data).
 *
 *   meta                 current metadata (atomically replaced)
 *   meta.tmp             a metadata replace in progress (removed on open)
 *   lock                 the process lock
 *   wal-<id>.log         write-ahead log of in-memory segment <id>
 *   wal-<id>.old         a merged WAL kept for the change feed (never replayed; see change_feed.ts)
 *   seg-<id>.*           disk segment (or part) <id> files
 *
 * Ids are decimal, zero-padded to 10 digits so that names sort in id order.
 *
 * @module
 */

/** The metadata file name. */
export const META_FILE = "meta";
/** The temporary file a metadata replace writes first. */
export const META_TMP_FILE = "meta.tmp";
/** The lock file name. */
export const LOCK_FILE = "lock";

/** Zero-padded decimal id. */
export function padId(id: number): string {
  return String(id).padStart(10, "0");
}

/** Name of the WAL file of in-memory segment `id`. */
export function walFileName(id: number): string {
  return `wal-${padId(id)}.log`;
}

/** The segment id of a WAL file name, or undefined if `name` is not one. */
export function parseWalFileName(name: string): number | undefined {
  const m = /^wal-(\d{10})\.log$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** Name of a merged WAL file kept for the change feed (`parseWalFileName` does not match it). */
export function retainedWalFileName(id: number): string {
  return `wal-${padId(id)}.old`;
}

/** The segment id of a retained WAL file name (`wal-<id>.old`), or undefined. */
export function parseRetainedWalFileName(name: string): number | undefined {
  const m = /^wal-(\d{10})\.old$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** The segment id of a segment data file name (`seg-<id>.<ext>`), or undefined. */
export function parseSegmentFileName(name: string): number | undefined {
  const m = /^seg-(\d{10})\.[a-z.]+$/.exec(name);
  return m ? Number(m[1]) : undefined;
}
