/**
 * ZoneTree against Deno KV, under Deno: the comparison a Deno app makes before importing us.
 *
 *   deno run -A --unstable-kv bench/deno_kv.ts                 # 3 runs, 200,000 records
 *   deno run -A --unstable-kv bench/deno_kv.ts --runs 5 --n 500000
 *
 * Each run starts one fresh child process per engine (engines alternate), on a new directory
 * in the temp dir; the table shows the median of the runs with min and max. The workloads
 * follow the peer harness (`bench/peers/`, issue 6) at a smaller default size, through each
 * engine's public API as a Deno app would call it:
 * - `seq-insert`: n 16-byte big-endian counter keys with 100-byte random values, ascending, in
 *   batches of 1,000 (ZoneTree: `batch`; Deno KV: one `atomic()` of 1,000 `set`s, awaited);
 * - `rand-get`: n reads of random present keys; `scan`: every record forward, then reverse;
 * - `rand-insert`: the same records shuffled, into a fresh store;
 * - `ts-ingest`: 1,000 sensors x n/1,000 readings, time-first, one batch per minute, 16-byte
 *   values (ZoneTree: `sensor:<str>:ts:<u64be>`; Deno KV: keys `[sensor, ts]`);
 * - `ts-query`: for 1,000 random sensors the latest 100 readings, then a one-hour window each.
 * Durability: Deno KV commits each `atomic()` as a SQLite transaction and fsyncs it (strace: one
 * `fsync` or more per commit), so ZoneTree runs twice: in its default `async-compressed` mode
 * (buffered, synced in the background) and with `wal: "sync"` (each `batch` synced before it
 * returns); the ratio column compares the durable run with Deno KV.
 * ZoneTree's loads do not yield, so its reads run on the in-memory segments, as in the harness.
 * Before the timers, each child runs every operation on a small throwaway store (as the
 * harness's warm-up does).
 */
import { defineKeyspace, ZoneTree } from "../mod.ts";
import { flags, fmtRate, removeDir, tempDir } from "./bench_common.ts";
import { counterData, counterKeys, permutation } from "./peers/data.ts";
import { Prng } from "../src/util/prng.ts";

type Rates = Record<string, number>;
const BATCH = 1000;
const SENSORS = 1000;
const STEP = 60_000;
const BASE = 1_700_000_000_000;

const args = flags({ n: "200000", runs: "3", child: "" });
const n = Number(args.n);
const runs = Number(args.runs);
const child = args.child;

interface Engine {
  open(dir: string, timeSeries: boolean): Promise<void>;
  putBatch(keys: Uint8Array[], values: Uint8Array[], from: number, to: number, order?: Uint32Array): Promise<void>;
  putReadings(sensors: string[], ts: number, values: Uint8Array[], from: number): Promise<void>;
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  scan(reverse: boolean): Promise<number>;
  latest(sensor: string, limit: number): Promise<number>;
  window(sensor: string, start: number, end: number): Promise<number>;
  close(): Promise<void>;
}

function zonetree(wal: "async-compressed" | "sync"): Engine {
  // deno-lint-ignore no-explicit-any
  let tree: any;
  return {
    async open(dir, timeSeries) {
      const keyspace = defineKeyspace({
        key: timeSeries ? "sensor:<str>:ts:<u64be>" : "<bytes:16>",
        value: "bytes",
      });
      tree = await ZoneTree.open({ dir, keyspace, wal });
    },
    putBatch(keys, values, from, to, order) {
      const ops = [];
      for (let i = from; i < to; i++) {
        const j = order ? order[i] : i;
        ops.push({ put: keys[j], value: values[j] });
      }
      tree.batch(ops);
      return Promise.resolve();
    },
    putReadings(sensors, ts, values, from) {
      tree.batch(sensors.map((s, i) => ({ put: [s, ts], value: values[from + i] })));
      return Promise.resolve();
    },
    get(key) {
      return Promise.resolve(tree.get(key));
    },
    scan(reverse) {
      let c = 0;
      for (const _ of tree.range({ reverse })) c++;
      return Promise.resolve(c);
    },
    latest(sensor, limit) {
      let c = 0;
      for (const _ of tree.range({ prefix: [sensor], reverse: true, limit })) c++;
      return Promise.resolve(c);
    },
    window(sensor, start, end) {
      let c = 0;
      for (const _ of tree.range({ gte: [sensor, start], lt: [sensor, end] })) c++;
      return Promise.resolve(c);
    },
    async close() {
      await tree.close();
    },
  };
}

