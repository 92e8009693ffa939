/**
 * The workloads of issue 6, run for one engine in one process (a child of run.ts), in a fixed
 * order, each on a fresh directory that is removed afterwards. Every timed region holds engine
 * calls only: data is generated and cut into batches before the timer starts, and a full GC runs
 * just before it. Results are throughput (ops/s), except reopen (ms), disk and RSS (MB), and the
 * write amplification of ts-ingest (x): bytes the process wrote (`/proc/self/io` `wchar`, so
 * Linux only) from the first batch to the close after a full compaction, over the key + value
 * bytes ingested; the ts-query reads in between are left out.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Prng } from "../../src/util/prng.ts";
import * as data from "./data.ts";
import type { Bytes, Entry } from "./data.ts";
import { diskBytes, type Driver, type RangeOptions } from "./drivers/driver.ts";

export const WORKLOADS = [
  "seq-insert",
  "seq-insert-single",
  "rand-insert",
  "rand-get",
  "scan",
  "ts-ingest",
  "ts-query",
  "reopen",
  "reopened-reads",
  "disk",
  "rss",
] as const;
export type Mode = "non-durable" | "durable";
export type Unit = "ops/s" | "ms" | "MB" | "x";

export interface Result {
  workload: string; // group name from WORKLOADS
  metric: string; // row label, e.g. "rand-get present"
  mode: Mode;
  count: number; // operations (records, reads, queries) timed, or records stored
  value: number;
  unit: Unit;
}

/**
 * When the warm-ups run. `each`: the time-series warm-up runs right before each time-series
 * workload (the counter warm-up at the start, right before the counter workloads). `once`: both
 * at the start of the child, as before 2026-12-07; under Bun, JavaScriptCore then drops the
 * warm-up's compiled code of the time-series read path (code older than 15 s baseline, 20 s
 * DFG, 60 s FTL that is not running is discarded at a collection, and `Bun.gc(true)` runs
 * before each timer) before ts-query, 20-35 s later, so the timed pass compiles it again.
 */
export type WarmUp = "each" | "once";

export interface Plan {
  workloads: Set<string>;
  modes: Set<Mode>;
  scale: number;
  warmUp: WarmUp;
}

const SEED = 0x5eed;
const BATCH = 1000;
const MB = 1024 * 1024;

/** Peak RSS, sampled at batch boundaries and every 8,192 operations. */
let peakRss = 0;
function sampleRss(): void {
  const rss = process.memoryUsage().rss;
  if (rss > peakRss) peakRss = rss;
}

/** Milliseconds that `fn` takes, after a full GC. */
async function time(fn: () => Promise<unknown>): Promise<number> {
  Bun.gc(true);
  sampleRss();
  const start = performance.now();
  await fn();
  const ms = performance.now() - start;
  sampleRss();
  return ms;
}

async function putBatches(d: Driver, all: Entry[][], prepared?: unknown[]): Promise<void> {
  for (let i = 0; i < all.length; i++) {
    const r = d.putBatch(all[i], prepared?.[i]);
    if (r) await r;
    sampleRss();
  }
  if (d.settle) await d.settle();
}

async function putSingles(d: Driver, keys: Bytes[], values: Bytes[], n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const r = d.put(keys[i], values[i]);
    if (r) await r;
    if (i % 8192 === 0) sampleRss();
  }
  if (d.settle) await d.settle();
}

async function getAll(d: Driver, keys: Bytes[], present: boolean): Promise<void> {
  for (let i = 0; i < keys.length; i++) {
    let v = d.get(keys[i]);
    if (v instanceof Promise) v = await v;
    if ((v !== undefined) !== present) throw new Error(`${d.name}: get #${i}: wrong presence`);
    if (i % 8192 === 0) sampleRss();
  }
}

/**
 * The entries of a range: their count and the first and last key (an order spot check).
 * `prepared`: the driver's `prepareRange(opts)`, made before the timer.
 */
async function rangeScan(d: Driver, opts: RangeOptions, prepared?: unknown) {
  let count = 0;
  let first: Bytes | undefined;
  let last: Bytes | undefined;
  const r = d.range(opts, (k) => {
    if (count++ === 0) first = k;
    last = k;
  }, prepared);
  if (r) await r;
  return { count, first, last };
}

function sameBytes(a: Bytes | undefined, b: Bytes): boolean {
  return a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}

/** `wchar` of /proc/self/io: bytes this process passed to write-like calls; undefined off Linux. */
function bytesWritten(): number | undefined {
  try {
    return Number(/^wchar: (\d+)$/m.exec(readFileSync("/proc/self/io", "utf8"))![1]);
  } catch {
    return undefined;
  }
}

