/**
 * A helper thread that takes two kinds of waiting off the writer's thread: the page faults of
 * fresh memory, and the `fdatasync` of a WAL that a writer who never yields would otherwise do
 * itself.
 *
 * **Fresh memory, touched ahead of use.** Every page of memory a process writes for the first
 * time costs a page fault, and in a virtual machine whose host backs guest memory lazily that
 * fault is expensive: ~12 us per 4 KiB page on the 2-core VM we measure on
 * (`bun bench/first_touch.ts`), so the arena and leaves of a million 100-byte records (~190 MB)
 * cost ~0.5 s of faults on the writer's thread alone. So the large buffers the in-memory
 * segments keep asking for (the run tree's 1 MiB arena chunks, the B+tree's leaf slabs, the
 * run tree's record pages; the B+tree's arena chunks too, shared, see below) come from
 * {@link freshPlainBuffer}: plain `ArrayBuffer`s
 * that the helper made, wrote to, and transferred here (moved, not copied: the helper's handle
 * is detached, so no interleaving is possible at all). The replies are read with
 * `receiveMessageOnPort`, without an event-loop turn. If the helper falls behind (or never
 * started) the writer gets a fresh buffer and faults its pages in itself, exactly as without
 * it; nothing waits for the helper. Measured (`bench/peers` child runs, alternating): the
 * writer's page faults in a random load 33k -> 7.5k, rand-insert +20-25%.
 *
 * Arena chunks were `SharedArrayBuffer`s that the helper touched in place (a locked
 * compare-exchange of 0 with 0 on each page, so it could never change a byte the writer had
 * written); creating and zero-filling each one on the writer's thread took ~5% of a sequential
 * load's profile (`SharedArrayBuffer` constructor, self time). As transferred plain buffers
 * (harness child runs, three alternating pairs): seq-insert 1.33-1.35M against 1.18-1.32M,
 * forward scans 1.86-2.02M against 1.78-1.87M. The helper keeps up with about three requests
 * in four during a sequential load (a 1M-record load: 269 handed out ready, 92 made fresh);
 * it is busy faulting pages in, not short of requests.
 *
 * The engine's B+tree arena chunks are shared again now, but made by the helper itself
 * ({@link freshSharedBuffer}: it creates and writes each one before anyone else has it, then
 * shares it; nothing is created or touched in place on the writer's thread), because the helper
 * has to read them: **relayouts** ({@link relayoutOnHelper}) copy the records of a read-only
 * segment written out of key order into new plain buffers in key order, off the reader's
 * thread (see `BPlusTree.startRelayout`), or of several read-only segments together, merged by
 * key, listing the newest record of each for a combined run that range queries read in their
 * place (see `TreeEngine`'s `#combineStep`). Shared arenas alone measured no slower (harness
 * rand-insert children, ten alternating triples: medians 380k plain, 360k shared, within the
 * runs' spread; scans within noise in `bench/scan_layers.ts`).
 *
 * **WAL syncs.** {@link syncOnHelper} runs `fdatasync` on a second helper (a sync can take
 * milliseconds; behind one, the first helper's buffers came late) and reports through a
 * shared cell that the caller can poll or wait on (`Atomics.wait`) without an event-loop turn;
 * the local file handle builds its `startSync` on it (`local_file_system.ts`). In Bun a file
 * descriptor is the process's and valid on every thread, so the helper syncs the caller's own
 * descriptor. In Deno each isolate has its own resource table (the caller's descriptor is EBADF
 * there), so the helper opens the file by path once ({@link openOnHelper}), checks that it is
 * the same file (device and inode), and syncs its own descriptor: `fdatasync` flushes the file,
 * whichever descriptor wrote it. In Deno the buffer helper starts the sync helper, as soon as
 * it runs itself (see {@link startSyncHelperThere}): a Worker's constructor there blocks the
 * thread that calls it for 60-90 ms (Bun: 1-10 ms), and a second such pause would land in the
 * middle of a load. The sync helper then takes a while to come up on a busy machine (~0.6 s
 * into a million-record load on 2 cores); until it has opened a log, that log's syncs stay on
 * the writer's thread. Measured under Deno, 3 alternating runs against the syncs all on the
 * writer's thread: `bench/batch_load.ts` (a million 100-byte records, batches of 1,000) 1.18-1.23M
 * records/s against 1.09-1.19M; `bench/deno_kv.ts --child zonetree` (200,000 records after a
 * warm-up) seq-insert 1.01-1.44M against 0.92-1.17M, ts-ingest 1.15-1.66M against 1.02-1.21M.
 *
 * Each helper is a `node:worker_threads` Worker running a few lines of evaluated JavaScript (no
 * module to load or type-check), started at its first request and `unref`'d, so it never keeps
 * a process alive. In Deno the first one's constructor blocks for 60-90 ms, once per process
 * (the second is started by the first). Where no Worker
 * or `SharedArrayBuffer` is available, or the Worker fails, buffers are fresh and syncs stay on
 * the caller's thread, for the rest of the process.
 *
 * The collector does not count buffers transferred in when it sizes its next collection, so
 * memory held in them makes it collect more often (BUN_JSC_logGC=1, a random load and two scans:
 * 37-42 collections of the main heap with fresh slabs, 56-57 with transferred ones). In harness
 * child runs alternating with fresh slabs, the scans were not slower (3 pairs); leaf slabs in
 * *shared* buffers had made them up to 35% slower (not pinned down further).
 *
 * Used by `bplus_tree.ts` (buffers, relayouts), `run_tree.ts` (buffers) and
 * `local_file_system.ts` (syncs).
 *
 * @module
 */
