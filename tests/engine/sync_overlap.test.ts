/**
 * In the sync WAL modes a large batch's log sync runs on another thread while the batch is applied
 * (`WalWriter.appendBatchOverlapped`): the batch still returns only once it is durable, and a
 * failed sync fails the batch and stops the tree's writes. The provider's fake syncs settle only
 * when waited for, and its `crash()` drops whatever was not synced.
 */
import { expect, test } from "bun:test";
import { defineKeyspace, IOError, ReadOnlyError, ZoneTree } from "../../mod.ts";
import { withTickets } from "../wal/helpers.ts";

const ks = defineKeyspace({ key: "k:<u32be>", value: "utf8" });
const isWal = (path: string) => path.includes("wal");

function batchOf(from: number, n: number): { put: number; value: string }[] {
  return Array.from({ length: n }, (_, i) => ({ put: from + i, value: `v${from + i}` }));
}

for (const wal of ["sync", "sync-compressed"] as const) {
  test(`${wal}: a batch returns once its log is synced, large (sync overlapped) or small; a crash right after keeps it`, async () => {
    const { fs, tickets } = withTickets(Infinity, isWal);
    const options = { dir: "/db", keyspace: ks, fs, wal, maintenance: "manual" as const };
    let tree = await ZoneTree.open(options);
    tree.batch(batchOf(0, 500));
    expect(tickets.length).toBe(1); // the large batch's sync ran "on the helper"
    expect(tickets[0].waited).toBe(true); // and was waited for before the batch returned
    tree.batch(batchOf(500, 127)); // below OVERLAP_MIN_OPS: synced inline
    expect(tickets.length).toBe(1);
    tree.batch(batchOf(627, 128));
    expect(tickets.length).toBe(2);
    fs.crash({ keepUnsynced: "none" }); // no close: only what was synced survives
    tree = await ZoneTree.open(options);
    expect(tree.count()).toBe(755);
    expect(tree.get(754)).toBe("v754");
    await tree.close();
  });
}

test("a failed overlapped sync fails the batch with IOError and stops writes; the acknowledged batches survive a crash", async () => {
  const { fs } = withTickets(2, isWal);
  const options = { dir: "/db", keyspace: ks, fs, wal: "sync" as const, maintenance: "manual" as const };
  let tree = await ZoneTree.open(options);
  tree.batch(batchOf(0, 200));
  let thrown: unknown;
  try {
    tree.batch(batchOf(200, 200));
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(IOError);
  expect((thrown as Error).message).toContain("sync");
  expect(() => tree.upsert(1000, "x")).toThrow(ReadOnlyError);
  expect(() => tree.batch(batchOf(500, 200))).toThrow(ReadOnlyError);
  // Applied while its sync ran, the failed batch is visible until the tree is reopened (README,
  // "After an I/O failure"); writes stay stopped.
  expect(tree.get(350)).toBe("v350");
  fs.crash({ keepUnsynced: "none" });
  tree = await ZoneTree.open(options);
  expect(tree.count()).toBe(200); // the acknowledged batch; the failed one was never synced
  expect(tree.get(199)).toBe("v199");
  expect(tree.get(200)).toBe(undefined);
  await tree.close();
});
