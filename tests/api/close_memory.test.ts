/**
 * A closed tree lets its records go even while the caller still holds it: a program that
 * reopens into the same variable (`tree = await ZoneTree.open(...)` after `close()`) holds one
 * tree's memory at a time, not two.
 */
import { expect, test } from "bun:test";
import { heapStats } from "bun:jsc";
import { defineKeyspace, memoryFileSystem, ZoneTree } from "../../mod.ts";

test("after close(), the in-memory segments of a still-referenced tree are collectable", async () => {
  const ks = defineKeyspace({ key: "<u32be>", value: "bytes" });
  const tree = await ZoneTree.open({
    dir: "/db",
    keyspace: ks,
    fs: memoryFileSystem(),
    maintenance: "manual",
    mutableSegmentMaxItemCount: 100_000,
  });
  const value = new Uint8Array(200).fill(1);
  for (let b = 0; b < 300; b++) {
    const ops = [];
    for (let i = 0; i < 1000; i++) ops.push({ put: b * 1000 + i, value });
    tree.batch(ops);
  }
  tree.maintenance.moveMutableSegmentForward(); // read-only segments and a mutable one in memory
  for (let i = 0; i < 1000; i++) tree.upsert(1_000_000 + i, value);
  Bun.gc(true);
  const open = heapStats().heapSize;
  await tree.close(); // the records stay in the WALs (small: the values compress), not merged
  Bun.gc(true);
  const closed = heapStats().heapSize;
  // 301,000 records of 204 bytes (~60 MB) were held in memory segments.
  expect(open - closed).toBeGreaterThan(40 * 2 ** 20);
  expect(() => tree.get(1)).toThrow(/closed/);
});