import {
  MessageChannel,
  type MessagePort,
  receiveMessageOnPort,
  Worker as WorkerThread,
} from "node:worker_threads";

/**
 * Plain buffers asked for ahead, per size (measured: 2, 4 and 8 hand out the same share
 * pre-touched; when the helper falls behind, it is behind on work, not on requests).
 */
const PLAIN_SPARES = 3;
/** Sizes below this are plain `ArrayBuffer`s (small trees never start the helper). */
export const POOLED_MIN_BYTES = 64 * 1024;
/**
 * Distinct sizes pooled at once (the arenas' 1 MiB chunks, the B+tree's leaf slabs three, a run
 * tree's pages one, with room to spare); a new size replaces the one asked for least recently.
 */
export const SIZES_MAX = 6;

/** Sync cell states (`Int32Array` slot 0); slot 1 holds the errno of a failed sync. */
export const SYNC_PENDING = 0;
/** See {@link SYNC_PENDING}. */
export const SYNC_DONE = 1;
/** See {@link SYNC_PENDING}. */
export const SYNC_FAILED = 2;

const WORKER_SOURCE = `
const { parentPort, workerData, Worker } = require("node:worker_threads");
const fs = require("node:fs");
// Plain buffers: made and written here, then transferred (moved, not copied) to the caller.
const plainPort = workerData?.plain;
// A request n > 0 asks for a plain buffer of n bytes (transferred), n < 0 for a shared one of
// -n bytes (shared: this thread lets go of it once posted).
plainPort?.on("message", (n) => {
  try {
    const buffer = n > 0 ? new ArrayBuffer(n) : new SharedArrayBuffer(-n);
    const bytes = new Uint8Array(buffer);
    for (let i = 0; i < bytes.length; i += 4096) bytes[i] = 0;
    if (n > 0) plainPort.postMessage(buffer, [buffer]);
    else plainPort.postMessage(buffer);
  } catch {
    plainPort.postMessage(n); // no memory here: the caller allocates its own
  }
});
// Lays the records of one or more frozen B+trees (job.trees, newest first) out again in new
// plain buffers of at most job.chunkSize bytes, in key order: each record's key when it is in the
// arena, then its value, merged over the trees in memcmp order of the keys (of equal keys the
// first tree's record wins; the others' are copied right after it). A tree is given as copies of
// its leaves' arrays in key order: loc (6 Int32 a record: key chunk (-1: inline), key offset,
// key length, value chunk, value offset, value length * 4 + kind), num ([opIndex, expiresAt])
// and pfx (job.stride words a record: the key's first bytes as big-endian words, zero-padded,
// then its length). Posts on job.port the buffers, each tree's loc with the new places, and with
// job.run the newest record of each key (key bytes and ends, value places [buffer, offset,
// length], num, kinds); then sets job.cell to 1 (2 if it failed).
function relayout(job) {
  const cell = new Int32Array(job.cell);
  try {
    const stride = job.stride;
    const words = stride - 1;
    const inlineBytes = 4 * words;
    const trees = job.trees.map((t) => ({
      src: t.chunks.map((c) => new Uint8Array(c)),
      loc: new Int32Array(t.loc),
      num: new Float64Array(t.num),
      pfx: new Uint32Array(t.pfx),
      n: t.n,
      r: 0,
    }));
    let total = 0;
    let keyBytes = 0;
    let left = 0;
    for (const t of trees) {
      total += t.n;
      const loc = t.loc;
      for (let b = 0; b < 6 * t.n; b += 6) {
        keyBytes += loc[b + 2];
        left += (loc[b] === -1 ? 0 : loc[b + 2]) + (loc[b + 5] >>> 2);
      }
    }
    const run = job.run;
    const runKeys = new Uint8Array(run ? keyBytes : 0);
    const runKeyEnds = new Int32Array(run ? total : 0);
    const runValues = new Int32Array(run ? 3 * total : 0);
    const runNum = new Float64Array(run ? 2 * total : 0);
    const runKinds = new Uint8Array(run ? total : 0);
    const buffers = [];
    let out = new Uint8Array(0);
    let used = 0;
    // Copies len bytes of chunk c at offset from, of tree t; its new place goes to t.loc[b], [b + 1].
    const copy = (t, c, from, len, b) => {
      if (buffers.length === 0 || used + len > out.length) {
        out = new Uint8Array(Math.max(len, Math.min(job.chunkSize, left)));
        buffers.push(out.buffer);
        used = 0;
      }
      const bytes = t.src[c];
      if (len > 64) out.set(bytes.subarray(from, from + len), used);
      else for (let i = 0; i < len; i++) out[used + i] = bytes[from + i];
      t.loc[b] = buffers.length - 1;
      t.loc[b + 1] = used;
      used += len;
      left -= len;
    };
    // memcmp order of the current keys of trees a and b: their inline words, then their lengths,
    // then (both longer than the inline bytes) the rest of their bytes in the arena.
    const compare = (a, b) => {
      const pa = a.r * stride;
      const pb = b.r * stride;
      for (let w = 0; w < words; w++) {
        const x = a.pfx[pa + w];
        const y = b.pfx[pb + w];
        if (x !== y) return x < y ? -1 : 1;
      }
      const la = a.pfx[pa + words];
      const lb = b.pfx[pb + words];
      if (la > inlineBytes && lb > inlineBytes) {
        const ka = a.src[a.loc[6 * a.r]];
        const oa = a.loc[6 * a.r + 1];
        const kb = b.src[b.loc[6 * b.r]];
        const ob = b.loc[6 * b.r + 1];
        const n = la < lb ? la : lb;
        for (let i = inlineBytes; i < n; i++) {
          const d = ka[oa + i] - kb[ob + i];
          if (d !== 0) return d;
        }
      }
      return la - lb;
    };
    const equal = new Uint8Array(trees.length);
    let m = 0;
    let k = 0;
    for (;;) {
      let w = -1;
      for (let i = 0; i < trees.length; i++) {
        const t = trees[i];
        if (t.r < t.n && (w < 0 || compare(t, trees[w]) < 0)) w = i;
      }
      if (w < 0) break;
      const win = trees[w];
      for (let i = 0; i < trees.length; i++) {
        const t = trees[i];
        equal[i] = i === w || (i > w && t.r < t.n && compare(t, win) === 0) ? 1 : 0;
      }
      if (run) {
        // The winner's key bytes, before its key's place changes.
        const b = 6 * win.r;
        const len = win.loc[b + 2];
        if (win.loc[b] === -1) {
          const p = win.r * stride;
          for (let i = 0; i < len; i++) runKeys[k + i] = (win.pfx[p + (i >>> 2)] >>> (24 - 8 * (i & 3))) & 255;
        } else {
          const bytes = win.src[win.loc[b]];
          const off = win.loc[b + 1];
          for (let i = 0; i < len; i++) runKeys[k + i] = bytes[off + i];
        }
        k += len;
        runKeyEnds[m] = k;
      }
      for (let i = 0; i < trees.length; i++) {
        if (equal[i] === 0) continue;
        const t = trees[i];
        const b = 6 * t.r;
        const loc = t.loc;
        if (loc[b] !== -1) copy(t, loc[b], loc[b + 1], loc[b + 2], b);
        copy(t, loc[b + 3], loc[b + 4], loc[b + 5] >>> 2, b + 3);
        if (run && i === w) {
          runValues[3 * m] = loc[b + 3];
          runValues[3 * m + 1] = loc[b + 4];
          runValues[3 * m + 2] = loc[b + 5] >>> 2;
          runNum[2 * m] = t.num[2 * t.r];
          runNum[2 * m + 1] = t.num[2 * t.r + 1];
          runKinds[m] = loc[b + 5] & 3;
        }
        t.r++;
      }
      m++;
    }
    const locs = trees.map((t) => t.loc.buffer);
    const result = run
      ? {
        count: m,
        keys: runKeys.buffer,
        keyEnds: runKeyEnds.buffer,
        values: runValues.buffer,
        num: runNum.buffer,
        kinds: runKinds.buffer,
      }
      : undefined;
    const transfer = [...buffers, ...locs];
    if (result) transfer.push(result.keys, result.keyEnds, result.values, result.num, result.kinds);
    job.port.postMessage({ buffers, locs, run: result }, transfer);
    Atomics.store(cell, 0, 1);
  } catch {
    Atomics.store(cell, 0, 2);
  }
  // This thread's handles of the shared chunks keep their memory alive until its collector
  // frees them, and this thread allocates little: collect where the runtime lets us (Bun), in a
  // later turn, once no frame of this job holds them any more.
  job.trees = null;
  if (typeof Bun !== "undefined") setTimeout(() => Bun.gc(true), 0);
}
function onMessage(m) {
  try {
    handle(m);
  } catch {
    // Never die: a caller may be waiting on a sync cell (it gives up after a while, see
    // local_file_system.ts), and buffers are only an optimisation.
  }
}
parentPort.on("message", onMessage);
// A sync helper started by the buffer helper (see startSyncHelperThere) takes its jobs here.
workerData?.sync?.on("message", onMessage);
// Files opened here by path (a runtime whose descriptors are per thread), by the caller's id.
const opened = new Map();
// Runs job() and answers through the caller's cell: done, or failed with the errno (job may
// also return the failed state itself).
function answer(cellBuffer, job) {
  const cell = new Int32Array(cellBuffer);
  let state = ${SYNC_DONE};
  try {
    state = job() ?? state;
  } catch (e) {
    state = ${SYNC_FAILED};
    Atomics.store(cell, 1, typeof e?.errno === "number" ? e.errno : -1);
  }
  Atomics.store(cell, 0, state);
  Atomics.notify(cell, 0);
}
function handle(m) {
  if (m?.relayout !== undefined) {
    relayout(m.relayout);
    return;
  }
  if (m?.spawnSync !== undefined) {
    // Start the sync helper here, so that its start does not hold up the caller's thread.
    const w = new Worker(m.source, {
      eval: true,
      workerData: { sync: m.spawnSync },
      transferList: [m.spawnSync],
    });
    w.unref();
    return;
  }
  if (m?.open !== undefined) {
    answer(m.cell, () => {
      const fd = fs.openSync(m.path, "r+");
      const st = fs.fstatSync(fd, { bigint: true });
      if (st.dev === m.dev && st.ino === m.ino) opened.set(m.open, fd);
      else {
        // Another file now has this path (renamed over it): never sync it in this one's stead.
        fs.closeSync(fd);
        return ${SYNC_FAILED};
      }
    });
    return;
  }
  if (m?.close !== undefined) {
    const fd = opened.get(m.close);
    opened.delete(m.close);
    if (fd !== undefined) fs.closeSync(fd);
    return;
  }
  if (m?.sync !== undefined) {
    answer(m.cell, () => {
      // A file opened here (by the caller's id), or the caller's own descriptor.
      const fd = m.opened ? opened.get(m.sync) : m.sync;
      if (fd === undefined) throw Object.assign(new Error("not opened"), { errno: -9 });
      fs.fdatasyncSync(fd);
    });
    return;
  }
  // Busy work for tests (touchForTest): a locked read-modify-write per page of a shared buffer.
  const bytes = new Uint8Array(m);
  for (let i = 0; i < bytes.length; i += 4096) Atomics.compareExchange(bytes, i, 0, 0);
}
`;

