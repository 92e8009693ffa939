/**
 * Fresh memory for the in-memory segments, touched ahead of use by a helper thread.
 *
 * Every page of memory a process writes for the first time costs a page fault, and in a virtual
 * machine whose host backs guest memory lazily that fault is expensive: ~12 us per 4 KiB page on
 * the 2-core VM we measure on (`bun bench/first_touch.ts`), so the arena and leaves of a million
 * 100-byte records (~190 MB) cost ~0.5 s of faults on the writer's thread alone. Reused memory
 * costs nothing of the kind.
 *
 * So the large buffers the B+tree keeps asking for (1 MiB arena chunks, leaf slabs) come from a
 * small pool of `SharedArrayBuffer`s that a helper thread has already written to: for each size
 * it keeps {@link SPARES} ready, and each one handed out is replaced by a new one posted to the
 * helper. The writer then finds its pages mapped. If the helper falls behind (or never started)
 * the writer faults the pages in itself, exactly as without it; nothing waits for the helper.
 *
 * Safety: the helper only ever executes `Atomics.compareExchange(page[0], 0, 0)` on the first
 * byte of each page: a locked read-modify-write, so the page is mapped for writing, that stores
 * 0 only where 0 already is. A buffer is zero until handed out, and if the writer has already
 * written a byte the helper's exchange fails and leaves it alone, so the helper can never change
 * what the writer sees, whatever the interleaving.
 *
 * The helper is a `node:worker_threads` Worker running a few lines of evaluated JavaScript (no
 * module to load or type-check), started at the first request for a pooled size and `unref`'d,
 * so it never keeps a process alive. In Deno its constructor blocks for ~100 ms, once per
 * process. Where no Worker or `SharedArrayBuffer` is available, or the Worker fails, buffers are
 * plain `ArrayBuffer`s for the rest of the process.
 *
 * Views of these buffers never reach callers: values handed out are copies, and a custom value
 * codec is given a copy when the stored bytes are shared (see `value_codec.ts`,
 * `plainBytes`). Used by `bplus_tree.ts`.
 *
 * @module
 */
import { Worker as WorkerThread } from "node:worker_threads";

/** Spare buffers kept ready per size. */
export const SPARES = 2;
/** Sizes below this are plain `ArrayBuffer`s (small trees never start the helper). */
export const POOLED_MIN_BYTES = 64 * 1024;
/** Distinct sizes pooled at once (a tree asks for two: arena chunks and leaf slabs). */
const SIZES_MAX = 4;

const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
parentPort.on("message", (buffer) => {
  const bytes = new Uint8Array(buffer);
  for (let i = 0; i < bytes.length; i += 4096) Atomics.compareExchange(bytes, i, 0, 0);
  parentPort.postMessage(bytes.length);
});
`;

interface Helper {
  post(buffer: SharedArrayBuffer): void;
}

/** undefined: not started yet; null: unavailable for the rest of the process. */
let helper: Helper | null | undefined;
const pool = new Map<number, SharedArrayBuffer[]>();
let disabled = false;
/** Buffers the helper has finished touching (as reported back; for tests and stats). */
let touched = 0;
let touchedWaiters: (() => void)[] = [];

function startHelper(): Helper | null {
  if (typeof SharedArrayBuffer !== "function" || typeof WorkerThread !== "function") return null;
  try {
    const w = new WorkerThread(WORKER_SOURCE, { eval: true });
    w.on("message", () => {
      touched++;
      const waiters = touchedWaiters;
      touchedWaiters = [];
      for (const f of waiters) f();
    });
    w.on("error", () => {
      helper = null;
      pool.clear();
    });
    w.unref(); // after the listeners: in Bun, adding one refs the Worker again
    return { post: (b) => w.postMessage(b) };
  } catch {
    return null;
  }
}

/**
 * A zero-filled buffer of `byteLength` bytes for long-lived engine memory. Sizes of at least
 * {@link POOLED_MIN_BYTES} come from the pool of pre-touched `SharedArrayBuffer`s (see the
 * module comment); smaller ones, and every size when the helper is unavailable, are fresh
 * `ArrayBuffer`s.
 */
export function freshBuffer(byteLength: number): ArrayBuffer | SharedArrayBuffer {
  if (byteLength < POOLED_MIN_BYTES || disabled || helper === null) return new ArrayBuffer(byteLength);
  let spares = pool.get(byteLength);
  if (spares === undefined) {
    if (pool.size >= SIZES_MAX) return new ArrayBuffer(byteLength);
    if (helper === undefined) helper = startHelper();
    if (helper === null) return new ArrayBuffer(byteLength);
    spares = [];
    pool.set(byteLength, spares);
  }
  const out = spares.shift() ?? new SharedArrayBuffer(byteLength);
  const h = helper;
  if (h !== null && h !== undefined) {
    try {
      while (spares.length < SPARES) {
        const spare = new SharedArrayBuffer(byteLength);
        h.post(spare);
        spares.push(spare);
      }
    } catch {
      helper = null;
      pool.clear();
    }
  }
  return out;
}

/**
 * Turns pooling off (`true`) or back on for the rest of the process, and empties the pool; for
 * tests and measurements (`ZT_NO_WARM=1` in the benches).
 */
export function setPageWarming(enabled: boolean): void {
  disabled = !enabled;
  pool.clear();
}

/** How many buffers the helper has reported touched, and how many are pooled now. */
export function pageWarmerStats(): { touched: number; pooled: number; running: boolean } {
  let pooled = 0;
  for (const s of pool.values()) pooled += s.length;
  return { touched, pooled, running: helper !== undefined && helper !== null };
}

/** Resolves once the helper has reported at least `n` buffers touched in all. */
export function whenTouched(n: number): Promise<void> {
  if (touched >= n) return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => (touched >= n ? resolve() : touchedWaiters.push(check));
    touchedWaiters.push(check);
  });
}

/** Posts a buffer to the helper directly (tests: the helper must never change written bytes). */
export function touchForTest(buffer: SharedArrayBuffer): boolean {
  if (helper === undefined) helper = startHelper();
  if (helper === null) return false;
  helper.post(buffer);
  return true;
}