const TS_LAYOUT = "sensor:<str>:ts:<u64be>" as const;

/**
 * Opens a fresh store, runs `body`, closes the store (unless `body` returns "closed") and removes
 * its directory. `keyWidth` undefined: the time-series keys.
 */
async function withStore(
  d: Driver,
  mode: Mode,
  keyWidth: number | undefined,
  body: (dir: string) => Promise<void | "closed">,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `zt-peers-${d.name.replace(/\W/g, "")}-`));
  try {
    const layout = keyWidth === undefined ? TS_LAYOUT : undefined;
    await d.open(dir, { durable: mode === "durable", keyWidth, layout });
    if ((await body(dir)) !== "closed") await d.close();
  } finally {
    rmSync(dir, { recursive: true, force: true }); // on error the child exits right after
  }
}

/** Runs every planned workload against `d` and returns the results of this run. */
export async function runAll(
  d: Driver,
  plan: Plan,
  log: (line: string) => void,
): Promise<Result[]> {
  const results: Result[] = [];
  const want = (w: string) => plan.workloads.has(w);
  const record = (
    workload: string,
    metric: string,
    mode: Mode,
    count: number,
    value: number,
    unit: Unit,
  ) => {
    results.push({ workload, metric, mode, count, value, unit });
    log(`${mode.padEnd(11)} ${metric.padEnd(20)} n=${count} ${Math.round(value)} ${unit}`);
  };
  const rate = (workload: string, metric: string, mode: Mode, count: number, ms: number) =>
    record(workload, metric, mode, count, (count * 1000) / ms, "ops/s");
  const load = (all: Entry[][]) => {
    const prepared = d.prepareBatch ? all.map((b) => d.prepareBatch!(b)) : undefined;
    return time(() => putBatches(d, all, prepared));
  };

  const n = Math.max(1000, Math.round(1_000_000 * plan.scale));
  const { keys, values } = data.counterData(n, 100, SEED);
  const order = data.permutation(n, new Prng(SEED + 1));
  const sensors = Math.max(10, Math.round(1000 * plan.scale));
  // Batches are cut right before each timed load and dropped after it.
  const seqBatches = () => data.batches(keys, values, BATCH);
  const randBatches = () => data.batches(keys, values, BATCH, order);
  const tsBatches = () => data.tsData(sensors, 1000, SEED + 2);
  const dataRss = process.memoryUsage().rss;
  log(
    `data ready: ${n} counter keys, ${sensors}x1000 readings, rss ${(dataRss / MB).toFixed(0)} MB`,
  );
  await warmCounters(d, keys, values);
  if (plan.warmUp === "once") await warmTimeSeries(d);

  for (const mode of ["non-durable", "durable"] as const) {
    if (!plan.modes.has(mode)) continue;
    const nd = mode === "non-durable";
    if (want("seq-insert")) {
      await withStore(d, mode, 16, async () => {
        rate("seq-insert", "seq-insert", mode, n, await load(seqBatches()));
      });
    }
    if (want("seq-insert-single")) {
      // Durable single-record inserts sync once per record: 10,000 of them (scaled) suffice.
      const count = nd ? n : Math.max(100, Math.round(10_000 * plan.scale));
      await withStore(d, mode, 16, async () => {
        const ms = await time(() => putSingles(d, keys, values, count));
        rate("seq-insert-single", "seq-insert-single", mode, count, ms);
      });
    }
    const reads = nd && ["rand-get", "scan", "disk", "reopen", "reopened-reads"].some(want);
    if (want("rand-insert") || reads) {
      await withStore(d, mode, 16, async (dir) => {
        rate("rand-insert", "rand-insert", mode, n, await load(randBatches()));
        if (reads) await readWorkloads(d, dir, n, want, rate, record);
      });
    }
    if (want("ts-ingest") || (nd && want("ts-query"))) {
      if (plan.warmUp === "each") await warmTimeSeries(d);
      await withStore(d, mode, undefined, async () => {
        const all = tsBatches();
        const userBytes = all.reduce(
          (n, b) => n + b.reduce((m, [k, v]) => m + k.length + v.length, 0),
          0,
        );
        const before = bytesWritten();
        const ms = await load(all);
        const afterLoad = bytesWritten();
        rate("ts-ingest", "ts-ingest", mode, sensors * 1000, ms);
        if (nd && want("ts-query")) await tsQueries(d, sensors, plan.scale, rate);
        if (!want("ts-ingest") || before === undefined) return;
        // Write amplification: the ingest, then a full compaction and close (every rewrite
        // counted, whatever is still only in memory or a log written out), queries left out.
        const afterQueries = bytesWritten()!;
        if (d.compact) await d.compact();
        await d.close();
        const written = afterLoad! - before + bytesWritten()! - afterQueries;
        record("ts-ingest", "ts-ingest write amp", mode, sensors * 1000, written / userBytes, "x");
        return "closed";
      });
    }
  }
  if (want("rss")) {
    record("rss", "RSS of the data alone", "non-durable", n, dataRss / MB, "MB");
    record("rss", "peak RSS", "non-durable", n, peakRssBytes() / MB, "MB");
  }
  return results;
}

