/**
 * Child of worker_merge.test.ts: opens a tree on local files, runs a merge in the pooled merge
 * Worker, has a read-only segment laid out again on the buffer helper, writes large batches
 * until one has synced on the sync helper (which then waits in its event loop for the next
 * request), and ends without closing the tree. The process must
 * exit by itself (an idle pooled Worker and the helpers are unref'd), in Bun and in Deno.
 * Prints the worker merge count it saw, whether a helper sync ran and whether a relayout landed.
 *
 *   bun|deno run -A unclosed_worker_child.ts <dir>
 */
import { defineKeyspace, ZoneTree } from "../../mod.ts";
import { TreeEngine } from "../../src/engine/tree_engine.ts";
import { workerMergeCounts } from "../../src/merge/worker_merge.ts";
import { helperStats } from "../../src/util/helper_thread.ts";

TreeEngine.workerMergeMinRecords = 0;
const dir = (globalThis as { Deno?: { args: string[] } }).Deno?.args[0] ?? process.argv[2];
const tree = await ZoneTree.open({
  dir,
  keyspace: defineKeyspace({ key: "<u32be>", value: "utf8" }),
  maintenance: "manual",
  wal: "sync",
});
for (let i = 0; i < 2000; i++) tree.upsert(i, `v${i}`);
tree.maintenance.moveMutableSegmentForward();
await tree.maintenance.merge();
// A read-only segment written out of key order and then read is laid out again on the buffer
// helper (which then collects its heap in a later turn of its event loop).
const keys = Array.from({ length: 10_000 }, (_, i) => 1_000_000 + ((i * 7919) % 10_000));
for (let b = 0; b < keys.length; b += 500) {
  tree.batch(keys.slice(b, b + 500).map((k) => ({ put: k, value: "r" })));
}
tree.maintenance.moveMutableSegmentForward();
tree.get(keys[0]);
const relayoutUntil = performance.now() + 10_000;
while (helperStats().relayoutsDone === 0 && performance.now() < relayoutUntil) {
  await new Promise((r) => setTimeout(r, 5));
  for (const _ of tree.range({ limit: 1 })) break;
}
// Batches of 200 ops sync on the helper (under Deno once it has opened the log by path).
const until = performance.now() + 10_000;
for (let b = 0; helperStats().syncsStarted === 0 && performance.now() < until; b++) {
  tree.batch(Array.from({ length: 200 }, (_, i) => ({ put: 10_000 + i, value: `b${b}` })));
  await new Promise((r) => setTimeout(r, 5));
}
console.log(JSON.stringify({
  done: workerMergeCounts.done,
  started: workerMergeCounts.started,
  helperSynced: helperStats().syncsStarted > 0,
  relaidOut: helperStats().relayoutsDone > 0,
}));
// No close(): the process ends when nothing else is pending.
