/**
 * What a time-series query costs in memory, by shape: 1,000 sensors x 1,000 readings
 * (`sensor:<str>:ts:<u64be>`, 16-byte values, loaded time-first without yielding, so the data
 * stays in the in-memory segments as in the peer harness), then 1,000 random sensors per shape:
 * the latest reading, the first reading of a one-hour window (both `limit: 1`: the fixed cost of
 * a query), the latest 100, and the whole window. Prints microseconds per query per round.
 *
 *   bun bench/ts_query_bench.ts            # 4 rounds; REPS=<n> for more, GC=1 to collect first
 *   ONLY="window limit1" bun bench/ts_query_bench.ts
 *   WARM=0 bun bench/ts_query_bench.ts     # arena and leaves in plain ArrayBuffers (no helper)
 */
import { defineKeyspace, ZoneTree } from "../mod.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Prng } from "../src/util/prng.ts";
import { setHelperThread } from "../src/util/helper_thread.ts";
if (process.env.WARM === "0") setHelperThread({ warm: false });
const S = 1000, R = 1000, BASE = 1_700_000_000_000, STEP = 60_000;
const names = Array.from({ length: S }, (_, s) => `sensor-${String(s).padStart(6, "0")}`);
const dir = mkdtempSync(join(tmpdir(), "zt-q-"));
const tree = await ZoneTree.open({ dir, keyspace: defineKeyspace({ key: "sensor:<str>:ts:<u64be>", value: "bytes" }) });
const v = new Uint8Array(16);
for (let r = 0; r < R; r++) {
  const b = [];
  for (let s = 0; s < S; s++) b.push({ put: [names[s], BASE + r * STEP] as [string, number], value: v });
  tree.batch(b);
}
console.log(`${tree.stats().readOnlySegmentsCount} read-only segments + the mutable one`);
const p = new Prng(5);
const ids = Array.from({ length: 1000 }, () => names[p.int(S)]);
const starts = ids.map(() => BASE + p.int(R - 60) * STEP);
const shapes: Record<string, (i: number) => object> = {
  "latest limit1": (i) => ({ gte: [ids[i]], lte: [ids[i]], reverse: true, limit: 1 }),
  "window limit1": (i) => ({ gte: [ids[i], starts[i]], lt: [ids[i], starts[i] + 3_600_000], limit: 1 }),
  "latest-100": (i) => ({ gte: [ids[i]], lte: [ids[i]], reverse: true, limit: 100 }),
  "window": (i) => ({ gte: [ids[i], starts[i]], lt: [ids[i], starts[i] + 3_600_000] }),
};
for (let rep = 0; rep < Number(process.env.REPS ?? 4); rep++) {
  const line: string[] = [];
  for (const [name, f] of Object.entries(shapes).filter(([n]) => !process.env.ONLY || n === process.env.ONLY)) {
    if (process.env.GC) (globalThis as { Bun?: { gc(full: boolean): void } }).Bun?.gc(true);
    const t = performance.now(); let n = 0;
    n = QUERIES(f, n);
    line.push(`${name} ${((performance.now() - t)).toFixed(1)} us/query (${n / 1000} records)`);
  }
  console.log(line.join(" | "));
}
await tree.close();
rmSync(dir, { recursive: true, force: true });

function QUERIES(f: (i: number) => object, n: number) { for (let i = 0; i < 1000; i++) for (const _ of tree.range(f(i) as never)) n++; return n; }