interface Helper {
  post(message: unknown, transfer?: (MessagePort | ArrayBuffer)[]): void;
  /** The buffer helper's channel for plain buffers; undefined for the sync helper. */
  plain: PlainChannel | undefined;
}

interface PlainChannel {
  /** Where plain buffers come back (read with `receiveMessageOnPort`, no event-loop turn). */
  port: MessagePort;
  /** Plain buffers asked for and not yet received, by size. */
  requested: Map<number, number>;
}

/** undefined: not started yet; null: unavailable for the rest of the process. */
let helper: Helper | null | undefined;
/**
 * The second helper, for syncs only (same states): an `fdatasync` can take milliseconds, and
 * behind one the first helper's buffers would come late.
 */
let syncHelper: Helper | null | undefined;
/**
 * Pre-touched buffers received from the helper and not handed out yet, by size: plain by their
 * size, shared by minus their size.
 */
const plainReady = new Map<number, ArrayBufferLike[]>();
let warming = true;
/** Deno's `build.os` ("linux", "darwin", "windows", ...); undefined outside Deno. */
const DENO_OS = (globalThis as { Deno?: { build?: { os?: string } } }).Deno?.build?.os;
/**
 * Whether the helper syncs the caller's descriptor (Bun, Node: descriptors are the process's) or
 * a file it opened by path (Deno: descriptors are per isolate); see the module comment. Not on
 * Windows, where a second handle of a log could keep it from being deleted or renamed: there
 * Deno's syncs stay on the caller's thread.
 */