/**
 * Runs every counter-key operation on a small throwaway store, so the first timed workload is
 * not the JIT's.
 */
async function warmCounters(d: Driver, keys: Bytes[], values: Bytes[]): Promise<void> {
  const half = Math.min(keys.length, 20_000) / 2;
  await withStore(d, "non-durable", 16, async () => {
    await putBatches(d, data.batches(keys.slice(0, half), values.slice(0, half), BATCH));
    await putSingles(d, keys.slice(half), values.slice(half), half);
    await getAll(d, keys.slice(0, 2 * half), true);
    await rangeScan(d, {});
    await rangeScan(d, { reverse: true, limit: 100 });
  });
}

/**
 * Rounds of the time-series warm-up's queries: 50 sensors each, one query of each kind per
 * sensor, so 1,500 of each kind. With 4 rounds (200 of each kind, before 2026-12-07) an engine
 * whose read path is JavaScript still compiled its per-query functions inside the timed passes:
 * under `BUN_JSC_reportCompileTimes=1` our latest-100 pass held the DFG compiles of `openCursor`,
 * `MergingCursor`, `seek`, `resolveBounds`, the key decoder's field scan and others (up to 15 ms
 * each on the second core), which 200 calls had not brought to their threshold. The same for
 * every engine, and outside every timer.
 */
const TS_WARM_ROUNDS = 30;

/**
 * The time-series layout's operations (typed keys, prefix bounds, reverse with a limit) on a
 * throwaway store: 50 sensors x 200 readings, then {@link TS_WARM_ROUNDS} rounds of queries of
 * each kind, so ts-ingest and ts-query are not the first use of those paths either.
 */
async function warmTimeSeries(d: Driver): Promise<void> {
  await withStore(d, "non-durable", undefined, async () => {
    const all = data.tsData(50, 200, SEED + 9);
    await putBatches(d, all, d.prepareBatch ? all.map((b) => d.prepareBatch!(b)) : undefined);
    for (let round = 0; round < TS_WARM_ROUNDS; round++) {
      for (let s = 0; s < 50; s++) {
        const id = data.sensorId(s);
        await rangeScan(d, { gte: data.tsKey(id), lt: data.tsPrefixEnd(id), reverse: true, limit: 100 });
        const start = data.TS_BASE_MS + ((s * 7 + round) % 140) * data.TS_STEP_MS;
        await rangeScan(d, { gte: data.tsKey(id, start), lt: data.tsKey(id, start + data.HOUR_MS) });
      }
    }
  });
}

type Rate = (workload: string, metric: string, mode: Mode, count: number, ms: number) => void;
type Record = (
  w: string,
  metric: string,
  mode: Mode,
  count: number,
  value: number,
  unit: Unit,
) => void;

