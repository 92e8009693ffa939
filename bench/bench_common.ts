/**
 * Shared pieces of the engine benchmarks (`write_bench.ts`, `read_bench.ts`, `merge_stall.ts`):
 * the data set of issue 3 (16-byte big-endian counter keys, 100-byte random values, built from
 * fixed seeds before any timer starts), temporary directories, a mitata `measure` wrapper for
 * workloads that need a fresh tree per sample (setup and teardown untimed), and table output.
 *
 * Keys: record i has key `u64be(0) ++ u64be(2 * i)` (even counters), so `missingKey(i)` (the odd
 * counter `2 * i + 1`) falls between two present keys: a miss has to search, not fall off an end.
 * Values: random bytes, so no engine gains from compression (the peer harness does the same).
 *
 * @module
 */
import { measure } from "mitata";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import process from "node:process";
import { Prng } from "../src/util/prng.ts";

export const KEY_BYTES = 16;
export const VALUE_BYTES = 100;

/** "bun" or "deno". */
export const RUNTIME: string = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined"
  ? "deno"
  : "bun";

/** The runtime's version, for the table headers. */
export function runtimeVersion(): string {
  const g = globalThis as { Bun?: { version: string }; Deno?: { version: { deno: string } } };
  return g.Bun ? `bun ${g.Bun.version}` : g.Deno ? `deno ${g.Deno.version.deno}` : "unknown";
}

/** A full GC when the runtime exposes one (Bun always; Deno with `--v8-flags=--expose-gc`). */
export function fullGc(): void {
  const g = globalThis as { Bun?: { gc(force: boolean): void }; gc?: () => void };
  if (g.Bun) g.Bun.gc(true);
  else if (typeof g.gc === "function") g.gc();
}

/** Key of record `i` (a fresh array). */
export function presentKey(i: number): Uint8Array {
  return counterKey(2 * i);
}

/** A key between present keys `i` and `i + 1`. */
export function missingKey(i: number): Uint8Array {
  return counterKey(2 * i + 1);
}

/**
 * The big-endian counter `c` in the last 8 of KEY_BYTES bytes. Byte stores, no DataView: a
 * DataView makes the array materialize an ArrayBuffer, three objects of garbage per key that
 * an application encoding its keys through a keyspace would not make.
 */
function counterKey(c: number): Uint8Array {
  const k = new Uint8Array(KEY_BYTES);
  const hi = Math.floor(c / 0x1_0000_0000);
  const lo = c >>> 0;
  k[8] = hi >>> 24;
  k[9] = (hi >>> 16) & 0xff;
  k[10] = (hi >>> 8) & 0xff;
  k[11] = hi & 0xff;
  k[12] = lo >>> 24;
  k[13] = (lo >>> 16) & 0xff;
  k[14] = (lo >>> 8) & 0xff;
  k[15] = lo & 0xff;
  return k;
}

/** The n keys of records 0..n-1 as subarrays of one flat buffer, in ascending order. */
export function sequentialKeys(n: number): Uint8Array[] {
  const flat = new Uint8Array(n * KEY_BYTES);
  const v = new DataView(flat.buffer);
  const keys = new Array<Uint8Array>(n);
  for (let i = 0; i < n; i++) {
    const c = 2 * i;
    v.setUint32(i * KEY_BYTES + 8, Math.floor(c / 0x1_0000_0000));
    v.setUint32(i * KEY_BYTES + 12, c >>> 0);
    keys[i] = flat.subarray(i * KEY_BYTES, (i + 1) * KEY_BYTES);
  }
  return keys;
}

/** A seeded Fisher-Yates shuffle of a copy of `items`. */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = items.slice();
  const rng = new Prng(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = out[i];
    out[i] = out[j];
    out[j] = t;
  }
  return out;
}

/** `count` distinct random values of VALUE_BYTES bytes, subarrays of one flat buffer. */
export function randomValues(count: number, seed: number): Uint8Array[] {
  const rng = new Prng(seed);
  const flat = new Uint8Array(count * VALUE_BYTES);
  const words = new Uint32Array(flat.buffer);
  for (let i = 0; i < words.length; i++) words[i] = rng.u32();
  const out = new Array<Uint8Array>(count);
  for (let i = 0; i < count; i++) out[i] = flat.subarray(i * VALUE_BYTES, (i + 1) * VALUE_BYTES);
  return out;
}

/** A fresh temporary directory under the OS temp dir. */
export function tempDir(tag: string): string {
  return nodeFs.mkdtempSync(`${os.tmpdir()}/zt-${tag}-`);
}

/** Removes a directory tree (best effort). */
export function removeDir(dir: string): void {
  nodeFs.rmSync(dir, { recursive: true, force: true });
}

/** Bytes of every file in `dir`. */
export function dirBytes(dir: string): number {
  let total = 0;
  for (const name of nodeFs.readdirSync(dir)) total += nodeFs.statSync(`${dir}/${name}`).size;
  return total;
}

/** One measured workload: per-sample times (ns) and the op count of one sample. */
export interface Result {
  name: string;
  ops: number;
  /** Wall time: median, min, max over the samples. */
  p50: number;
  min: number;
  max: number;
  /** Median of wall minus the main thread's runqueue wait (NaN where unknown). */
  ownP50: number;
  /** Median main-thread CPU time (NaN where unknown). */
  cpuP50: number;
  samples: number;
  note?: string;
}