let syncByPath = typeof (globalThis as { Bun?: unknown }).Bun === "undefined" &&
  DENO_OS !== undefined && DENO_OS !== "windows";
/**
 * Whether WAL syncs go to a helper: in Bun (the caller's descriptor) and in Deno off Windows (by
 * path), the runtimes the tests run; elsewhere (Node through the bundle) they stay on the caller.
 */
let syncing = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined" || syncByPath;
/** Ids of files opened on the helper (see {@link openOnHelper}). */
let nextOpenId = 1;
/** Plain buffers handed out pre-touched, and fresh for want of one (stats, tests). */
let plainHits = 0;
let plainMisses = 0;
/** Syncs posted to the helper (stats, tests). */
let syncsStarted = 0;
/** Whether {@link relayoutOnHelper} posts relayouts (tests and A/B runs turn it off). */
let relayouts = true;
/** Relayouts posted to the helper (of one tree or several), and taken back done (stats, tests). */
let relayoutsStarted = 0;
let relayoutsDone = 0;

function startHelper(forSyncs: boolean): Helper | null {
  if (typeof SharedArrayBuffer !== "function" || typeof WorkerThread !== "function") return null;
  try {
    if (forSyncs) {
      const w = new WorkerThread(WORKER_SOURCE, { eval: true });
      w.on("error", () => (syncHelper = null));
      w.unref();
      return { post: (m) => w.postMessage(m), plain: undefined };
    }
    const { port1, port2 } = new MessageChannel();
    const w = new WorkerThread(WORKER_SOURCE, {
      eval: true,
      workerData: { plain: port2 },
      transferList: [port2],
    });
    w.on("error", () => {
      helper = null;
      plainReady.clear();
    });
    w.unref(); // after the listeners: in Bun, adding one refs the Worker again
    return {
      post: (m, transfer) => w.postMessage(m, transfer),
      plain: { port: port1, requested: new Map() },
    };
  } catch {
    return null;
  }
}

