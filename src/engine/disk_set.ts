/**
 * The disk layers of a tree (the disk segment slot and the bottom segment queue) and the
 * reference counts that keep their files alive.
 *
 * Invariants:
 * - A `DiskHandle` is referenced once by the current segment set while it is in it, and once by
 *   every open cursor or backup that pinned it. At zero it is closed.
 * - A file is referenced by every open handle that reads it (parts carried forward are read by
 *   the old and the new multipart segment). A file is deleted when its count drops to zero, so
 *   a merge never pulls a file out from under an open iterator.
 *
 * @module
 */
import { type FileSystem, joinPath } from "../fs/file_system.ts";
import type { DiskSegment } from "../disk/disk_segment.ts";
import type { DiskSegmentRecord } from "./metadata.ts";
import { dataFileName, multipartFileName } from "../disk/format.ts";
import { isSinglePart } from "../disk/multipart.ts";

export { openRecordedSegment } from "../disk/multipart.ts";

/** An open disk segment with its reference count. */
export class DiskHandle {
  readonly segment: DiskSegment;
  readonly record: DiskSegmentRecord;
  refs = 1;
  /** Set when the segment left the segment set: its files may go once nothing reads them. */
  retired = false;
  constructor(segment: DiskSegment, record: DiskSegmentRecord) {
    this.segment = segment;
    this.record = record;
  }
}

/** File names a disk segment record uses. */
export function filesOf(record: DiskSegmentRecord): string[] {
  if (isSinglePart(record)) return [dataFileName(record.id)];
  return [multipartFileName(record.id), ...record.parts.map(dataFileName)];
}

/** Reference-counted disk segment handles and their files. */
export class DiskSet {
  readonly #fs: FileSystem;
  readonly #dir: string;
  readonly #fileRefs = new Map<string, number>();
  /** Asynchronous removals still running. */
  readonly #removing = new Set<Promise<void>>();
  /** Called when a file could not be deleted (it stays an orphan until the next open). */
  onError: (e: unknown) => void = () => {};
  /** When true, unreferenced files are kept (read-only trees never delete). */
  readonly keepFiles: boolean;

  constructor(fs: FileSystem, dir: string, keepFiles: boolean) {
    this.#fs = fs;
    this.#dir = dir;
    this.keepFiles = keepFiles;
  }

  /** Wraps an opened segment in a handle (one reference, held by the caller). */
  adopt(segment: DiskSegment, record: DiskSegmentRecord): DiskHandle {
    for (const f of filesOf(record)) this.#fileRefs.set(f, (this.#fileRefs.get(f) ?? 0) + 1);
    return new DiskHandle(segment, record);
  }

  /** Adds a reference. */
  acquire(h: DiskHandle): void {
    h.refs++;
  }

  /** Marks `h` as out of the segment set and drops the set's reference. */
  retire(h: DiskHandle): void {
    h.retired = true;
    this.release(h);
  }

  /** Drops a reference; at zero closes the segment and, if retired, deletes files nobody else reads. */
  release(h: DiskHandle): void {
    if (--h.refs > 0) return;
    h.segment.close();
    for (const f of filesOf(h.record)) {
      const n = (this.#fileRefs.get(f) ?? 1) - 1;
      if (n > 0) {
        this.#fileRefs.set(f, n);
        continue;
      }
      this.#fileRefs.delete(f);
      // Closing a tree releases live segments too: only retired ones lose their files.
      if (this.keepFiles || !h.retired) continue;
      this.removeInBackground(joinPath(this.#dir, f));
    }
  }

  /**
   * Removes a file nothing reads any more, without blocking the event loop where the provider
   * can (unlinking a file of ~100 MB blocked it for 50-90 ms). A crash before the unlink leaves
   * an orphan, which the next open removes. Failures go to `onError`.
   */
  removeInBackground(path: string): void {
    try {
      if (!this.#fs.removeAsync) {
        this.#fs.remove(path);
        return;
      }
      const p: Promise<void> = this.#fs.removeAsync(path).catch((e) => this.onError(e)).finally(() => {
        this.#removing.delete(p);
      });
      this.#removing.add(p);
    } catch (e) {
      this.onError(e);
    }
  }

  /** Resolves when every file removal started so far has finished. */
  async settled(): Promise<void> {
    while (this.#removing.size > 0) await Promise.all([...this.#removing]);
  }

  /** Whether any open handle reads `file`. */
  isLive(file: string): boolean {
    return this.#fileRefs.has(file);
  }
}
