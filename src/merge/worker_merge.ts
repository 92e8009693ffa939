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
import { Worker as WorkerThread } from "node:worker_threads";

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
export const workerMergeCounts: { done: number; handedBack: number; started: number } = {
  done: 0,
  handedBack: 0,
  started: 0,
};

/**
 * The kind of Worker a merge runs in: `node:worker_threads` when this module is a local file (it
 * can be pooled and unref'd), else a web Worker (Deno's worker_threads only load `file:` and
 * `data:` modules, so a tree imported from JSR over https merges in a web Worker). Tests set it.
 */
export let mergeWorkerKind: "thread" | "web" | "none" =
  new URL(import.meta.url).protocol === "file:" && typeof WorkerThread === "function"
    ? "thread"
    : typeof (globalThis as { Worker?: unknown }).Worker === "function"
    ? "web"
    : "none";

/** Chooses the Worker kind (tests; "none" turns worker merges off). */
export function setMergeWorkerKind(kind: "thread" | "web" | "none"): void {
  mergeWorkerKind = kind;
  available = kind !== "none";
  terminateIdleMergeWorkers();
}

let available = mergeWorkerKind !== "none";

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

/** What a message from the worker may be, or how it failed. */
type Reply = WorkerMergeReply | { type: "failed"; message: string };

/** A started merge worker of either kind. */
interface MergeWorker {
  /** Kept between merges (thread workers) or terminated after each (web Workers). */
  readonly pooled: boolean;
  /** Calls `on` with the next message or failure; returns the function that stops listening. */
  listen(on: (reply: Reply) => void): () => void;
  post(request: WorkerMergeRequest, transfer: ArrayBuffer[]): void;
  /** Whether the worker keeps the process alive (thread workers only). */
  ref(held: boolean): void;
  terminate(): void;
}

const MODULE_URL = new URL("./merge_worker.ts", import.meta.url);

function threadWorker(): MergeWorker {
  const w = new WorkerThread(MODULE_URL);
  return {
    pooled: true,
    listen(on) {
      const onMessage = (m: WorkerMergeReply) => on(m);
      const onError = (e: unknown) =>
        on({ type: "failed", message: (e as Error)?.message ?? "the merge worker failed" });
      const onExit = (code: number) => on({ type: "failed", message: `the merge worker exited (code ${code})` });
      w.on("message", onMessage);
      w.on("error", onError);
      w.on("exit", onExit);
      return () => {
        w.off("message", onMessage);
        w.off("error", onError);
        w.off("exit", onExit);
      };
    },
    post: (request, transfer) => w.postMessage(request, transfer),
    ref: (held) => (held ? w.ref() : w.unref()),
    terminate: () => void w.terminate(),
  };
}

function webWorker(): MergeWorker {
  const w = new Worker(MODULE_URL.href, { type: "module" });
  return {
    pooled: false,
    listen(on) {
      w.onmessage = (ev: MessageEvent) => on(ev.data as WorkerMergeReply);
      w.onerror = (ev: Event) => {
        ev.preventDefault?.();
        on({ type: "failed", message: (ev as ErrorEvent).message ?? "the merge worker failed" });
      };
      return () => {
        w.onmessage = null;
        w.onerror = null;
      };
    },
    post: (request, transfer) => w.postMessage(request, transfer),
    ref: () => {},
    terminate: () => w.terminate(),
  };
}

/*
 * The worker pool. Starting a Worker costs the caller's thread little in Bun but 20-100 ms in
 * Deno, where the constructor waits for the new isolate: a Worker per merge was the longest stall
 * of a merge there. So thread workers are kept, process-wide, and reused by every tree; they can
 * be unref'd while idle (a Deno web Worker keeps the process alive until terminated, so a tree
 * that is never closed would hang its process). A worker is ref'd only while it runs a merge. At
 * most `POOL_MAX` idle workers are kept; a worker that failed (error, exit, a reply it should not
 * send) is terminated, never pooled again. Web Workers (the fallback) are started per merge.
 */
const POOL_MAX = 2;
const idle: MergeWorker[] = [];
let warming: Promise<MergeWorker | undefined> | undefined;

/** Starts a worker and waits for it to be ready; undefined (and no more tries) if it cannot start. */
async function startWorker(): Promise<MergeWorker | undefined> {
  if (!available) return undefined;
  let worker: MergeWorker;
  try {
    worker = mergeWorkerKind === "thread" ? threadWorker() : webWorker();
  } catch {
    available = false;
    return undefined;
  }
  workerMergeCounts.started++;
  const ready = await new Promise<boolean>((resolve) => {
    const stop = worker.listen((m) => {
      stop();
      resolve(m.type === "ready");
    });
  });
  if (!ready) {
    worker.terminate();
    available = false;
    return undefined;
  }
  worker.ref(false);
  return worker;
}

/**
 * Starts a pooled merge worker now, if none is idle or starting, so that the first large merge
 * does not pay for it. The engine calls this when a writable tree on local files opens.
 * In Deno this blocks the caller for the Worker constructor (tens of ms), once per process.
 * Web Workers are not pooled, so nothing is started for them.
 */
export function prewarmMergeWorker(): void {
  if (!available || mergeWorkerKind !== "thread" || idle.length > 0 || warming !== undefined) return;
  warming = startWorker().then((w) => {
    warming = undefined;
    if (w !== undefined) release(w);
    return w;
  });
}

/** An idle worker, the one warming up, or a new one. */
async function acquire(): Promise<MergeWorker | undefined> {
  const pooled = idle.pop();
  if (pooled !== undefined) return pooled;
  if (warming !== undefined) {
    await warming;
    const warmed = idle.pop();
    if (warmed !== undefined) return warmed;
  }
  return startWorker();
}

/** Back to the pool (unref'd), or terminated when it is not pooled or the pool is full. */
function release(worker: MergeWorker): void {
  worker.ref(false);
  if (worker.pooled && idle.length < POOL_MAX) idle.push(worker);
  else worker.terminate();
}

/** Terminates the idle workers (tests; a process that wants its threads gone). */
export function terminateIdleMergeWorkers(): void {
  for (const w of idle.splice(0)) w.terminate();
}

/** Sends one request to a ref'd worker and waits for its reply, or for it to fail. */
function exchange(worker: MergeWorker, request: WorkerMergeRequest, transfer: ArrayBuffer[]): Promise<Reply> {
  return new Promise((resolve) => {
    const stop = worker.listen((reply) => {
      stop();
      resolve(reply);
    });
    worker.post(request, transfer);
  });
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
 * Runs the merge in a pooled Worker. Returns `"unavailable"` (having written nothing) when no
 * Worker can be started or the replayed WALs do not hold what the segments hold; the caller then
 * merges in its own thread (`job.newer` is untouched unless records were packed).
 */
export async function runMergeInWorker(job: WorkerMergeJob): Promise<MergeResult | undefined | "unavailable"> {
  const worker = await acquire();
  if (worker === undefined) return "unavailable";
  let healthy = false;
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
    worker.ref(true);
    const reply = await exchange(worker, request, transfer);
    if (reply.type === "failed") throw new IOError(`merge worker: ${reply.message}`);
    healthy = reply.type === "done" || reply.type === "error" || reply.type === "mismatch";
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
    if (healthy) release(worker);
    else worker.terminate();
  }
}