function theHelper(): Helper | null {
  if (helper === undefined) {
    helper = startHelper(false);
    // Where syncs go by path, the buffer helper starts the sync helper now (see
    // startSyncHelperThere): by the WAL's first 1 MiB write, it is likely running.
    if (helper !== null && syncing && syncByPath) theSyncHelper();
  }
  return helper;
}

function theSyncHelper(): Helper | null {
  if (syncHelper === undefined) syncHelper = syncByPath ? startSyncHelperThere() : startHelper(true);
  return syncHelper;
}

/**
 * Where syncs go by path (Deno): the sync helper, started by the buffer helper. Starting a
 * Worker costs the thread that creates it 60-90 ms under Deno (Bun: 1-10 ms), a pause a load
 * would take in the middle of its writes; there the buffer helper pays it instead. Jobs posted
 * before the sync helper runs wait on its port; a file it has not opened yet is synced by the
 * caller meanwhile (see `local_file_system.ts`), so nothing waits for the start.
 */
function startSyncHelperThere(): Helper | null {
  const h = theHelper();
  if (h === null) return null;
  try {
    const { port1, port2 } = new MessageChannel();
    h.post({ spawnSync: port2, source: WORKER_SOURCE }, [port2]);
    (port1 as { unref?: () => void }).unref?.();
    return { post: (m) => port1.postMessage(m), plain: undefined };
  } catch {
    return null;
  }
}

