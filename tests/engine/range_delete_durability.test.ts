/**
 * A merge applies only durable range tombstones: a `deleteRange` whose WAL record is not flushed
 * yet (async WAL) must not drop records from a disk segment that a merge publishes meanwhile, or
 * a crash would lose the tombstone but keep its effect (records that were durable would vanish).
 * Found by the replication kill test (tests/systems/replication_kill.test.ts).
 */
import { expect, test } from "bun:test";
import { defineKeyspace, memoryFileSystem, ZoneTree } from "../../mod.ts";

const ks = defineKeyspace({ key: "k:<u32be>", value: "utf8" });

test("a merge does not make an unflushed deleteRange durable: after a crash the records are back", async () => {
  for (const bottom of [false, true]) {
    const fs = memoryFileSystem();
    const options = {
      dir: "/db",
      keyspace: ks,
      fs,
      maintenance: "manual" as const,
      ...(bottom ? { diskSegmentMaxItemCount: 5 } : {}),
    };
    let tree = await ZoneTree.open(options);
    for (let i = 0; i < 10; i++) tree.upsert(i, `v${i}`);
    tree.maintenance.moveMutableSegmentForward();
    await tree.maintenance.merge(); // k0..k9 are in a disk (or bottom) segment: durable
    tree.upsert(100, "x");
    tree.maintenance.moveMutableSegmentForward();
    await tree.flush();
    tree.deleteRange({ gte: 0, lt: 10 }); // in the mutable segment's WAL buffer, not flushed
    expect(tree.count()).toBe(1);
    await tree.maintenance.merge(); // merges the segment holding k100 only
    if (bottom) await tree.maintenance.mergeBottomSegments();
    fs.crash(); // the unflushed deleteRange is lost
    tree = await ZoneTree.open(options);
    expect([...tree.keys()]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 100]);
    await tree.close();
  }
});
