/**
 * Mutable segment benchmark (mitata `measure`): the in-memory layer that takes every write.
 * Each upsert sample fills a fresh segment with N records (default 1,000,000; 100-byte values),
 * so per-op numbers include node splits and the tree's growth; then point gets (hits and misses)
 * and full cursor scans over a filled segment.
 *
 *   bun bench/memtable_bench.ts [--n 1000000] [--samples 5] [--clock wall|cpu]
 *   deno run -A --v8-flags=--expose-gc bench/memtable_bench.ts (same flags)
 *
 * `--clock cpu` times with the process's CPU time (process.cpuUsage, all threads: GC helpers
 * count) instead of wall time: on a shared, oversubscribed machine wall time mostly measures the
 * other tenants. Medians of `--samples` runs are reported.
 *
 * Workloads (keys generated up front, one Uint8Array each, like the keyspace encoder makes):
 * - random:    16 random bytes;
 * - ascending: 16-byte big-endian counter (time-series appends, the tail fast path);
 * - sensor:    `sensor:<str>:ts:<u64be>` as the keyspace encodes it (literals not stored): the
 *              sensor name "sensor-NNNN" + 0x00 terminator + u64be timestamp, 1000 sensors
 *              interleaved (each write appends to its own sensor's run).
 *
 * @module
 */
import { measure } from "mitata";
import process from "node:process";
import { parseArgs } from "node:util";
import { KIND_PUT, newSlot } from "../src/iter/record.ts";
import { MutableSegment } from "../src/memory/mutable_segment.ts";
import { compareBytes } from "../src/util/bytes.ts";
import { Prng } from "../src/util/prng.ts";

const { values: args } = parseArgs({
  args: process.argv.slice(2),
  options: {
    n: { type: "string", default: "1000000" },
    samples: { type: "string", default: "5" },
    clock: { type: "string", default: "wall" },
  },
});
const N = Number(args.n);
const SAMPLES = Number(args.samples);
const VALUE_BYTES = 100;
const SENSORS = 1000;
const GETS = 200_000;

const rng = new Prng(42);
/** A small pool of values: upsert stores the reference, so distinct contents do not matter. */
const values: Uint8Array[] = [];
for (let i = 0; i < 1024; i++) values.push(rng.bytes(VALUE_BYTES));

function randomKeys(n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) out.push(rng.bytes(16));
  return out;
}

function ascendingKeys(n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const k = new Uint8Array(16);
    const v = new DataView(k.buffer);
    v.setUint32(8, Math.floor(i / 2 ** 32));
    v.setUint32(12, i >>> 0);
    out.push(k);
  }
  return out;
}

function sensorKeys(n: number): Uint8Array[] {
  const names: Uint8Array[] = [];
  const enc = new TextEncoder();
  for (let s = 0; s < SENSORS; s++) names.push(enc.encode(`sensor-${String(s).padStart(4, "0")}`));
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const name = names[i % SENSORS];
    const ts = 1_700_000_000_000 + Math.floor(i / SENSORS) * 1000;
    const k = new Uint8Array(name.length + 9);
    k.set(name);
    const v = new DataView(k.buffer);
    v.setUint32(name.length + 1, Math.floor(ts / 2 ** 32));
    v.setUint32(name.length + 5, ts >>> 0);
    out.push(k);
  }
  return out;
}

function fill(keys: Uint8Array[]): MutableSegment {
  const seg = new MutableSegment(1, compareBytes);
  for (let i = 0; i < keys.length; i++) seg.put(keys[i], values[i & 1023], i + 1, KIND_PUT, 0);
  return seg;
}

const gc = (globalThis as { gc?: () => void }).gc ??
  (globalThis as { Bun?: { gc(force: boolean): void } }).Bun?.gc.bind(null, true);
/** CPU time of this process in nanoseconds (microsecond resolution). */
function cpuNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}
const OPTS = {
  min_samples: SAMPLES,
  max_samples: SAMPLES,
  min_cpu_time: 0,
  gc,
  inner_gc: true,
  ...(args.clock === "cpu" ? { now: cpuNow } : {}),
};

/** Median nanoseconds per operation of `fn`, which performs `ops` operations per call. */
async function perOp(fn: () => unknown, ops: number): Promise<number> {
  const s = await measure(fn, OPTS);
  return s.p50 / ops;
}

async function main(): Promise<void> {
  const runtime = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined"
    ? "bun"
    : typeof (globalThis as { Deno?: unknown }).Deno !== "undefined"
    ? "deno"
    : "node";
  console.log(
    `# mutable segment bench (${runtime}, ${args.clock} clock): ${N} records, ${VALUE_BYTES} B values`,
  );
  console.log(
    "| workload | upsert ns/op | get hit ns/op | get miss ns/op | fwd scan ns/rec | rev scan ns/rec |",
  );
  console.log("|---|---|---|---|---|---|");
  const workloads: [string, () => Uint8Array[]][] = [
    ["random 16 B", () => randomKeys(N)],
    ["ascending 16 B", () => ascendingKeys(N)],
    ["sensor x1000", () => sensorKeys(N)],
  ];
  const misses = randomKeys(GETS);
  for (const [name, make] of workloads) {
    const keys = make();
    const upsert = await perOp(() => fill(keys), N);
    const seg = fill(keys);
    const out = newSlot();
    const probes: Uint8Array[] = [];
    for (let i = 0; i < GETS; i++) probes.push(keys[rng.int(N)]);
    const hit = await perOp(() => {
      let found = 0;
      for (let i = 0; i < GETS; i++) if (seg.get(probes[i], out)) found++;
      if (found !== GETS) throw new Error("get missed an existing key");
    }, GETS);
    const miss = await perOp(() => {
      for (let i = 0; i < GETS; i++) if (seg.get(misses[i], out)) throw new Error("phantom key");
    }, GETS);
    const scan = (reverse: boolean) => () => {
      const c = seg.cursor(reverse);
      let count = 0;
      while (c.next()) count++;
      if (count !== seg.recordCount) throw new Error("scan lost records");
    };
    const fwd = await perOp(scan(false), seg.recordCount);
    const rev = await perOp(scan(true), seg.recordCount);
    const f = (x: number) => x.toFixed(x < 10 ? 1 : 0);
    console.log(`| ${name} | ${f(upsert)} | ${f(hit)} | ${f(miss)} | ${f(fwd)} | ${f(rev)} |`);
  }
}

await main();
