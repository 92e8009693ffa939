/**
 * Runs a merge in a Worker (`merge_worker.ts`), so that a large merge never stalls the caller's
 * event loop: the caller's thread only packs the newer records into a record stream (in short
 * slices) and later publishes the result. Used by the engine for merges of read-only segments
 * when the tree is on local files; merges over other providers (memory, fault-injecting) and
 * small merges run in the caller's thread (`runMerge`), where starting a Worker would cost more
 * than it saves.
 *
 * If a Worker cannot be started at all (no `Worker` global, the module cannot be loaded, code
 * generation or file access denied to it), `workerMergeAvailable()` turns false for the rest of
 * the process and callers fall back to `runMerge`; nothing is written by a worker that never
 * became ready.
 *
 * @module
 */
import { CorruptionError, IOError } from "../api/errors.ts";
import type { DiskSegmentWriteOptions } from "../disk/disk_segment.ts";
import type { SegmentParts } from "../disk/multipart.ts";
import type { RangeTombstone } from "../iter/range_tombstones.ts";
import type { RecordCursor } from "../iter/record.ts";
import { type MergeResult, nextTurn } from "./merger.ts";
import { type RecordChunk, RecordStreamWriter } from "./record_stream.ts";

/** The disk segment to merge into, as the metadata records it. */
export interface SegmentRef extends SegmentParts {
  recordCount: number;
}

/** What the worker needs for one merge (structured-cloned; the chunks are transferred). */
export interface WorkerMergeRequest {
  dir: string;
  /**
   * The newer records: packed by the caller (`chunks`), or the WALs of the merged in-memory
   * segments, newest first, each with the record count its segment holds (the worker replays
   * them and checks the counts; a difference makes it answer "mismatch" and write nothing).
   */
  newer: { chunks: RecordChunk[] } | { wals: WalSource[] };
  base: SegmentRef | undefined;
  nothingBelow: boolean;
  now: number;
  tombstones: RangeTombstone[];
  touching: RangeTombstone[];
  mode: "multipart" | "single";
  write: Omit<DiskSegmentWriteOptions, "compare">;
  partMinItemCount: number;
  partMaxItemCount: number;
  /** The worker names new files with ids `firstId .. firstId + idCount - 1`. */
  firstId: number;
  idCount: number;
}

/** A merged segment's WAL. */
export interface WalSource {
  path: string;
  recordCount: number;
}

/** What the worker posts back. */
export type WorkerMergeReply =
  | { type: "ready" }
  | { type: "mismatch"; message: string }
  | { type: "done"; result: MergeResult | null }
  | {
    type: "error";
    name: string;
    code: string | undefined;
    message: string;
    file: string | undefined;
    offset: number | undefined;
    stack: string | undefined;
  };

/** A merge for the worker: the request minus the newer records, plus a cursor over them. */
export interface WorkerMergeJob extends Omit<WorkerMergeRequest, "newer" | "firstId" | "idCount"> {
  /** Forward cursor over the newer records, ascending (read on the caller's thread). */
  newer: RecordCursor;
  /** When every merged segment has a complete WAL: those WALs, newest first (nothing is packed). */
  wals: WalSource[] | undefined;
  /** Reserves `count` consecutive segment ids and returns the first. */
  reserveIds: (count: number) => number;
  /** Longest stretch of packing between yields to the event loop. */
  sliceMs: number;
}

/** Merges this process ran in a Worker, and merges a Worker handed back (counted for tests). */
export const workerMergeCounts: { done: number; handedBack: number } = { done: 0, handedBack: 0 };

let available = typeof (globalThis as { Worker?: unknown }).Worker === "function";

/** False once a Worker failed to start in this process (or the runtime has none). */
export function workerMergeAvailable(): boolean {
  return available;
}

/** Rebuilds the worker's error as the engine's error type, with the worker's message. */
function errorFromWorker(r: Extract<WorkerMergeReply, { type: "error" }>): Error {
  if (r.name === "CorruptionError" && r.file !== undefined && r.offset !== undefined) {
    const prefix = `corruption in ${r.file} at offset ${r.offset}: `;
    const what = r.message.startsWith(prefix) ? r.message.slice(prefix.length) : r.message;
    return new CorruptionError(r.file, r.offset, what);
  }
  const e = new IOError(`merge worker: ${r.message}`);
  if (r.stack) e.cause = r.stack;
  return e;
}

