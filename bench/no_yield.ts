/**
 * A bulk load that never yields to the event loop, against one that yields every 100 batches:
 * prints read-only segments and RSS every 500,000 records, then how long the merges take once
 * the loop awaits. Merges start on the event loop, so without yields the read-only segments
 * (and memory) grow with the data.
 *
 *   bun bench/no_yield.ts            # never yields
 *   YIELD=100 bun bench/no_yield.ts  # awaits a timer every 100 batches
 *   MERGE_AT=4 bun bench/no_yield.ts # awaits a merge whenever 4 read-only segments wait
 *   N=10000000 bun bench/no_yield.ts # more records (default 3,000,000)
 */
import { defineKeyspace, ZoneTree } from "../mod.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
const dir = mkdtempSync(join(tmpdir(), "zt-ny-"));
const tree = await ZoneTree.open({ dir, keyspace: defineKeyspace({ key: "<u64be>", value: "bytes" }) });
const v = new Uint8Array(100);
const N = Number(process.env.N ?? 3_000_000);
const YIELD = Number(process.env.YIELD ?? 0);
const MERGE_AT = Number(process.env.MERGE_AT ?? 0);
const start = performance.now();
for (let i = 0; i < N; i += 1000) {
  const b = [];
  for (let j = i; j < i + 1000; j++) b.push({ put: j, value: v });
  tree.batch(b);
  if (MERGE_AT > 0 && tree.stats().readOnlySegmentsCount >= MERGE_AT) await tree.maintenance.merge();
  if (YIELD > 0 && (i / 1000) % YIELD === YIELD - 1) await new Promise((r) => setTimeout(r, 0));
  if ((i + 1000) % 500_000 === 0) console.log(i + 1000, "readOnly", tree.stats().readOnlySegmentsCount, "rss", Math.round(process.memoryUsage().rss / 2 ** 20), "MB");
}
console.log("loaded in", Math.round(performance.now() - start), "ms");
const t = performance.now();
while (tree.stats().readOnlySegmentsCount > 0) await new Promise((r) => setTimeout(r, 10));
console.log("after yielding", Math.round(performance.now() - t), "ms: readOnly", tree.stats().readOnlySegmentsCount);
await tree.close();
rmSync(dir, { recursive: true, force: true });
