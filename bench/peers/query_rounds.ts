/**
 * Time-series queries in repeated rounds, engines side by side in one process:
 * `bun query_rounds.ts [--engines zonetree,sqlite] [--rounds 8] [--sensors 1000]`.
 *
 * The peer run (`run.ts`) times one pass of 1,000 queries per kind right after each engine's
 * load, in a child process of its own: a first pass, which is also where a JIT-compiled engine
 * compiles its multi-layer read path and where the collector and JIT threads take the second
 * core of a 2-core machine. This tool loads the same readings (1,000 per sensor, 16-byte values,
 * time-first) into every engine given, then times rounds of 1,000 latest-100 and 1,000 one-hour
 * window queries (new random sensors each round), engines in alternating order, a full
 * collection before each timed pass as in `run.ts`. It prints each engine's first pass, the
 * median and the minimum of the others, and every pass. Nothing is written.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Prng } from "../../src/util/prng.ts";
import * as data from "./data.ts";
import type { Driver, RangeOptions } from "./drivers/driver.ts";

const DRIVERS: Record<string, string> = {
  zonetree: "./drivers/zonetree.ts",
  lmdb: "./drivers/lmdb.ts",
  "classic-level": "./drivers/classic_level.ts",
  sqlite: "./drivers/sqlite.ts",
};
const { values: args } = parseArgs({
  options: {
    engines: { type: "string", default: "zonetree,sqlite" },
    rounds: { type: "string", default: "8" },
    sensors: { type: "string", default: "1000" },
  },
});
const engines = args.engines!.split(",").map((s) => s.trim()).filter(Boolean);
const rounds = Number(args.rounds);
const sensors = Number(args.sensors);
/** The layout `run.ts` gives every engine for the time-series workloads (ours types it). */
const TS_LAYOUT = "sensor:<str>:ts:<u64be>";
const gc = (globalThis as { Bun?: { gc(full: boolean): void } }).Bun?.gc;

const drivers = new Map<string, { d: Driver; dir: string }>();
for (const name of engines) {
  if (!(name in DRIVERS)) throw new Error(`unknown engine ${name} (${Object.keys(DRIVERS).join(", ")})`);
  const { createDriver } = await import(DRIVERS[name]);
  const d: Driver = await createDriver();
  const dir = mkdtempSync(join(tmpdir(), `zt-rounds-${name}-`));
  await d.open(dir, { layout: TS_LAYOUT, durable: false });
  for (const batch of data.tsData(sensors, 1000, 0x5eed + 3)) {
    const r = d.putBatch(batch, d.prepareBatch?.(batch));
    if (r) await r;
  }
  drivers.set(name, { d, dir });
}

const times = new Map<string, number[]>();
for (let round = 0; round < rounds; round++) {
  const prng = new Prng(round + 1);
  const ids = Array.from({ length: 1000 }, () => data.sensorId(prng.int(sensors)));
  const kinds: [string, RangeOptions[], number][] = [
    ["latest-100", ids.map((id) => ({ gte: data.tsKey(id), lt: data.tsPrefixEnd(id), reverse: true, limit: 100 })), 100],
    ["1h window", ids.map((id) => {
      const start = data.TS_BASE_MS + prng.int(1000 - 60) * data.TS_STEP_MS;
      return { gte: data.tsKey(id, start), lt: data.tsKey(id, start + data.HOUR_MS) };
    }), 60],
  ];
  const order = round % 2 === 0 ? engines : engines.slice().reverse();
  for (const [kind, queries, expected] of kinds) {
    for (const name of order) {
      const { d } = drivers.get(name)!;
      const prepared = queries.map((q) => d.prepareRange?.(q));
      gc?.(true);
      const start = performance.now();
      for (let i = 0; i < queries.length; i++) {
        let count = 0;
        const r = d.range(queries[i], () => void count++, prepared[i]);
        if (r) await r;
        if (count !== expected) throw new Error(`${name} ${kind}: ${count} records, expected ${expected}`);
      }
      const ms = performance.now() - start;
      const key = `${kind} ${name}`;
      times.set(key, [...(times.get(key) ?? []), ms]);
    }
  }
}

const qps = (ms: number) => `${(1000 / ms).toFixed(1)}k/s`;
console.log(`${sensors} sensors x 1,000 readings; ${rounds} rounds of 1,000 queries per kind (queries per second)`);
for (const [key, list] of times) {
  const rest = list.slice(1).sort((a, b) => a - b);
  const median = rest.length > 0 ? rest[rest.length >> 1] : list[0];
  console.log(
    `${key.padEnd(26)} first ${qps(list[0]).padStart(8)}  later: median ${qps(median).padStart(8)}, best ${
      qps(rest[0] ?? list[0]).padStart(8)
    }   [${list.map((ms) => ms.toFixed(0)).join(" ")} ms]`,
  );
}
for (const { d, dir } of drivers.values()) {
  await d.close();
  rmSync(dir, { recursive: true, force: true });
}
