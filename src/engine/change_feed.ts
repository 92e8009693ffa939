/**
 * The change feed: every write with an opIndex above a given one, in opIndex order, read back from
 * the WAL files. It owns the retention rule for merged WALs and the reader; the engine owns the
 * file set (`TreeEngine.changeFeedView`) and calls {@link planRetention} when a merge publishes.
 *
 * Where the writes are:
 *
 *   changeFeedFloor │ retained wal-<id>.old … │ read-only wal-<id>.log … │ mutable wal-<id>.log
 *   (dropped ≤ here)│ (merged, kept by bytes) │ (waiting for a merge)    │ (being appended)
 *
 * A merge used to delete the WALs it persisted; now it renames them `wal-<id>.log` → `wal-<id>.old`
 * after publishing metadata that lists them (`changeFeedFiles`), and deletes the oldest ones once
 * their total size passes `changeFeedRetentionBytes`, raising `changeFeedFloor` to the highest
 * opIndex they held. Recovery replays only `.log` files newer than `persistedSegmentId`, so a
 * retained file is never replayed; a listed `.log` (a crash between the publish and the rename)
 * is renamed on open, an unlisted `.old` (a crash between a publish and its delete) removed.
 *
 * Invariants:
 * - WAL ids grow with time and a WAL holds only ops newer than every op of a lower id, so reading
 *   the files in id order yields opIndexes in increasing order (asserted).
 * - Every opIndex above the floor is in one of the listed files: files are dropped oldest first,
 *   and a merged segment that had no WAL (wal "none") raises the floor to its last opIndex.
 *
 * @module
 */
import { ChangeFeedGapError, CorruptionError, InvalidOptionError } from "../api/errors.ts";
import { type FileSystem, joinPath } from "../fs/file_system.ts";
import { replayWal } from "../wal/wal_reader.ts";
import { assert } from "../util/assert.ts";
import { retainedWalFileName, walFileName } from "./file_names.ts";
import type { RetainedWal } from "./metadata.ts";

/** One write as the WAL holds it (kind 0 put, 1 delete, 2 range delete: key = start, value = end). */
export interface RawChange {
  opIndex: number;
  kind: number;
  key: Uint8Array;
  value: Uint8Array;
  expiresAt: number;
}

/** A WAL file the feed reads: retained (`.old`) or live (`.log`). */
export interface ChangeFeedFile {
  id: number;
  /** Every op in the file is <= this; Infinity for the mutable segment's WAL. */
  lastOpIndex: number;
}

/** What the engine holds now: the floor and the files above it, oldest first. */
export interface ChangeFeedView {
  floor: number;
  files: ChangeFeedFile[];
}

/** What the feed needs from the engine. */
export interface ChangeFeedSource {
  readonly fs: FileSystem;
  readonly dir: string;
  readonly options: { readonly wal: string; readonly readOnly: boolean };
  readonly lastOpIndex: number;
  flush(): Promise<void>;
  /** Synchronous: no merge can run between reading the view and reading a file. */
  changeFeedView(): ChangeFeedView;
}

/** Result of {@link planRetention}. */
export interface RetentionPlan {
  /** Files to keep, oldest first. */
  files: RetainedWal[];
  /** Files to delete (from `files` or `added`). */
  dropped: RetainedWal[];
  floor: number;
}

/**
 * Which merged WALs to keep: the newest files whose sizes sum to at most `limitBytes`, as one
 * suffix (a gap in the middle would hide writes above the floor), minus any file whose writes
 * are all at or below `floor`. The new floor is the highest opIndex of a dropped file.
 * Pure; called by the engine inside a metadata publish, and on open.
 */
export function planRetention(
  files: readonly RetainedWal[],
  added: readonly RetainedWal[],
  floor: number,
  limitBytes: number,
): RetentionPlan {
  const all = [...files, ...added].sort((a, b) => a.id - b.id);
  // A file's writes are all at or below the highest lastOpIndex up to it: a file with no write
  // may carry a lower lastOpIndex than older ones, and must not cut the kept suffix there.
  const upTo: number[] = [];
  for (let i = 0, max = 0; i < all.length; i++) upTo.push(max = Math.max(max, all[i].lastOpIndex));
  let keepFrom = all.length;
  let total = 0;
  for (let i = all.length - 1; i >= 0; i--) {
    if (upTo[i] <= floor || total + all[i].bytes > limitBytes) break;
    total += all[i].bytes;
    keepFrom = i;
  }
  const dropped = all.slice(0, keepFrom);
  if (keepFrom > 0) floor = Math.max(floor, upTo[keepFrom - 1]);
  return { files: all.slice(keepFrom), dropped, floor };
}

