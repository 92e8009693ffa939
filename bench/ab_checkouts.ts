/**
 * Two checkouts of this repository measured side by side in one process, for changes smaller
 * than the run-to-run noise of separate processes (10-50% on a 2-core VM):
 *
 *   git worktree add /tmp/base <commit>; ln -s "$PWD/node_modules" /tmp/base/node_modules
 *   A=/tmp/base B=. bun bench/ab_checkouts.ts query    # time-series range queries
 *   A=/tmp/base B=. bun bench/ab_checkouts.ts ingest   # time-series loads
 *   A=/tmp/base B=. bun bench/ab_checkouts.ts scan     # full scans of counter keys
 *   A=/tmp/base B=. bun bench/ab_checkouts.ts random   # loads of shuffled counter keys
 *
 * `query`: both checkouts load 1,000 sensors x 1,000 readings (`sensor:<str>:ts:<u64be>`,
 * 16-byte values, time-first, no yield: the in-memory layers the peer harness reads), then
 * ROUNDS (default 12) rounds of 1,000 queries per shape (latest-100, latest reading, one-hour
 * window) on new random sensors, checkouts in alternating order, a full collection before each
 * pass. `ingest`: ROUNDS (default 4) loads of the same readings into a fresh tree per checkout,
 * alternating; with PRIOR=100 each checkout first loads 200,000 records of 100-byte values (code
 * compiled for another value size, as in the peer harness's order). `scan`: both checkouts load
 * 1,000,000 16-byte big-endian counter keys with 100-byte values (batches of 1,000, no yield:
 * the in-memory layers the harness's scans read), then ROUNDS (default 8) rounds of a full
 * forward and a full reverse `range()`, checkouts alternating. `random`: ROUNDS (default 6)
 * loads of 1,000,000 16-byte counter keys in a seeded shuffle with 100-byte random values, in
 * batches of 1,000, into a fresh tree per checkout, alternating: the peer harness's
 * `rand-insert` data (keys and values are views into two large buffers, as `bench/peers/data.ts`
 * makes them, so reading them misses the cache as it does there). Prints, per checkout and shape,
 * the median and the best time per round (ms) and every round.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { Prng } from "../src/util/prng.ts";

const mode = process.argv[2] ?? "query";
if (!["query", "ingest", "scan", "random"].includes(mode)) {
  throw new Error(`mode must be query, ingest, scan or random, not ${mode}`);
}
const root = (p: string) => (isAbsolute(p) ? p : resolve(p));
const checkouts = { A: root(process.env.A ?? "."), B: root(process.env.B ?? ".") };
const rounds = Number(
  process.env.ROUNDS ?? (mode === "query" ? 12 : mode === "scan" ? 8 : mode === "random" ? 6 : 4),
);
const gc = (globalThis as { Bun?: { gc(full: boolean): void } }).Bun?.gc;

// deno-lint-ignore no-explicit-any
type Mod = any;
const mods: Record<string, Mod> = {};
for (const [name, dir] of Object.entries(checkouts)) mods[name] = await import(join(dir, "mod.ts"));

const SENSORS = 1000, READINGS = 1000, BASE = 1_700_000_000_000, STEP = 60_000;
const names = Array.from({ length: SENSORS }, (_, s) => `sensor-${String(s).padStart(4, "0")}`);
const value = new Uint8Array(16);
const batches = Array.from(
  { length: READINGS },
  (_, r) => names.map((n) => ({ put: [n, BASE + r * STEP], value })),
);
const dirs: string[] = [];

async function openTree(m: Mod) {
  const dir = mkdtempSync(join(tmpdir(), "zt-ab-"));
  dirs.push(dir);
  return await m.ZoneTree.open({
    dir,
    keyspace: m.defineKeyspace({ key: "sensor:<str>:ts:<u64be>", value: "bytes" }),
  });
}

/**
 * A new tree of `count` 16-byte big-endian counter keys, ascending, with `valueSize`-byte values,
 * in batches of 1,000 (no yield).
 */
async function counterTree(m: Mod, count: number, valueSize: number) {
  const dir = mkdtempSync(join(tmpdir(), "zt-ab-"));
  dirs.push(dir);
  const tree = await m.ZoneTree.open({
    dir,
    keyspace: m.defineKeyspace({ key: "<bytes:16>", value: "bytes" }),
  });
  const v = new Uint8Array(valueSize);
  for (let b = 0; b < count / 1000; b++) {
    const ops = [];
    for (let i = 0; i < 1000; i++) {
      const k = new Uint8Array(16);
      new DataView(k.buffer).setUint32(12, b * 1000 + i);
      ops.push({ put: k, value: v });
    }
    tree.batch(ops);
  }
  return tree;
}

const times = new Map<string, number[]>();
const record = (key: string, ms: number) => times.set(key, [...(times.get(key) ?? []), ms]);