function denoKv(): Engine {
  let kv: Deno.Kv;
  return {
    async open(dir) {
      kv = await Deno.openKv(`${dir}/kv.sqlite`);
    },
    async putBatch(keys, values, from, to, order) {
      const op = kv.atomic();
      for (let i = from; i < to; i++) {
        const j = order ? order[i] : i;
        op.set([keys[j]], values[j]);
      }
      const r = await op.commit();
      if (!r.ok) throw new Error("Deno KV commit failed");
    },
    async putReadings(sensors, ts, values, from) {
      const op = kv.atomic();
      for (let i = 0; i < sensors.length; i++) op.set([sensors[i], ts], values[from + i]);
      const r = await op.commit();
      if (!r.ok) throw new Error("Deno KV commit failed");
    },
    async get(key) {
      return (await kv.get<Uint8Array>([key])).value ?? undefined;
    },
    async scan(reverse) {
      let c = 0;
      for await (const _ of kv.list({ prefix: [] }, { reverse, batchSize: 1000 })) c++;
      return c;
    },
    async latest(sensor, limit) {
      let c = 0;
      for await (const _ of kv.list({ prefix: [sensor] }, { reverse: true, limit })) c++;
      return c;
    },
    async window(sensor, start, end) {
      let c = 0;
      for await (const _ of kv.list({ start: [sensor, start], end: [sensor, end] })) c++;
      return c;
    },
    close() {
      kv.close();
      return Promise.resolve();
    },
  };
}

async function timed(f: () => Promise<void>): Promise<number> {
  const t = performance.now();
  await f();
  return performance.now() - t;
}

function check(what: string, got: number, want: number): void {
  if (got !== want) throw new Error(`${what}: ${got} records, expected ${want}`);
}

/** Every operation once on a small throwaway store, so the first timed workload is not the JIT's. */
async function warmUp(engine: Engine): Promise<void> {
  const m = 5000;
  const { keys, values } = counterData(m, 100, 9);
  const dir = tempDir("denokv-warm");
  await engine.open(dir, false);
  for (let b = 0; b < m; b += BATCH) await engine.putBatch(keys, values, b, b + BATCH);
  for (let i = 0; i < m; i++) await engine.get(keys[(i * 7) % m]);
  await engine.scan(false);
  await engine.scan(true);
  await engine.close();
  const sensors = Array.from({ length: 50 }, (_, s) => `warm-${s}`);
  const tsValues = counterData(50 * 200, 16, 10).values;
  Deno.mkdirSync(`${dir}/ts`);
  await engine.open(`${dir}/ts`, true);
  for (let r = 0; r < 200; r++) await engine.putReadings(sensors, BASE + r * STEP, tsValues, r * 50);
  for (let round = 0; round < 4; round++) {
    for (const s of sensors) {
      await engine.latest(s, 100);
      await engine.window(s, BASE + round * 10 * STEP, BASE + (round * 10 + 60) * STEP);
    }
  }
  await engine.close();
  removeDir(dir);
}