/** The path of WAL `id` now: `.log` while live or before a pending rename, else `.old`. */
export function changeFeedFilePath(fs: FileSystem, dir: string, id: number): string | undefined {
  for (const name of [walFileName(id), retainedWalFileName(id)]) {
    const path = joinPath(dir, name);
    if (fs.stat(path)) return path;
  }
  return undefined;
}

/**
 * Yields every write with `since < opIndex <= lastOpIndex at the call`, in opIndex order, after
 * a flush (so the files hold all of them). Reads one WAL file at a time, whole (bounded by
 * mutableSegmentMaxBytes, plus the size of a retained file), and looks at the file set again
 * before each file, so merges, renames and retention may run while the consumer awaits.
 * Throws `ChangeFeedGapError` when writes the consumer still needs were dropped meanwhile (or
 * before), `InvalidOptionError` with wal "none".
 */
export async function* readChanges(
  source: ChangeFeedSource,
  since: number,
): AsyncGenerator<RawChange> {
  if (source.options.wal === "none") {
    throw new InvalidOptionError(
      "wal",
      `option "wal": the change feed needs a write-ahead log, and wal is "none"`,
    );
  }
  if (typeof since !== "number" || !Number.isSafeInteger(since) || since < 0) {
    throw new InvalidOptionError(
      "sinceOpIndex",
      `changes(sinceOpIndex): ${String(since)} is not a non-negative integer`,
    );
  }
  const upTo = source.lastOpIndex; // taken before the flush: every write up to it is then in a file
  if (!source.options.readOnly) await source.flush();
  let cursor = since;
  let lastFileId = 0;
  while (cursor < upTo) {
    const view = source.changeFeedView();
    if (cursor < view.floor) throw gap(since, cursor, view.floor);
    const file = view.files.find((f) => f.id > lastFileId && f.lastOpIndex > cursor);
    if (!file) return;
    const path = changeFeedFilePath(source.fs, source.dir, file.id);
    // The mutable segment's WAL may still be being created (async-compressed creates it off the
    // event loop when the segment moves forward). The flush above waited for the WAL that was
    // live then, so a newer one holds only writes after `upTo`: nothing more to read.
    if (!path && file.lastOpIndex === Infinity) return;
    if (!path) {
      throw new ChangeFeedGapError(
        since,
        view.floor,
        `change feed: WAL ${file.id} of ${source.dir} is missing`,
      );
    }
    const ops: RawChange[] = [];
    const from = cursor;
    const replayed = replayWal(source.fs, path, (opIndex, kind, key, value, expiresAt) => {
      if (opIndex > from && opIndex <= upTo) ops.push({ opIndex, kind, key, value, expiresAt });
    });
    // A kept file was closed and synced before it was merged (recovery cuts torn tails), so a
    // torn tail here is damage: reading on would silently skip writes the tree holds.
    if (replayed.tornTail && path.endsWith(".old")) {
      throw new CorruptionError(
        path,
        replayed.tornTail.offset,
        `change feed: the kept WAL ends in a damaged frame (${replayed.tornTail.reason})`,
      );
    }
    lastFileId = file.id;
    for (const op of ops) {
      assert(op.opIndex > cursor, "change feed: opIndexes go up across WAL files");
      cursor = op.opIndex;
      yield op;
    }
  }
}

function gap(since: number, cursor: number, floor: number): ChangeFeedGapError {
  const where = cursor === since
    ? `after opIndex ${since}`
    : `after opIndex ${cursor} (asked from ${since})`;
  return new ChangeFeedGapError(
    since,
    floor,
    `change feed: writes ${where} are no longer retained (floor ${floor}); ` +
      "resync from a full copy, or raise changeFeedRetentionBytes",
  );
}