if (mode === "query") {
  const trees: Record<string, Mod> = {};
  for (const [name, m] of Object.entries(mods)) {
    const tree = await openTree(m);
    for (const b of batches) tree.batch(b);
    trees[name] = tree;
  }
  for (let round = 0; round < rounds; round++) {
    const p = new Prng(round + 1);
    const ids = Array.from({ length: 1000 }, () => names[p.int(SENSORS)]);
    const starts = ids.map(() => BASE + p.int(READINGS - 60) * STEP);
    const shapes: Record<string, object[]> = {
      "latest-100": ids.map((id) => ({ gte: [id], lte: [id], reverse: true, limit: 100 })),
      "latest reading": ids.map((id) => ({ gte: [id], lte: [id], reverse: true, limit: 1 })),
      "1h window": ids.map((id, i) => ({ gte: [id, starts[i]], lt: [id, starts[i] + 3_600_000] })),
    };
    const order = round % 2 === 0 ? ["A", "B"] : ["B", "A"];
    for (const [shape, queries] of Object.entries(shapes)) {
      for (const name of order) {
        gc?.(true);
        const start = performance.now();
        let n = 0;
        for (const q of queries) for (const [, v] of trees[name].range(q)) n += v.length;
        record(`${shape} ${name}`, performance.now() - start);
        if (n === 0) throw new Error("no records read");
      }
    }
  }
  for (const tree of Object.values(trees)) await tree.close();
} else if (mode === "scan") {
  const COUNT = 1_000_000;
  const trees: Record<string, Mod> = {};
  for (const [name, m] of Object.entries(mods)) {
    trees[name] = await counterTree(m, COUNT, 100);
  }
  for (let round = 0; round < rounds; round++) {
    for (const name of round % 2 === 0 ? ["A", "B"] : ["B", "A"]) {
      for (const reverse of [false, true]) {
        gc?.(true);
        const start = performance.now();
        let n = 0;
        for (const _ of trees[name].range({ reverse })) n++;
        record(`scan ${reverse ? "reverse" : "forward"} ${name}`, performance.now() - start);
        if (n !== COUNT) throw new Error(`scan saw ${n} of ${COUNT}`);
      }
    }
  }
  for (const tree of Object.values(trees)) await tree.close();
} else if (mode === "random") {
  const COUNT = 1_000_000;
  const keyBytes = new Uint8Array(16 * COUNT);
  const valueBytes = new Uint8Array(100 * COUNT);
  const p = new Prng(7);
  for (let i = 0; i < valueBytes.length; i++) valueBytes[i] = p.int(256);
  const order = Array.from({ length: COUNT }, (_, i) => i);
  for (let i = COUNT - 1; i > 0; i--) {
    const j = p.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const keys = order.map((i) => {
    const k = keyBytes.subarray(16 * i, 16 * i + 16);
    new DataView(k.buffer, k.byteOffset, 16).setUint32(12, i);
    return k;
  });
  const values = order.map((i) => valueBytes.subarray(100 * i, 100 * i + 100));
  for (let round = 0; round < rounds; round++) {
    for (const name of round % 2 === 0 ? ["A", "B"] : ["B", "A"]) {
      const dir = mkdtempSync(join(tmpdir(), "zt-ab-"));
      dirs.push(dir);
      const m = mods[name];
      const tree = await m.ZoneTree.open({
        dir,
        keyspace: m.defineKeyspace({ key: "<bytes:16>", value: "bytes" }),
      });
      gc?.(true);
      const start = performance.now();
      for (let b = 0; b < COUNT; b += 1000) {
        const ops = new Array(1000);
        for (let i = 0; i < 1000; i++) ops[i] = { put: keys[b + i], value: values[b + i] };
        tree.batch(ops);
      }
      record(`random load ${name}`, performance.now() - start);
      await tree.close();
    }
  }
} else {
  if (process.env.PRIOR) {
    const size = Number(process.env.PRIOR);
    for (const m of Object.values(mods)) {
      const tree = await counterTree(m, 200_000, size);
      for (const _ of tree.range({})) { /* read it all once */ }
      await tree.close();
    }
  }
  for (let round = 0; round < rounds; round++) {
    for (const name of round % 2 === 0 ? ["A", "B"] : ["B", "A"]) {
      const tree = await openTree(mods[name]);
      gc?.(true);
      const start = performance.now();
      for (const b of batches) tree.batch(b);
      record(`ts load ${name}`, performance.now() - start);
      await tree.close();
    }
  }
}

const unit = mode === "query"
  ? "per round of 1,000 queries"
  : mode === "scan"
  ? "per scan"
  : "per load";
console.log(`A = ${checkouts.A}\nB = ${checkouts.B}\n${mode}, ${rounds} rounds (ms ${unit})`);
for (const [key, list] of times) {
  const sorted = list.slice().sort((a, b) => a - b);
  console.log(
    `${key.padEnd(18)} median ${sorted[sorted.length >> 1].toFixed(1).padStart(7)}  best ${
      sorted[0].toFixed(1).padStart(7)
    }   [${list.map((x) => x.toFixed(0)).join(" ")}]`,
  );
}
// Per round, A's time over B's (rounds alternate which checkout goes first): above 1, B was faster.
for (const [key, a] of times) {
  if (!key.endsWith(" A")) continue;
  const b = times.get(key.slice(0, -1) + "B");
  if (b === undefined) continue;
  const ratios = a.map((x, i) => x / b[i]).sort((x, y) => x - y);
  console.log(
    `${key.slice(0, -2).padEnd(18)} A/B per round: median ${
      ratios[ratios.length >> 1].toFixed(3)
    }, B faster in ${ratios.filter((r) => r > 1).length} of ${ratios.length}`,
  );
}
for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
