/**
 * What a full scan of in-memory records costs by how many layers hold them and in what order
 * they arrived: 1,000,000 records (16-byte big-endian counter keys, 100-byte values) loaded in
 * batches of 1,000 without yielding (so no merge runs, as in the peer harness), then full forward
 * `range()` passes in the same process. Prints M records/s per pass; the first pass includes the
 * compiles of the scan's code for that shape. Before the passes, reads (ranges of one record,
 * without yielding) start the relayout of the read-only segments and take it in: after such a
 * load, the read-only segments and the mutable one (moved forward at the first read) are laid
 * out together and read as one combined run (see `TreeEngine`'s `#combineStep`).
 *
 *   bun bench/scan_layers.ts                  # random order, default segments
 *   RELAYOUT=0 bun bench/scan_layers.ts       # no relayouts: four layers merged per record
 *   ORDER=seq bun bench/scan_layers.ts        # loaded in key order
 *   ONE=1 bun bench/scan_layers.ts            # one 1 GiB mutable segment (in arrival order)
 *   PASSES=10 bun bench/scan_layers.ts
 *
 * Seen on the 2-core VM (2026-12-07 21:30, 2225a37, first pass, then the others; a slow stretch
 * of the VM): random order 4.11-4.67M, then 4.02-5.78M (two runs); without relayouts 1.97M, then
 * 1.84-2.56M; key order 3.36-5.15M, then 3.75-6.56M; one mutable segment 2.69-3.25M, then
 * 3.36-4.04M. An hour earlier, faster: random order 6.44-6.98M first, 7.31-8.02M after. Before
 * any relayout (session 23): four layers merged, 2.35-3.02M.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defineKeyspace, ZoneTree } from "../mod.ts";
import { Prng } from "../src/util/prng.ts";
import { helperStats, setHelperThread } from "../src/util/helper_thread.ts";

const N = 1_000_000;
const ordered = process.env.ORDER === "seq";
const oneLayer = process.env.ONE === "1";
const passes = Number(process.env.PASSES ?? 5);
if (process.env.RELAYOUT === "0") setHelperThread({ relayout: false });

const dir = mkdtempSync(join(tmpdir(), "zt-scan-layers-"));
const tree = await ZoneTree.open({
  dir,
  keyspace: defineKeyspace({ key: "<bytes:16>", value: "bytes" }),
  ...(oneLayer ? { mutableSegmentMaxBytes: 1 << 30, mutableSegmentMaxItemCount: 2_000_000 } : {}),
});
const order = Array.from({ length: N }, (_, i) => i);
if (!ordered) {
  const prng = new Prng(5);
  for (let i = N - 1; i > 0; i--) {
    const j = prng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
}
const values = new Uint8Array(N * 100);
for (let i = 0; i < values.length; i++) values[i] = Math.imul(i, 2654435761) >>> 24;
const loadStart = performance.now();
for (let b = 0; b < N; b += 1000) {
  const ops = [];
  for (let i = b; i < b + 1000; i++) {
    const key = new Uint8Array(16);
    new DataView(key.buffer).setUint32(12, order[i]);
    ops.push({ put: key, value: values.subarray(order[i] * 100, order[i] * 100 + 100) });
  }
  tree.batch(ops);
}
const loadMs = performance.now() - loadStart;
// Reads (a range of one record each) start the relayouts, one step per read, and take them in,
// without yielding in between: no merge starts, as in the peer harness, whose reads never yield.
const before = helperStats().relayoutsStarted;
const waitStart = performance.now();
for (let reads = 1;; reads++) {
  if (performance.now() - waitStart > 30_000) throw new Error("relayouts did not land in 30 s");
  for (const _ of tree.range({ limit: 1 })) break;
  const { relayoutsStarted, relayoutsDone } = helperStats();
  if (relayoutsStarted === before ? reads >= 16 : relayoutsDone === relayoutsStarted) break;
}
// The steps after the result landed (one segment pointed at its new places per read).
for (let i = 0; i < 16; i++) for (const _ of tree.range({ limit: 1 })) break;
const layers = tree.stats().readOnlySegmentsCount + 1;
const waited = performance.now() - waitStart;
const rates: string[] = [];
for (let p = 0; p < passes; p++) {
  const start = performance.now();
  let n = 0;
  for (const _ of tree.range({})) n++;
  if (n !== N) throw new Error(`scanned ${n} records, expected ${N}`);
  rates.push((N / (performance.now() - start) / 1000).toFixed(2));
}
const { relayoutsDone } = helperStats();
console.log(
  `${ordered ? "key order" : "random order"}, ${layers} segment(s): ${rates.join(" ")} M records/s ` +
    `(load ${(N / loadMs / 1000).toFixed(2)} M/s; ${relayoutsDone} relayouts, landed ${waited.toFixed(0)} ms ` +
    "after the first read; each pass after that)",
);
await tree.close();
rmSync(dir, { recursive: true, force: true });
