/**
 * The one small interface every engine of the peer benchmark sits behind (issue 6), and the
 * disk-usage helper they share. A driver owns one open store at a time. Keys and values are raw
 * bytes; keys compare as memcmp in every engine. Methods may be synchronous or return a promise:
 * the runner awaits only when a promise comes back, so synchronous engines pay no microtask.
 */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

export type Bytes = Uint8Array;
export type MaybePromise<T> = T | Promise<T>;

export interface OpenOptions {
  /** true: every write call returns only after its data is synced to disk (fsync/fdatasync). */
  durable: boolean;
  /** Every key has this many bytes (the counter workloads); undefined: keys vary in length. */
  keyWidth?: number;
  /**
   * The layout the key bytes follow, when they have one: `"sensor:<str>:ts:<u64be>"` for the
   * time-series workloads (data.ts `tsKey`). A driver may store such keys in its own encoding of
   * that layout (see `prepareBatch` and `prepareRange`).
   */
  layout?: "sensor:<str>:ts:<u64be>";
}

export interface RangeOptions {
  gte?: Bytes;
  lt?: Bytes;
  reverse?: boolean;
  limit?: number;
}

export interface Driver {
  readonly name: string;
  readonly version: string;
  /** One line per mode: what durable and non-durable writes do in this engine. */
  readonly modes: { durable: string; nonDurable: string };
  open(dir: string, opts: OpenOptions): MaybePromise<void>;
  /**
   * Turns a batch into the form this engine's users hand it over (typed keys instead of the
   * harness bytes), before any timer starts. Its result is passed to `putBatch` as `prepared`.
   * Only engines with their own key layouts need it (ZoneTree: typed keys it encodes itself, so
   * the timed call still pays the key encoding a user pays).
   */
  prepareBatch?(entries: [Bytes, Bytes][]): unknown;
  /** Writes the entries as one atomic batch (one transaction / write batch). */
  putBatch(entries: [Bytes, Bytes][], prepared?: unknown): MaybePromise<void>;
  put(key: Bytes, value: Bytes): MaybePromise<void>;
  /** Waits for writes that `put` queued without waiting (engines with asynchronous commits). */
  settle?(): Promise<void>;
  get(key: Bytes): MaybePromise<Bytes | undefined>;
  /**
   * Turns range bounds into the form this engine's users pass them (typed keys instead of the
   * harness bytes), before any timer starts, as `prepareBatch` does for batches. Its result is
   * passed to `range` as `prepared`; the timed call still pays the engine's own bound encoding.
   */
  prepareRange?(opts: RangeOptions): unknown;
  /** Visits entries with gte <= key < lt in key order (or reverse), at most `limit`. */
  range(
    opts: RangeOptions,
    visit: (key: Bytes, value: Bytes) => void,
    prepared?: unknown,
  ): MaybePromise<void>;
  /** Full compaction/merge before disk bytes are measured, where the engine has one. */
  compact?(): Promise<void>;
  close(): MaybePromise<void>;
}

/** Bytes the files under `dir` occupy: allocated blocks, capped at the apparent size (sparse). */
export function diskBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += diskBytes(path);
    else if (entry.isFile()) {
      const st = statSync(path);
      total += Math.min(st.size, st.blocks * 512);
    }
  }
  return total;
}

/** Adapts a Node-style callback API to a promise. */
export function promisify<T>(
  start: (cb: (err: unknown, value?: T) => void) => void,
): Promise<T> {
  return new Promise((resolve, reject) => {
    start((err, value) => (err ? reject(err) : resolve(value as T)));
  });
}

/** A copy of `opts` without undefined members (some engines treat a present key as a bound). */
export function definedOnly<T extends object>(opts: T): Partial<T> {
  const out: Partial<T> = {};
  for (const k in opts) if (opts[k] !== undefined) out[k] = opts[k];
  return out;
}