/**
 * A zero-filled plain `ArrayBuffer` of `byteLength` bytes whose pages the helper has already
 * written, when one is ready; else a fresh one (the caller faults its pages in as it writes
 * them). The helper makes the buffer and transfers it here: it is this thread's alone (the
 * helper's handle is detached), an ordinary buffer to every view of it, though the collector
 * leaves it out of its budget (see the module comment). For the in-memory segments' leaf slabs
 * and the run tree's pages (a million 100-byte records: ~80 MB of slabs).
 * Sizes below {@link POOLED_MIN_BYTES} are always fresh.
 */
export function freshPlainBuffer(byteLength: number): ArrayBuffer {
  return (pooledBuffer(byteLength) as ArrayBuffer | undefined) ?? new ArrayBuffer(byteLength);
}

/**
 * A zero-filled `SharedArrayBuffer` of `byteLength` bytes for memory that the helper may have
 * to read later ({@link relayoutOnHelper}): pre-touched by the helper when one is ready (sizes
 * of at least {@link POOLED_MIN_BYTES}), else fresh. Where no helper can run (or shared memory
 * is missing) a plain `ArrayBuffer`: nothing would read it elsewhere anyway. For the engine's
 * B+tree arena chunks (a million 100-byte records: ~110 MB of them).
 */
export function freshSharedBuffer(byteLength: number): ArrayBufferLike {
  if (typeof SharedArrayBuffer !== "function" || theHelper() === null) return freshPlainBuffer(byteLength);
  return (pooledBuffer(-byteLength) as SharedArrayBuffer | undefined) ?? new SharedArrayBuffer(byteLength);
}

/**
 * A buffer from the helper's pool: plain of `size` bytes for `size` > 0, shared of `-size` for
 * `size` < 0; undefined when none is ready (it asks for more either way).
 */
function pooledBuffer(size: number): ArrayBufferLike | undefined {
  if (Math.abs(size) < POOLED_MIN_BYTES || !warming || helper === null) return undefined;
  const plain = theHelper()?.plain;
  if (plain === undefined) return undefined;
  const { port, requested } = plain;
  let out: ArrayBufferLike | undefined;
  try {
    // Take in whatever arrived: replies come in request order, a buffer or (when the helper
    // could not allocate one) the size it was asked for.
    for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
      const reply = m.message as ArrayBufferLike | number;
      const n = typeof reply === "number"
        ? reply
        : reply instanceof ArrayBuffer
        ? reply.byteLength
        : -reply.byteLength;
      requested.set(n, (requested.get(n) ?? 1) - 1);
      if (typeof reply !== "number") plainReady.get(n)?.push(reply);
    }
    let ready = plainReady.get(size);
    // Kept in the order of the last request (a Map iterates in insertion order): a new size
    // replaces the one asked for least recently, so the sizes in use now stay pooled.
    if (ready !== undefined) plainReady.delete(size);
    else {
      if (plainReady.size >= SIZES_MAX) plainReady.delete(plainReady.keys().next().value!);
      ready = [];
    }
    plainReady.set(size, ready);
    out = ready.shift();
    if (out !== undefined) plainHits++;
    else plainMisses++;
    let asked = requested.get(size) ?? 0;
    for (; ready.length + asked < PLAIN_SPARES; asked++) port.postMessage(size);
    requested.set(size, asked);
  } catch {
    helper = null;
    plainReady.clear();
  }
  return out;
}

/** A relayout running on the helper ({@link relayoutOnHelper}). */
export interface RelayoutTicket {
  /** 0 while it runs, 1 once its reply is posted, 2 if it failed. */
  readonly cell: Int32Array;
  /** Where the reply comes (read with `receiveMessageOnPort`). */
  readonly port: MessagePort;
}

/**
 * One frozen B+tree's records for {@link relayoutOnHelper}, in key order: copies of its leaves'
 * `loc` (6 Int32 a record), `num` (2 Float64) and `pfx` (`stride` Uint32) arrays, and its arena
 * chunks (shared: read in place, so they must not change until the relayout is done).
 */
