/**
 * `zonetree demo`: the README's tour. Ingests a deterministic time-series data set (by default
 * 1,000 sensors × 1,000 readings = 1,000,000 records, keyspace `sensor:<str>:ts:<u64be>` with a
 * `{ temp: f64, humidity: f32 }` struct value), arriving interleaved by time as sensors would
 * report, written with `tree.batch` in chunks; then runs latest-first queries (last 10 readings
 * of random sensors) and one-hour window queries, and prints ingestion and query throughput,
 * disk bytes and the segment layout.
 *
 * Invariants: the data set is a pure function of --sensors, --readings and --seed; every query
 * result is checked against what was written (a wrong count or order is a bug and fails the run);
 * the progress bar is drawn only when stdout is a terminal (plain periodic lines otherwise); a
 * temporary data directory is removed at the end, also on error or Ctrl-C.
 *
 * @module
 */
import process from "node:process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TreeStats, ZoneTree } from "../api/zone_tree.ts";
import { defineKeyspace } from "../keyspace/define_keyspace.ts";
import { Prng } from "../util/prng.ts";
import {
  type CliContext,
  type Command,
  EXIT_OK,
  formatBytes,
  formatCount,
  formatDuration,
  formatRate,
  intFlag,
  type Output,
  parseArgs,
  positionals,
  stringFlag,
  table,
} from "./common.ts";
import { inspectDataDir, type InspectReport, segmentLines } from "./inspect.ts";

const HELP = `Usage: zonetree demo [--dir <dir>] [--sensors <n>] [--readings <n>] [--batch <n>]
                     [--mutable-max <n>] [--seed <n>]

Ingests a deterministic time-series data set: <sensors> sensors each reporting once a minute
(<readings> readings each), keyspace "sensor:<str>:ts:<u64be>" with the value
{ temp: f64, humidity: f32 }. Readings arrive interleaved by time, as they would from the
field, and are written with tree.batch() in chunks. A progress bar with rate and ETA is drawn
when stdout is a terminal (plain lines otherwise). Then it runs latest-first queries (the last
10 readings of random sensors) and one-hour window queries, checks every result, and prints
ingestion and query throughput, disk bytes and the segment layout.

Options:
  --dir <dir>       data directory to create (default: a temporary one, removed at the end)
  --sensors <n>     sensors (default 1,000)
  --readings <n>    readings per sensor (default 1,000)
  --batch <n>       records per tree.batch() call (default 10,000)
  --mutable-max <n> records in the mutable segment before it moves forward and is merged to
                    disk (mutableSegmentMaxItemCount; default the engine's: 1,000,000, or
                    64 MiB); small values show more segments and merges
  --seed <n>        seed of the data set and of the query choice (default 42)
  -h, --help        this help

Exit codes: 0 ok, 1 error (e.g. --dir already holds a database), 2 usage error.`;

const KEYSPACE = defineKeyspace({
  name: "readings",
  key: "sensor:<str>:ts:<u64be>",
  value: { temp: "f64", humidity: "f32" },
});

/** 2024-01-01T00:00:00Z: the first reading's minute. */
const START_MS = Date.UTC(2024, 0, 1);
const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const QUERY_COUNT = 1000;
const LATEST_LIMIT = 10;

interface DemoOptions {
  sensors: number;
  readings: number;
  batch: number;
  mutableMax: number | undefined;
  seed: number;
}

/** The data set: sensor names, each sensor's phase within the minute and its climate. */
class SensorFleet {
  readonly names: string[];
  /** Sensor indexes in the order they report within each minute (by phase). */
  readonly order: number[];
  readonly phaseMs: number[];
  readonly baseTemp: number[];
  readonly baseHumidity: number[];
  readonly prng: Prng;

  constructor(readonly options: DemoOptions) {
    const { sensors, seed } = options;
    this.prng = new Prng(seed);
    const width = Math.max(4, String(sensors - 1).length);
    this.names = Array.from({ length: sensors }, (_, i) => `s-${String(i).padStart(width, "0")}`);
    this.phaseMs = this.names.map(() => this.prng.int(MINUTE_MS));
    this.baseTemp = this.names.map(() => 15 + this.prng.next() * 10);
    this.baseHumidity = this.names.map(() => 35 + this.prng.next() * 20);
    this.order = this.names.map((_, i) => i).sort((a, b) =>
      this.phaseMs[a] - this.phaseMs[b] || a - b
    );
  }

  /** Timestamp (epoch ms) of reading `r` of sensor `s`. */
  ts(s: number, r: number): number {
    return START_MS + r * MINUTE_MS + this.phaseMs[s];
  }