/** rand-get, scan, disk and reopen on the store that rand-insert loaded with keys 0..n-1. */
async function readWorkloads(
  d: Driver,
  dir: string,
  n: number,
  want: (w: string) => boolean,
  rate: Rate,
  record: Record,
): Promise<void> {
  const mode = "non-durable";
  if (want("rand-get")) {
    const prng = new Prng(SEED + 3);
    const present = data.counterKeys(Array.from({ length: n }, () => prng.int(n)));
    const absentCounters = Array.from({ length: Math.round(n / 10) }, () => n + prng.int(n * 10));
    const absent = data.counterKeys(absentCounters);
    rate("rand-get", "rand-get present", mode, n, await time(() => getAll(d, present, true)));
    rate(
      "rand-get",
      "rand-get absent",
      mode,
      absent.length,
      await time(() => getAll(d, absent, false)),
    );
  }
  if (want("scan")) {
    for (const reverse of [false, true]) {
      let seen = { count: 0 } as Awaited<ReturnType<typeof rangeScan>>;
      const ms = await time(async () => void (seen = await rangeScan(d, { reverse })));
      const [lo, hi] = [data.counterKey(0), data.counterKey(n - 1)];
      if (
        seen.count !== n || !sameBytes(seen.first, reverse ? hi : lo) ||
        !sameBytes(seen.last, reverse ? lo : hi)
      ) {
        throw new Error(
          `${d.name}: scan reverse=${reverse} saw ${seen.count} of ${n} or wrong ends`,
        );
      }
      rate("scan", `scan ${reverse ? "reverse" : "forward"}`, mode, n, ms);
    }
  }
  if (!want("disk") && !want("reopen") && !want("reopened-reads")) return;
  if (d.compact) await d.compact();
  await d.close();
  if (want("disk")) record("disk", "disk bytes", mode, n, diskBytes(dir) / MB, "MB");
  const probe = data.counterKey(Math.floor(n / 2));
  const ms = await time(async () => {
    await d.open(dir, { durable: false, keyWidth: 16 });
    let v = d.get(probe);
    if (v instanceof Promise) v = await v;
    if (v === undefined) throw new Error(`${d.name}: key missing after reopen`);
  });
  if (want("reopen")) record("reopen", "reopen", mode, n, ms, "ms");
  if (want("reopened-reads")) {
    // The steady state of a store that was written earlier: for us, reads from the merged disk
    // segment through the block cache instead of from the in-memory segments.
    const prng = new Prng(SEED + 5);
    const keys = data.counterKeys(Array.from({ length: n }, () => prng.int(n)));
    const metric = "rand-get present, reopened";
    rate("reopened-reads", metric, mode, n, await time(() => getAll(d, keys, true)));
    let seen = { count: 0 } as Awaited<ReturnType<typeof rangeScan>>;
    const scanMs = await time(async () => void (seen = await rangeScan(d, {})));
    if (seen.count !== n) throw new Error(`${d.name}: scan after reopen saw ${seen.count} of ${n}`);
    rate("reopened-reads", "scan forward, reopened", mode, n, scanMs);
  }
}

/**
 * For random sensors: the latest 100 readings (reverse, limit 100), then a one-hour window. Two
 * timed passes of each kind over the loaded store, on different random sensors: the first
 * (rows "…, first pass") is also the first use of the store's read path, and the second (the
 * rows the goals are read from) comes after those 2,000 queries. A pass is short (1,000
 * queries, 20-80 ms), so a first pass measures the JIT as much as the engine: ours, a
 * JavaScript read path, reaches its last tiers for a store of several layers inside it (the
 * warm-up store has one layer; `BUN_JSC_reportCompileTimes=1` shows the two-layer merge step,
 * the run cursors' steps and the key encoder compiled inside the first pass), and a scratch
 * harness-like script timed our first latest-100 pass at 21-26k/s against 33-35k/s after a
 * warm-up on a two-layer store, and 37-44k/s for later passes (2026-12-07). Every engine gets
 * the same two passes.
 */
async function tsQueries(d: Driver, sensors: number, scale: number, rate: Rate): Promise<void> {
  const count = Math.max(100, Math.round(1000 * scale));
  await tsQueryPass(d, sensors, count, new Prng(SEED + 5), ", first pass", rate);
  await tsQueryPass(d, sensors, count, new Prng(SEED + 4), "", rate);
}

/** One timed pass of `count` queries of each kind, sensors and windows drawn from `prng`. */
async function tsQueryPass(
  d: Driver,
  sensors: number,
  count: number,
  prng: Prng,
  suffix: string,
  rate: Rate,
): Promise<void> {
  const ids = Array.from({ length: count }, () => data.sensorId(prng.int(sensors)));
  const latest = ids.map((id) => ({
    gte: data.tsKey(id),
    lt: data.tsPrefixEnd(id),
    reverse: true,
    limit: 100,
  }));
  const windows = ids.map((id) => {
    const start = data.TS_BASE_MS + prng.int(1000 - 60) * data.TS_STEP_MS;
    return { gte: data.tsKey(id, start), lt: data.tsKey(id, start + data.HOUR_MS) };
  });
  const kinds = [["latest-100", latest, 100], ["1h window", windows, 60]] as const;
  for (const [metric, queries, expected] of kinds) {
    const prepared = queries.map((q) => d.prepareRange?.(q));
    const ms = await time(async () => {
      for (let i = 0; i < queries.length; i++) {
        const { count } = await rangeScan(d, queries[i], prepared[i]);
        if (count !== expected) {
          throw new Error(`${d.name}: ${metric} saw ${count}, expected ${expected}`);
        }
      }
    });
    rate("ts-query", `ts-query ${metric}${suffix}`, "non-durable", queries.length, ms);
  }
}

/** The larger of the sampled peak and the kernel's high-water mark (Linux), in bytes. */
function peakRssBytes(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
    if (m) return Math.max(peakRss, Number(m[1]) * 1024);
  } catch { /* not Linux: the sampled peak stands */ }
  return peakRss;
}