export interface RelayoutInput {
  chunks: ArrayBufferLike[];
  loc: Int32Array;
  num: Float64Array;
  pfx: Uint32Array;
  /** Words a record in `pfx`: the inline key words, then the key's length. */
  stride: number;
  /** Bytes the records will take in the new buffers (their keys in the arena and values). */
  bytes: number;
}

/**
 * The newest record of each key over the trees of a relayout, in key order: the key of record
 * `i` is `keys[keyEnds[i - 1] .. keyEnds[i])` (from 0 for the first), its value is at
 * `values[3i .. 3i + 3)` = [buffer, offset, length] in the relayout's buffers, its
 * [opIndex, expiresAt] at `num[2i ..]`, its kind at `kinds[i]`.
 */
export interface CombinedRecords {
  count: number;
  keys: Uint8Array;
  keyEnds: Int32Array;
  values: Int32Array;
  num: Float64Array;
  kinds: Uint8Array;
}

/**
 * What a relayout made: the new buffers; each tree's `loc` with its records' new places (key
 * and value chunk and offset; same order and length as given); the combined records when asked.
 */
export interface RelayoutResult {
  buffers: ArrayBuffer[];
  locs: Int32Array[];
  run: CombinedRecords | undefined;
}

/** Whether {@link relayoutOnHelper} can run here now (a helper runs and relayouts are on). */
export function relayoutsAvailable(): boolean {
  return relayouts && typeof SharedArrayBuffer === "function" && theHelper() !== null;
}

/**
 * Asks the helper to lay the records of `trees` (frozen B+trees, newest first, all of one
 * `stride`) out again, off this thread, in the memcmp order of their keys:
 * each record's key (when in the arena) and value copied into new plain buffers of at most
 * `chunkSize` bytes (a longer one gets one of its own), merged over the trees (of equal keys the
 * first tree's record comes first); with `run`, also the newest record of each key
 * ({@link CombinedRecords}). {@link takeRelayout} picks the result up without an event-loop
 * turn. The inputs' typed arrays are transferred (detached here). Undefined where no helper runs
 * or relayouts are off: the caller keeps its layout.
 */
export function relayoutOnHelper(
  trees: RelayoutInput[],
  chunkSize: number,
  run: boolean,
): RelayoutTicket | undefined {
  if (!relayoutsAvailable()) return undefined;
  const stride = trees[0].stride;
  if (trees.some((t) => t.stride !== stride)) return undefined;
  const h = theHelper()!;
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const { port1, port2 } = new MessageChannel();
  const transfer: (MessagePort | ArrayBuffer)[] = [port2];
  const posted = trees.map((t) => {
    const tree = {
      chunks: t.chunks,
      loc: t.loc.buffer as ArrayBuffer,
      num: t.num.buffer as ArrayBuffer,
      pfx: t.pfx.buffer as ArrayBuffer,
      n: t.loc.length / 6,
    };
    transfer.push(tree.loc, tree.num, tree.pfx);
    return tree;
  });
  try {
    h.post({ relayout: { trees: posted, stride, chunkSize, run, port: port2, cell: cell.buffer } }, transfer);
  } catch {
    port1.close();
    return undefined;
  }
  (port1 as { unref?: () => void }).unref?.();
  relayoutsStarted++;
  return { cell, port: port1 };
}

/**
 * The result of a relayout: undefined while it runs (or its reply is not here yet), null if it
 * failed (the ticket is then spent), else what it made (the ticket is spent).
 */
export function takeRelayout(ticket: RelayoutTicket): RelayoutResult | null | undefined {
  const state = Atomics.load(ticket.cell, 0);
  if (state === 0) return undefined;
  let result: RelayoutResult | null = null;
  if (state === 1) {
    const reply = receiveMessageOnPort(ticket.port)?.message as
      | {
        buffers: ArrayBuffer[];
        locs: ArrayBuffer[];
        run?: { count: number; keys: ArrayBuffer; keyEnds: ArrayBuffer; values: ArrayBuffer; num: ArrayBuffer; kinds: ArrayBuffer };
      }
      | undefined;
    if (reply === undefined) return undefined;
    const r = reply.run;
    result = {
      buffers: reply.buffers,
      locs: reply.locs.map((l) => new Int32Array(l)),
      run: r === undefined ? undefined : {
        count: r.count,
        keys: new Uint8Array(r.keys),
        keyEnds: new Int32Array(r.keyEnds),
        values: new Int32Array(r.values),
        num: new Float64Array(r.num),
        kinds: new Uint8Array(r.kinds),
      },
    };
    relayoutsDone++;
  }
  ticket.port.close();
  return result;
}