  /** The value of reading `r` of sensor `s` (a daily cycle plus noise). */
  value(s: number, r: number): { temp: number; humidity: number } {
    const day = Math.sin((2 * Math.PI * (r % 1440)) / 1440 - Math.PI / 2);
    const temp = this.baseTemp[s] + 3 * day + (this.prng.next() - 0.5) * 0.4;
    const humidity = this.baseHumidity[s] - 8 * day + (this.prng.next() - 0.5) * 2;
    // Humidity in quarter percents: exact in an f32, so it prints as written.
    return { temp: Math.round(temp * 100) / 100, humidity: Math.round(humidity * 4) / 4 };
  }
}

/** Draws ingestion progress: a bar on a terminal, a plain line every 10% otherwise. */
class Progress {
  readonly #started = performance.now();
  #lastDraw = 0;
  #nextTenth = 1;
  constructor(private readonly out: Output, private readonly total: number) {}

  update(done: number): void {
    const now = performance.now();
    const ms = now - this.#started;
    const rate = done / Math.max(ms, 1) * 1000;
    const eta = rate > 0 ? (this.total - done) / rate * 1000 : 0;
    const pct = Math.floor(done / this.total * 100);
    const counts = `${formatCount(done)} / ${formatCount(this.total)}`;
    const rateText = formatCount(Math.round(rate));
    const etaText = `ETA ${Math.ceil(eta / 1000)} s`;
    const percent = `${String(pct).padStart(3)}%`;
    if (this.out.isTTY) {
      if (now - this.#lastDraw < 100 && done < this.total) return;
      this.#lastDraw = now;
      const width = 20;
      const filled = Math.round(done / this.total * width);
      const bar = `[${"#".repeat(filled)}${"-".repeat(width - filled)}]`;
      // One line that fits the terminal: a wrapped line could not be redrawn in place.
      const line = `  ${bar} ${percent}  ${counts}  ${rateText} rec/s  ${etaText}`;
      this.out.now(`\r\x1b[2K${line.slice(0, Math.max(20, this.out.columns - 1))}`);
      if (done >= this.total) this.out.now("\n");
    } else if (done * 10 >= this.#nextTenth * this.total) {
      while (done * 10 >= this.#nextTenth * this.total) this.#nextTenth++;
      this.out.now(`  ${percent}  ${counts}  ${rateText} records/s  ${etaText}\n`);
    }
  }
}

const openDemoTree = (dir: string, mutableMax?: number) =>
  ZoneTree.open({
    dir,
    keyspace: KEYSPACE,
    mode: "create",
    ...(mutableMax === undefined ? {} : { mutableSegmentMaxItemCount: mutableMax }),
  });
type DemoTree = Awaited<ReturnType<typeof openDemoTree>>;

const yieldToEventLoop = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/** Writes the data set; returns the milliseconds it took (until durable). */
async function ingest(tree: DemoTree, fleet: SensorFleet, out: Output): Promise<number> {
  const { sensors, readings, batch } = fleet.options;
  const total = sensors * readings;
  const progress = new Progress(out, total);
  const started = performance.now();
  let ops: { put: [string, number]; value: { temp: number; humidity: number } }[] = [];
  let done = 0;
  for (let r = 0; r < readings; r++) {
    for (const s of fleet.order) {
      ops.push({ put: [fleet.names[s], fleet.ts(s, r)], value: fleet.value(s, r) });
      if (ops.length === batch) {
        tree.batch(ops);
        done += ops.length;
        ops = [];
        progress.update(done);
        // Lets the background WAL writer and merges run between batches.
        await yieldToEventLoop();
      }
    }
  }
  if (ops.length > 0) tree.batch(ops);
  await tree.flush();
  progress.update(total);
  return performance.now() - started;
}

/** Waits until no in-memory segment waits for a merge; returns the milliseconds it took. */
async function settle(tree: DemoTree): Promise<number | undefined> {
  const started = performance.now();
  if (tree.stats().readOnlySegmentsCount === 0 && !tree.stats().isMerging) return undefined;
  for (
    let i = 0;
    i < 1000 && (tree.stats().readOnlySegmentsCount > 0 || tree.stats().isMerging);
    i++
  ) {
    await tree.maintenance.merge();
  }
  return performance.now() - started;
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`demo self-check failed: ${what}`);
}

type Reading = [{ sensor: string; ts: bigint }, { temp: number; humidity: number }];

/** Last LATEST_LIMIT readings of QUERY_COUNT random sensors; returns [ms, records, example]. */
function latestQueries(
  tree: DemoTree,
  fleet: SensorFleet,
  prng: Prng,
): { ms: number; records: number; example: Reading[] } {
  const { readings } = fleet.options;
  const picks = Array.from({ length: QUERY_COUNT }, () => prng.int(fleet.names.length));
  let records = 0;
  let example: Reading[] = [];
  const started = performance.now();
  for (const s of picks) {
    const got = [
      ...tree.range({ prefix: [fleet.names[s]], reverse: true, limit: LATEST_LIMIT }),
    ] as Reading[];
    check(
      got.length === Math.min(LATEST_LIMIT, readings),
      `latest readings of ${fleet.names[s]}: ${got.length}`,
    );
    check(
      got[0][0].ts === BigInt(fleet.ts(s, readings - 1)),
      `newest reading of ${fleet.names[s]} first`,
    );
    records += got.length;
    if (example.length === 0) example = got;
  }
  return { ms: performance.now() - started, records, example };
}

/** One-hour windows of QUERY_COUNT random sensors; returns [ms, records, example summary]. */
function windowQueries(
  tree: DemoTree,
  fleet: SensorFleet,
  prng: Prng,
): { ms: number; records: number; example: string } {
  const { readings } = fleet.options;
  const hours = Math.max(1, Math.floor(readings * MINUTE_MS / HOUR_MS));
  const picks = Array.from(
    { length: QUERY_COUNT },
    () => [prng.int(fleet.names.length), prng.int(hours)],
  );
  let records = 0;
  let example = "";
  const started = performance.now();
  for (const [s, h] of picks) {
    const from = START_MS + h * HOUR_MS;
    let n = 0;
    let min = Infinity;
    let max = -Infinity;
    let sum = 0;
    for (
      const [, v] of tree.range({
        gte: [fleet.names[s], from],
        lt: [fleet.names[s], from + HOUR_MS],
      }) as Iterable<Reading>
    ) {
      n++;
      sum += v.temp;
      if (v.temp < min) min = v.temp;
      if (v.temp > max) max = v.temp;
    }
    check(
      n === Math.min(60, Math.max(0, readings - h * 60)),
      `window ${h} of ${fleet.names[s]}: ${n} readings`,
    );
    records += n;
    if (example === "" && n > 0) {
      const at = new Date(from).toISOString().slice(0, 16).replace("T", " ");
      example = `${fleet.names[s]}, the hour from ${at} UTC: ${n} readings, ` +
        `temp min ${min.toFixed(2)} / avg ${(sum / n).toFixed(2)} / max ${max.toFixed(2)} °C`;
    }
  }
  return { ms: performance.now() - started, records, example };
}

function runtimeName(): string {
  const g = globalThis as { Bun?: { version: string }; Deno?: { version: { deno: string } } };
  if (g.Bun) return `Bun ${g.Bun.version}`;
  if (g.Deno) return `Deno ${g.Deno.version.deno}`;
  return `Node ${process.version}`;
}

function printHeader(out: Output, dir: string, temporary: boolean, options: DemoOptions): void {
  const { sensors, readings, batch, seed } = options;
  out.line(
    `ZoneTree demo: ${formatCount(sensors)} sensors × ${formatCount(readings)} readings = ` +
      `${formatCount(sensors * readings)} records`,
  );
  const note = temporary ? "  (temporary: removed at the end; keep one with --dir)" : "";
  const rows = [
    ["keyspace", `${KEYSPACE.spec.key} -> { temp: f64, humidity: f32 }  (${KEYSPACE.layout})`],
    ["data directory", dir + note],
    ["runtime", `${runtimeName()}, seed ${seed}`],
  ];
  for (const line of table(rows, [], "  ")) out.line(line);
  out.line("");
  const start = new Date(START_MS).toISOString().replace(".000", "");
  out.line(`ingest: every sensor reports once a minute from ${start}, interleaved by time,`);
  out.line(
    `        tree.batch() of ${
      formatCount(batch)
    } records, WAL "async-compressed", automatic merges`,
  );
}

type QueryResult = { ms: number; records: number };

function printQueries(
  out: Output,
  latest: QueryResult & { example: Reading[] },
  window: QueryResult & { example: string },
): void {
  const row = (label: string, r: QueryResult) => [
    label,
    formatCount(QUERY_COUNT),
    formatCount(r.records),
    formatDuration(r.ms),
    formatRate(QUERY_COUNT, r.ms),
    formatRate(r.records, r.ms),
  ];
  out.line("queries (each result checked against the data set):");
  const rows = [
    ["", "queries", "records", "time", "queries/s", "records/s"],
    row("latest-first", latest),
    row("one-hour window", window),
  ];
  for (const line of table(rows, [1, 2, 3, 4, 5], "  ")) out.line(line);
  out.line(
    `  latest-first:    range({ prefix: { sensor }, reverse: true, limit: ${LATEST_LIMIT} }) ` +
      "for random sensors",
  );
  out.line(
    "  one-hour window: range({ gte: { sensor, ts }, lt: { sensor, ts: ts + 1h } }) " +
      "for random sensors and hours",
  );
  out.line(`  e.g. the latest readings of ${latest.example[0][0].sensor}:`);
  for (const [k, v] of latest.example.slice(0, 3)) {
    const at = new Date(Number(k.ts)).toISOString();
    out.line(`    ${at}  temp ${v.temp.toFixed(2)} °C  humidity ${v.humidity.toFixed(2)} %`);
  }
  out.line(`  e.g. ${window.example}`);
}

function printStorage(out: Output, stats: TreeStats, report: InspectReport): void {
  const onDisk = report.segments.reduce((n, seg) => n + seg.recordCount, 0);
  const perRecord = onDisk > 0 ? report.diskBytes / onDisk : 0;
  out.line(
    "storage (tree.stats() after the merges, then the files as `zonetree inspect` shows them):",
  );
  const layers = `mutable segment ${formatCount(stats.mutableSegmentRecordCount)} records, ` +
    `read-only segments ${formatCount(stats.readOnlySegmentsCount)}, ` +
    `disk segment ${formatCount(stats.diskSegmentRecordCount)}, ` +
    `bottom segments ${formatCount(stats.bottomSegmentsCount)}`;
  const segments = onDisk > 0
    ? `${formatBytes(report.diskBytes)} in segments for ${formatCount(onDisk)} records ` +
      `(${perRecord.toFixed(1)} bytes/record, LZ4 blocks)`
    : "no disk segment yet";
  const bytes = `${segments}, WAL ${formatBytes(report.walBytes)}, ` +
    `total ${formatBytes(report.totalBytes)}`;
  for (const line of table([["layers", layers], ["disk bytes", bytes]], [], "  ")) out.line(line);
  out.line("  segment layout:");
  for (const line of segmentLines(report, "    ")) out.line(line);
}

/** Ingests, queries and reports into `dir`, which must not hold a database. */
async function runDemo(
  dir: string,
  temporary: boolean,
  options: DemoOptions,
  out: Output,
): Promise<void> {
  const fleet = new SensorFleet(options);
  const total = options.sensors * options.readings;
  printHeader(out, dir, temporary, options);
  await out.flush();

  const tree = await openDemoTree(dir, options.mutableMax);
  let stats: TreeStats;
  try {
    const ingestMs = await ingest(tree, fleet, out);
    out.line(
      `  ingested ${formatCount(total)} records in ${formatDuration(ingestMs)}: ` +
        `${formatRate(total, ingestMs)} records/s (durable: flushed)`,
    );
    const settleMs = await settle(tree);
    stats = tree.stats();
    out.line(
      settleMs === undefined
        ? "  no merge pending"
        : `  background merges finished ${formatDuration(settleMs)} later`,
    );
    out.line("");
    const prng = new Prng(options.seed + 1);
    const latest = latestQueries(tree, fleet, prng);
    const window = windowQueries(tree, fleet, prng);
    printQueries(out, latest, window);
    out.line("");
  } finally {
    await tree.close();
  }
  printStorage(out, stats, inspectDataDir(dir));
  out.line("");
}

async function run(argv: readonly string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, {
    dir: "value",
    sensors: "value",
    readings: "value",
    batch: "value",
    "mutable-max": "value",
    seed: "value",
  });
  if (args.help) {
    ctx.out.line(HELP);
    return EXIT_OK;
  }
  positionals(args, []);
  const options: DemoOptions = {
    sensors: intFlag(args, "sensors", 1, 1_000_000, 1000),
    readings: intFlag(args, "readings", 1, 10_000_000, 1000),
    batch: intFlag(args, "batch", 1, 1_000_000, 10_000),
    mutableMax: args.flags.has("mutable-max")
      ? intFlag(args, "mutable-max", 1, 1_000_000_000, 0)
      : undefined,
    seed: intFlag(args, "seed", 0, 0xffff_ffff, 42),
  };
  const given = stringFlag(args, "dir");
  const dir = given ?? mkdtempSync(join(tmpdir(), "zonetree-demo-"));
  const cleanup = () => {
    if (given === undefined) rmSync(dir, { recursive: true, force: true });
  };
  const onInterrupt = () => {
    cleanup();
    process.exit(130);
  };
  process.on("SIGINT", onInterrupt);
  const started = performance.now();
  const cpuStart = process.cpuUsage();
  try {
    await runDemo(dir, given === undefined, options, ctx.out);
  } finally {
    process.off("SIGINT", onInterrupt);
    cleanup();
  }
  const cpu = process.cpuUsage(cpuStart);
  ctx.out.line(
    `done in ${formatDuration(performance.now() - started)} ` +
      `(CPU ${formatDuration((cpu.user + cpu.system) / 1000)})` +
      (given === undefined ? "; temporary data directory removed" : `; data kept in ${dir}`),
  );
  await ctx.out.flush();
  return EXIT_OK;
}

/** The `demo` command. */
export const demoCommand: Command = {
  name: "demo",
  summary: "ingest 1,000,000 sensor readings with a progress bar, query them, print throughput",
  help: HELP,
  run,
};