/** Starts a worker and waits for it to be ready; undefined (and no more tries) if it cannot start. */
async function startWorker(): Promise<Worker | undefined> {
  if (!available) return undefined;
  let worker: Worker;
  try {
    worker = new Worker(new URL("./merge_worker.ts", import.meta.url).href, { type: "module" });
  } catch {
    available = false;
    return undefined;
  }
  const ready = await new Promise<boolean>((resolve) => {
    worker.onmessage = (ev: MessageEvent) => resolve((ev.data as WorkerMergeReply).type === "ready");
    worker.onerror = (ev: Event) => {
      ev.preventDefault?.();
      resolve(false);
    };
  });
  if (!ready) {
    worker.terminate();
    available = false;
    return undefined;
  }
  return worker;
}

/** Packs the records of `newer` into a record stream, yielding to the event loop between slices. */
async function pack(newer: RecordCursor, sliceMs: number): Promise<RecordStreamWriter> {
  const stream = new RecordStreamWriter();
  let sliceStart = performance.now();
  let n = 0;
  for (newer.seek(undefined); newer.valid; newer.next()) {
    stream.add(newer);
    if ((++n & 1023) === 0 && performance.now() - sliceStart > sliceMs) {
      await nextTurn();
      sliceStart = performance.now();
    }
  }
  return stream;
}

/** Upper bound on the files a merge can create: every part at the minimum size, plus slack. */
function idsNeeded(job: WorkerMergeJob, newerCount: number): number {
  if (job.mode === "single") return 1;
  const baseRecords = job.base?.recordCount ?? 0;
  const baseParts = job.base?.parts.length ?? 0;
  return Math.ceil((newerCount + baseRecords) / Math.max(1, job.partMinItemCount)) + baseParts + 2;
}

/**
 * Runs the merge in a fresh Worker. Returns `"unavailable"` (having written nothing) when no
 * Worker can be started or the replayed WALs do not hold what the segments hold; the caller then
 * merges in its own thread (`job.newer` is untouched unless records were packed).
 */
export async function runMergeInWorker(job: WorkerMergeJob): Promise<MergeResult | undefined | "unavailable"> {
  const worker = await startWorker();
  if (worker === undefined) return "unavailable";
  try {
    let newer: WorkerMergeRequest["newer"];
    let transfer: ArrayBuffer[] = [];
    let newerCount: number;
    if (job.wals !== undefined) {
      newer = { wals: job.wals };
      newerCount = job.wals.reduce((n, w) => n + w.recordCount, 0);
    } else {
      const stream = await pack(job.newer, job.sliceMs);
      newer = { chunks: stream.chunks };
      transfer = stream.chunks.map((c) => c.buffer);
      newerCount = stream.recordCount;
    }
    const idCount = idsNeeded(job, newerCount);
    const request: WorkerMergeRequest = {
      dir: job.dir,
      newer,
      base: job.base,
      nothingBelow: job.nothingBelow,
      now: job.now,
      tombstones: job.tombstones,
      touching: job.touching,
      mode: job.mode,
      write: job.write,
      partMinItemCount: job.partMinItemCount,
      partMaxItemCount: job.partMaxItemCount,
      firstId: job.reserveIds(idCount),
      idCount,
    };
    const reply = await new Promise<WorkerMergeReply>((resolve) => {
      worker.onmessage = (ev: MessageEvent) => resolve(ev.data as WorkerMergeReply);
      worker.onerror = (ev: Event) => {
        ev.preventDefault?.();
        const message = (ev as ErrorEvent).message ?? "the merge worker failed";
        resolve({
          type: "error",
          name: "Error",
          code: undefined,
          message,
          file: undefined,
          offset: undefined,
          stack: undefined,
        });
      };
      worker.postMessage(request, transfer);
    });
    if (reply.type === "done") {
      workerMergeCounts.done++;
      return reply.result ?? undefined;
    }
    if (reply.type === "error") throw errorFromWorker(reply);
    if (reply.type === "mismatch") {
      workerMergeCounts.handedBack++;
      return "unavailable";
    }
    throw new IOError(`merge worker: unexpected reply ${reply.type}`);
  } finally {
    worker.terminate();
  }
}