/**
 * Starts `fdatasync` on the helper and returns its cell (see {@link SYNC_PENDING}), or undefined
 * where syncs cannot run there (no helper, turned off): then sync here. `target`: the caller's
 * descriptor where the helper can use it ({@link helperSyncsByPath} false), or with `opened` the
 * id of a file {@link openOnHelper} opened there (once its cell said so).
 */
export function syncOnHelper(target: number, opened = false): Int32Array | undefined {
  if (!syncing) return undefined;
  const h = theSyncHelper();
  if (h === null) return undefined;
  const cell = new Int32Array(new SharedArrayBuffer(8));
  try {
    h.post({ sync: target, opened, cell: cell.buffer });
  } catch {
    return undefined;
  }
  syncsStarted++;
  return cell;
}

/**
 * Where the helper syncs files it opened by path ({@link helperSyncsByPath}): opens `path` there,
 * read-write, and keeps it only if it is the file of device `dev` and inode `ino` (the caller's,
 * from `fstat`). Returns the id to sync and close it by, and a cell that turns
 * {@link SYNC_DONE} once it is open there or {@link SYNC_FAILED} if it could not be (or is
 * another file now); undefined when no helper runs. Nothing is opened for a zero inode (no
 * identity to check).
 */
export function openOnHelper(
  path: string,
  dev: bigint,
  ino: bigint,
): { id: number; cell: Int32Array } | undefined {
  if (!syncing || !syncByPath || ino === 0n) return undefined;
  const h = theSyncHelper();
  if (h === null) return undefined;
  const id = nextOpenId++;
  const cell = new Int32Array(new SharedArrayBuffer(8));
  try {
    h.post({ open: id, path, dev, ino, cell: cell.buffer });
  } catch {
    return undefined;
  }
  return { id, cell };
}

/** Closes the helper's descriptor of a file {@link openOnHelper} opened (after syncs posted before). */
export function closeOnHelper(id: number): void {
  try {
    syncHelper?.post({ close: id });
  } catch {
    // No helper any more: its descriptors went with it.
  }
}

/**
 * Turns pre-touched buffers (`warm`), helper syncs (`sync`) or relayouts (`relayout`) off or
 * back on for the rest of the process; for tests and A/B measurements. Turning buffers off drops the ready ones.
 */
export function setHelperThread(
  options: { warm?: boolean; sync?: boolean; syncByPath?: boolean; relayout?: boolean },
): void {
  if (options.relayout !== undefined) relayouts = options.relayout;
  if (options.warm !== undefined) {
    warming = options.warm;
    if (!warming) plainReady.clear();
  }
  if (options.sync !== undefined) syncing = options.sync;
  if (options.syncByPath !== undefined) syncByPath = options.syncByPath;
}

/**
 * Whether the helper syncs files it opened by path (Deno) rather than the caller's descriptors
 * (Bun); see the module comment.
 */
export function helperSyncsByPath(): boolean {
  return syncByPath;
}

/**
 * Buffers ready now and handed out (ready or fresh), syncs posted to the helper, relayouts
 * posted and taken back done.
 */
export function helperStats(): {
  pooled: number;
  syncsStarted: number;
  running: boolean;
  plainHits: number;
  plainMisses: number;
  relayoutsStarted: number;
  relayoutsDone: number;
} {
  let pooled = 0;
  for (const s of plainReady.values()) pooled += s.length;
  return {
    pooled,
    syncsStarted,
    running: helper !== undefined && helper !== null,
    plainHits,
    plainMisses,
    relayoutsStarted,
    relayoutsDone,
  };
}

/**
 * Posts a shared buffer to the sync helper, which touches every page of it: busy work for tests
 * (a sync helper kept busy must not hang a writer).
 */
export function touchForTest(buffer: SharedArrayBuffer): boolean {
  const h = theSyncHelper();
  if (h === null) return false;
  h.post(buffer);
  return true;
}