/** The main thread's scheduler counters (Linux schedstat, ns): run on a CPU, runnable waiting. */
export function schedstat(): { runNs: number; waitNs: number } | undefined {
  try {
    const f = nodeFs.readFileSync("/proc/thread-self/schedstat", "utf8").split(" ");
    return { runNs: Number(f[0]), waitNs: Number(f[1]) };
  } catch {
    return undefined;
  }
}

/** What the last {@link startTimer} stop measured besides wall time. */
let lastOwnNs = NaN;
let lastCpuNs = NaN;

/**
 * Starts timing the part of a sample that counts; the returned function stops it and returns
 * the wall nanoseconds. It also records, for {@link measureManual}, the wall time minus the
 * runqueue wait (time this thread was runnable but the OS ran other processes: on a shared
 * machine that is most of the wall time) and the main thread's CPU time.
 */
export function startTimer(): () => number {
  const s0 = schedstat();
  const t0 = nowNs();
  return () => {
    const wall = nowNs() - t0;
    const s1 = schedstat();
    lastOwnNs = s0 && s1 ? wall - (s1.waitNs - s0.waitNs) : NaN;
    lastCpuNs = s0 && s1 ? s1.runNs - s0.runNs : NaN;
    return wall;
  };
}

function median(xs: number[]): number {
  const v = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  return v.length === 0 ? NaN : v[(v.length - 1) >> 1];
}

/**
 * Measures `run` with mitata (one warm-up call, then `samples` timed calls). `run` does its own
 * setup and teardown and returns the nanoseconds of the part that counts (mitata's manual
 * budget), so opening a fresh tree or removing a directory is never timed. When `run` times with
 * {@link startTimer}, the own (wall minus runqueue wait) and CPU medians are reported too.
 */
export async function measureManual(
  name: string,
  ops: number,
  samples: number,
  run: () => Promise<number> | number,
  note?: string,
): Promise<Result> {
  const own: number[] = [];
  const cpu: number[] = [];
  const sample = async () => {
    lastOwnNs = lastCpuNs = NaN;
    const ns = await run();
    own.push(lastOwnNs);
    cpu.push(lastCpuNs);
    return ns;
  };
  const stats = await measure(function* () {
    yield { manual: sample, budget: "manual" };
  }, { min_samples: samples, max_samples: samples, min_cpu_time: 0, gc: false });
  // mitata makes one warm-up call first (our samples take far longer than its threshold).
  const r: Result = {
    name,
    ops,
    p50: stats.p50,
    min: stats.min,
    max: stats.max,
    ownP50: median(own.slice(own.length - samples)),
    cpuP50: median(cpu.slice(cpu.length - samples)),
    samples,
    note,
  };
  printRow(r);
  return r;
}

/** Nanoseconds since an arbitrary origin, as a float. */
export function nowNs(): number {
  return performance.now() * 1e6;
}

/** Formats nanoseconds. */
export function fmtNs(ns: number): string {
  if (ns < 1e3) return `${ns.toFixed(0)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toFixed(2)} µs`;
  if (ns < 1e9) return `${(ns / 1e6).toFixed(1)} ms`;
  return `${(ns / 1e9).toFixed(2)} s`;
}

/** Formats a rate in ops per second. */
export function fmtRate(opsPerSec: number): string {
  if (opsPerSec >= 1e6) return `${(opsPerSec / 1e6).toFixed(2)} M/s`;
  if (opsPerSec >= 1e3) return `${(opsPerSec / 1e3).toFixed(1)} k/s`;
  return `${opsPerSec.toFixed(0)} /s`;
}

let headerPrinted = false;

/** Prints one Markdown table row (and the header before the first). */
export function printRow(r: Result): void {
  if (!headerPrinted) {
    headerPrinted = true;
    console.log(
      "| workload | ops | wall p50 (min–max) | wall/op | own/op | own rate | CPU/op | note |",
    );
    console.log("|---|---:|---:|---:|---:|---:|---:|---|");
  }
  const perOp = (ns: number) => (Number.isNaN(ns) ? "n/a" : fmtNs(ns / r.ops));
  const own = Number.isNaN(r.ownP50) ? r.p50 : r.ownP50;
  console.log(
    `| ${r.name} | ${r.ops.toLocaleString("en-US")} | ${fmtNs(r.p50)} (${fmtNs(r.min)}–${
      fmtNs(r.max)
    }) | ` +
      `${perOp(r.p50)} | ${perOp(r.ownP50)} | ${fmtRate(1e9 * r.ops / own)} | ${
        perOp(r.cpuP50)
      } | ` +
      `${r.note ?? ""} |`,
  );
}

/** Explains the columns; printed once by each bench after its banner. */
export function legend(): void {
  console.log(
    "wall: elapsed time of the timed part; own: wall minus the main thread's runqueue wait " +
      "(what the run would take without the other processes on this machine: CPU work plus " +
      "blocking syscalls such as fsync); CPU: main-thread CPU time; all medians over the samples.",
  );
}

/** The header line every bench prints first. */
export function banner(title: string): void {
  console.log(
    `# ${title} — ${runtimeVersion()}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? "?"}), ` +
      `load ${os.loadavg()[0].toFixed(2)}, ${new Date().toISOString()}`,
  );
  console.log(`args: ${process.argv.slice(2).join(" ") || "(defaults)"}`);
  legend();
}

/** `--name value` flags with defaults. */
export function flags<T extends Record<string, string>>(defaults: T): T {
  const out: Record<string, string> = { ...defaults };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) continue;
    const name = a.slice(2);
    if (!(name in defaults)) {
      throw new Error(`unknown flag ${a}; known: ${Object.keys(defaults).join(", ")}`);
    }
    out[name] = argv[++i] ?? "";
  }
  return out as T;
}
