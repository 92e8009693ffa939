/**
 * Child of worker_merge.test.ts: opens a tree on local files, runs a merge in the pooled merge
 * Worker, and ends without closing the tree. The process must exit by itself (an idle pooled
 * Worker is unref'd), in Bun and in Deno. Prints the worker merge count it saw.
 *
 *   bun|deno run -A unclosed_worker_child.ts <dir>
 */
import { defineKeyspace, ZoneTree } from "../../mod.ts";
import { TreeEngine } from "../../src/engine/tree_engine.ts";
import { workerMergeCounts } from "../../src/merge/worker_merge.ts";

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
console.log(JSON.stringify({ done: workerMergeCounts.done, started: workerMergeCounts.started }));
// No close(): the process ends when nothing else is pending.