async function runChild(engine: Engine): Promise<Rates> {
  await warmUp(engine);
  const rates: Rates = {};
  const { keys, values } = counterData(n, 100, 1);
  const order = permutation(n, new Prng(2));
  const prng = new Prng(3);
  const probes = counterKeys(Array.from({ length: n }, () => prng.int(n)));
  const newDir = () => tempDir("denokv");
  const dirs: string[] = [];

  let dir = newDir();
  dirs.push(dir);
  await engine.open(dir, false);
  let ms = await timed(async () => {
    for (let b = 0; b < n; b += BATCH) await engine.putBatch(keys, values, b, Math.min(n, b + BATCH));
  });
  rates["seq-insert"] = n / ms * 1000;
  ms = await timed(async () => {
    for (let i = 0; i < n; i++) if ((await engine.get(probes[i])) === undefined) throw new Error("missing");
  });
  rates["rand-get present"] = n / ms * 1000;
  for (const reverse of [false, true]) {
    let count = 0;
    ms = await timed(async () => void (count = await engine.scan(reverse)));
    check("scan", count, n);
    rates[`scan ${reverse ? "reverse" : "forward"}`] = n / ms * 1000;
  }
  await engine.close();

  dir = newDir();
  dirs.push(dir);
  await engine.open(dir, false);
  ms = await timed(async () => {
    for (let b = 0; b < n; b += BATCH) {
      await engine.putBatch(keys, values, b, Math.min(n, b + BATCH), order);
    }
  });
  rates["rand-insert"] = n / ms * 1000;
  await engine.close();

  const readings = Math.max(100, Math.round(n / SENSORS));
  const sensors = Array.from({ length: SENSORS }, (_, s) => `sensor-${String(s).padStart(4, "0")}`);
  const tsValues = counterData(SENSORS * readings, 16, 4).values;
  dir = newDir();
  dirs.push(dir);
  await engine.open(dir, true);
  ms = await timed(async () => {
    for (let r = 0; r < readings; r++) await engine.putReadings(sensors, BASE + r * STEP, tsValues, r * SENSORS);
  });
  rates["ts-ingest"] = SENSORS * readings / ms * 1000;
  const qp = new Prng(5);
  const ids = Array.from({ length: 1000 }, () => sensors[qp.int(SENSORS)]);
  const starts = ids.map(() => BASE + qp.int(readings - 60) * STEP);
  ms = await timed(async () => {
    for (const id of ids) check("latest-100", await engine.latest(id, 100), 100);
  });
  rates["ts-query latest-100"] = ids.length / ms * 1000;
  ms = await timed(async () => {
    for (let i = 0; i < ids.length; i++) {
      check("1h window", await engine.window(ids[i], starts[i], starts[i] + 3_600_000), 60);
    }
  });
  rates["ts-query 1h window"] = ids.length / ms * 1000;
  await engine.close();
  for (const d of dirs) removeDir(d);
  return rates;
}

if (child) {
  const engine = child === "zonetree"
    ? zonetree("async-compressed")
    : child === "zonetree-sync"
    ? zonetree("sync")
    : denoKv();
  const rates = await runChild(engine);
  console.log(JSON.stringify(rates));
} else {
  const engines = ["zonetree", "zonetree-sync", "denokv"];
  const all: Record<string, Rates[]> = { zonetree: [], "zonetree-sync": [], denokv: [] };
  const self = new URL(import.meta.url).pathname;
  for (let run = 1; run <= runs; run++) {
    for (const engine of engines) {
      console.error(`run ${run}/${runs}: ${engine}`);
      const out = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--unstable-kv", self, "--child", engine, "--n", String(n)],
        stderr: "inherit",
      }).outputSync();
      if (!out.success) throw new Error(`${engine} child failed`);
      all[engine].push(JSON.parse(new TextDecoder().decode(out.stdout)));
    }
  }
  const med = (xs: number[]) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];
  const cell = (rs: Rates[], m: string) => {
    const xs = rs.map((r) => r[m]);
    return `${fmtRate(med(xs))} (${fmtRate(Math.min(...xs))}-${fmtRate(Math.max(...xs))})`;
  };
  console.log(
    `Deno ${Deno.version.deno} (V8 ${Deno.version.v8}), ${new Date().toISOString().slice(0, 10)}, ` +
      `n = ${n}, ${runs} runs; operations or records per second, median (min-max)\n`,
  );
  console.log(
    "| workload | ZoneTree (default WAL) | ZoneTree (`wal: \"sync\"`) | Deno KV | sync / Deno KV |\n" +
      "|---|---|---|---|---|",
  );
  for (const m of Object.keys(all.zonetree[0])) {
    const durable = all["zonetree-sync"];
    const ratio = med(durable.map((r) => r[m])) / med(all.denokv.map((r) => r[m]));
    console.log(
      `| ${m} | ${cell(all.zonetree, m)} | ${cell(durable, m)} | ${cell(all.denokv, m)} | ` +
        `${ratio.toFixed(1)}x |`,
    );
  }
}
