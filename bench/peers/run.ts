/**
 * Peer benchmark runner (issue 6): `bun run.ts [--engines a,b] [--workloads x,y] [--modes m,n]
 * [--runs 3] [--scale 1.0] [--warmup each|once]`. For each run, each engine runs every workload
 * in its own child process (so peak RSS, GC and native caches belong to one engine), engines
 * interleaved run by run. The table shows the median of the runs with min and max; it is printed and written to
 * bench/results/peers-<timestamp>.md, with the raw results in a .json beside it. An engine whose
 * driver fails to import (ours, until the engine lands) is skipped with the reason.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { Driver } from "./drivers/driver.ts";
import { type Mode, type Plan, type Result, runAll, type WarmUp, WORKLOADS } from "./workloads.ts";

const ENGINES: Record<string, string> = {
  zonetree: "./drivers/zonetree.ts",
  lmdb: "./drivers/lmdb.ts",
  "classic-level": "./drivers/classic_level.ts",
  rocksdb: "./drivers/rocksdb.ts",
  sqlite: "./drivers/sqlite.ts",
};

const { values: args } = parseArgs({
  options: {
    engines: { type: "string", default: Object.keys(ENGINES).join(",") },
    workloads: { type: "string", default: WORKLOADS.join(",") },
    modes: { type: "string", default: "non-durable,durable" },
    runs: { type: "string", default: "3" },
    scale: { type: "string", default: "1" },
    warmup: { type: "string", default: "each" },
    child: { type: "string" }, // internal: engine name, results go to --out
    out: { type: "string" },
  },
});
const list = (s: string) => s.split(",").map((x) => x.trim()).filter(Boolean);
const plan: Plan = {
  workloads: new Set(list(args.workloads!)),
  modes: new Set(list(args.modes!) as Mode[]),
  scale: Number(args.scale),
  warmUp: args.warmup as WarmUp,
};
for (const w of plan.workloads) {
  if (!(WORKLOADS as readonly string[]).includes(w)) {
    fail(`unknown workload ${w}`);
  }
}
for (const e of list(args.engines!)) {
  if (!(e in ENGINES)) fail(`unknown engine ${e}`);
}
if (!(plan.scale > 0)) fail(`--scale must be > 0, got ${args.scale}`);
if (plan.warmUp !== "each" && plan.warmUp !== "once") {
  fail(`--warmup must be each or once, got ${args.warmup}`);
}

function fail(message: string): never {
  console.error(`run.ts: ${message}`);
  process.exit(2);
}

async function loadDriver(engine: string): Promise<Driver> {
  const mod = await import(ENGINES[engine]);
  return mod.createDriver();
}

if (args.child) {
  const driver = await loadDriver(args.child);
  const results = await runAll(
    driver,
    plan,
    (line) => console.error(`  [${driver.name}] ${line}`),
  );
  writeFileSync(
    args.out!,
    JSON.stringify({ version: driver.version, modes: driver.modes, results }),
  );
  process.exit(0);
}

// Parent: check which drivers load, then run engine x run in child processes.
const engines: string[] = [];
const info: Record<string, { name: string; version: string; modes: Driver["modes"] }> = {};
for (const engine of list(args.engines!)) {
  try {
    const d = await loadDriver(engine);
    info[engine] = { name: d.name, version: d.version, modes: d.modes };
    engines.push(engine);
  } catch (err) {
    console.error(
      `skipping ${engine}: ${(err as Error).message.split("\n")[0]}`,
    );
  }
}
const runs = Math.max(1, Number(args.runs));
const all: Record<string, Result[][]> = Object.fromEntries(engines.map((e) => [e, []]));
// The machine may be shared: the 1-minute load average around each child goes into the report.
const load: { engine: string; run: number; before: number; after: number; seconds: number }[] = [];
const started = new Date();
for (let run = 1; run <= runs; run++) {
  for (const engine of engines) {
    console.error(`run ${run}/${runs}: ${engine}`);
    const out = join(tmpdir(), `zt-peers-${process.pid}-${engine}-${run}.json`);
    const childArgs = ["--child", engine, "--out", out, "--scale", String(plan.scale)];
    childArgs.push(
      "--warmup",
      plan.warmUp,
      "--workloads",
      [...plan.workloads].join(","),
      "--modes",
      [...plan.modes].join(","),
    );
    const [before, t0] = [loadavg()[0], performance.now()];
    const child = spawnSync(process.execPath, [import.meta.path, ...childArgs], {
      stdio: ["ignore", "inherit", "inherit"],
      cwd: import.meta.dir,
    });
    load.push({
      engine,
      run,
      before,
      after: loadavg()[0],
      seconds: (performance.now() - t0) / 1000,
    });
    if (child.status !== 0) {
      console.error(
        `  ${engine} run ${run} failed (exit ${child.status}); its results are left out`,
      );
      continue;
    }
    all[engine].push(JSON.parse(readFileSync(out, "utf8")).results);
    rmSync(out, { force: true });
  }
}

const table = renderTable();
const stamp = started.toISOString().replace(/[:.]/g, "-");
const dir = join(import.meta.dir, "..", "results");
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, `peers-${stamp}.md`), table);
const raw = { meta: meta(), info, load, runs: all };
writeFileSync(join(dir, `peers-${stamp}.json`), JSON.stringify(raw, null, 1));
console.log(table);
console.error(`written: bench/results/peers-${stamp}.md and .json`);

function meta() {
  const loads = load.flatMap((l) => [l.before, l.after]);
  return {
    date: started.toISOString(),
    cpu: cpus()[0]?.model ?? "unknown",
    nproc: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    bun: Bun.version,
    platform: `${process.platform} ${process.arch}`,
    scale: plan.scale,
    warmUp: plan.warmUp,
    runs,
    loadMin: Math.min(...loads),
    loadMax: Math.max(...loads),
    minutes: load.reduce((sum, l) => sum + l.seconds, 0) / 60,
    command: `bun run.ts ${process.argv.slice(2).join(" ")}`.trim(),
  };
}

function renderTable(): string {
  const m = meta();
  const rows = new Map<
    string,
    { mode: Mode; metric: string; count: number; unit: string }
  >();
  for (const e of engines) {
    for (const r of all[e].flat()) rows.set(`${r.mode}|${r.metric}`, r);
  }
  const head = [
    "workload",
    "mode",
    "n",
    ...engines.map((e) => `${info[e].name} ${info[e].version}`),
  ];
  const lines = [
    `Peer benchmark, ${m.date.slice(0, 10)}: ${m.cpu}, ${m.nproc} cores, ${m.memoryGiB} GiB,` +
    ` ${m.platform}, bun ${m.bun}; scale ${m.scale}, warm-up ${m.warmUp},` +
    ` median of ${runs} run(s) (min-max).`,
    `1-minute load average around the runs: ${m.loadMin.toFixed(1)}-${m.loadMax.toFixed(1)}` +
    ` (${m.nproc} cores); ${m.minutes.toFixed(1)} minutes. Command: \`${m.command}\``,
    "",
    `| ${head.join(" | ")} |`,
    `|${head.map((_, i) => (i < 2 ? "---" : "---:")).join("|")}|`,
  ];
  for (const [key, row] of rows) {
    const cells = engines.map((e) => {
      const values = all[e].flat().filter((r) => `${r.mode}|${r.metric}` === key).map((r) =>
        r.value
      );
      return values.length === 0 ? "-" : summary(values, row.unit);
    });
    lines.push(
      `| ${row.metric} (${row.unit}) | ${row.mode} | ${row.count.toLocaleString("en-US")} | ${
        cells.join(" | ")
      } |`,
    );
  }
  return lines.join("\n") + "\n";
}

function summary(values: number[], unit: string): string {
  const s = [...values].sort((a, b) => a - b);
  const median = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  const f = (x: number) => format(x, unit);
  return s.length === 1 ? f(median) : `**${f(median)}** (${f(s[0])}–${f(s[s.length - 1])})`;
}

function format(x: number, unit: string): string {
  if (unit !== "ops/s") {
    return x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0);
  }
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(0)}k`;
  return x.toFixed(0);
}
