/**
 * The merge Worker's entry module (a `node:worker_threads` worker pooled by `worker_merge.ts`, or
 * a web Worker when the module is not a local file). It runs one merge per request, off the
 * caller's thread, so that the CPU work of a large merge (decoding the old segment, encoding and
 * compressing the new blocks, checksums) and the garbage it makes never stall the event loop.
 *
 * Protocol (see `worker_merge.ts`, the only sender): on start the worker posts `{ type: "ready" }`.
 * It then takes `WorkerMergeRequest`s, one at a time: the newer records as a transferred record
 * stream, the base disk segment by its metadata record (the worker opens its files read-only; the caller pins
 * them meanwhile), the tombstones, the write options, and a reserved block of segment ids. It
 * writes and syncs the new part files and the descriptor through the local file system and posts
 * `{ type: "done", result }` or `{ type: "error", ... }`. Publishing stays with the caller.
 *
 * @module
 */
import { BlockCache } from "../disk/block_cache.ts";
import { openRecordedSegment, partsOf } from "../disk/multipart.ts";
import { preloadedIndexOf } from "../disk/segment_reader.ts";
import { TombstoneSet } from "../iter/range_tombstones.ts";
import { compileComparer } from "../keyspace/compile_comparer.ts";
import { localFileSystem } from "../fs/local_file_system.ts";
import { RecordStreamCursor } from "./record_stream.ts";
import { MergingCursor } from "../iter/merging_cursor.ts";
import { KIND_RANGE_DELETE, type RecordCursor } from "../iter/record.ts";
import { MutableSegment } from "../memory/mutable_segment.ts";
import { replayWal } from "../wal/wal_reader.ts";
import { runMerge } from "./merger.ts";
import type { WorkerMergeReply, WorkerMergeRequest } from "./worker_merge.ts";
import { parentPort } from "node:worker_threads";

/**
 * Replies to the engine's thread: through `parentPort` in a `node:worker_threads` worker (the
 * pooled kind), else through the web Worker's global scope (the fallback for https modules).
 */
const port = parentPort;
const webScope = globalThis as unknown as {
  onmessage: ((ev: MessageEvent) => void) | null;
  postMessage(message: WorkerMergeReply): void;
};
function reply(message: WorkerMergeReply): void {
  if (port !== null) port.postMessage(message);
  else webScope.postMessage(message);
}

/** Thrown when a replayed WAL does not hold what its segment holds. */
class Mismatch extends Error {}

/**
 * The newer records as a cursor: the transferred stream, or the WALs replayed into in-memory
 * segments exactly as recovery does (range deletions are not records; the caller passes them).
 */
function newerCursor(req: WorkerMergeRequest, compare: (a: Uint8Array, b: Uint8Array) => number): RecordCursor {
  if ("chunks" in req.newer) return new RecordStreamCursor(req.newer.chunks, compare);
  const fs = localFileSystem();
  const cursors = req.newer.wals.map((w, i) => {
    const segment = new MutableSegment(i, compare);
    replayWal(fs, w.path, (opIndex, kind, key, value, expiresAt) => {
      if (kind !== KIND_RANGE_DELETE) segment.put(key, value, opIndex, kind, expiresAt);
    });
    if (segment.recordCount !== w.recordCount) {
      throw new Mismatch(`${w.path} replays to ${segment.recordCount} records, the segment holds ${w.recordCount}`);
    }
    return segment.cursor(false);
  });
  return cursors.length === 1 ? cursors[0] : new MergingCursor(cursors, false, compare);
}

/** Runs the merge one request describes. */
async function handle(req: WorkerMergeRequest): Promise<WorkerMergeReply> {
  const fs = localFileSystem();
  const compare = compileComparer(req.write.keyFixedWidth);
  let newer: RecordCursor;
  try {
    newer = newerCursor(req, compare);
  } catch (e) {
    if (e instanceof Mismatch) return { type: "mismatch", message: e.message };
    throw e;
  }
  // Scans bypass the block cache; a small one serves the few point reads a merge does.
  const base = req.base ? openRecordedSegment(fs, req.dir, req.base, compare, new BlockCache(1 << 20)) : undefined;
  let nextId = req.firstId;
  const lastId = req.firstId + req.idCount - 1;
  try {
    const result = await runMerge({
      fs,
      dir: req.dir,
      compare,
      newer,
      base,
      nothingBelow: req.nothingBelow,
      now: req.now,
      tombstones: req.tombstones.length === 0 ? TombstoneSet.EMPTY : new TombstoneSet(req.tombstones),
      touching: new TombstoneSet(req.touching),
      mode: req.mode,
      write: { ...req.write, compare },
      partMinItemCount: req.partMinItemCount,
      partMaxItemCount: req.partMaxItemCount,
      allocateId: () => {
        if (nextId > lastId) throw new Error(`merge worker ran out of reserved segment ids (${req.idCount})`);
        return nextId++;
      },
      // Nothing else runs on this thread: no need to yield.
      sliceMs: Number.MAX_SAFE_INTEGER,
    });
    // Read the footers and indexes of the segment's parts back (index checksums, structure)
    // and hand them over, so that the engine's thread opens it without decoding them again
    // (code that runs there once per merge, so cold: 13-25 ms for 8k blocks in Deno).
    if (result !== undefined) {
      const written = openRecordedSegment(fs, req.dir, result, compare, new BlockCache(0));
      try {
        result.preloaded = partsOf(written).map(preloadedIndexOf);
      } finally {
        written.close();
      }
    }
    return { type: "done", result: result ?? null };
  } finally {
    base?.close();
  }
}

function onRequest(request: WorkerMergeRequest): void {
  handle(request).then(reply, (e: unknown) => {
    const err = e instanceof Error ? e : new Error(String(e));
    const c = err as Error & { code?: string; file?: string; offset?: number };
    reply({
      type: "error",
      name: err.name,
      code: c.code,
      message: err.message,
      file: c.file,
      offset: c.offset,
      stack: err.stack,
    });
  });
}
if (port !== null) port.on("message", onRequest);
else webScope.onmessage = (ev: MessageEvent) => onRequest(ev.data as WorkerMergeRequest);
reply({ type: "ready" });
