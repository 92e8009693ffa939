/**
 * A write keeps the bytes it was given at the moment of the call: with the `"bytes"` value codec
 * `upsert`, `tryAdd` and `batch` hand the caller's array to the engine without a defensive copy
 * (the WAL and the in-memory segment copy it before the call returns), so changing or reusing
 * the array afterwards must change nothing stored, in memory, on disk, or after a WAL replay.
 * Transactions keep their writes until commit, so they must copy at the call.
 */
import { describe, expect, test } from "bun:test";
import { defineKeyspace, memoryFileSystem, ZoneTree } from "../../mod.ts";

const ks = defineKeyspace({ key: "<u32be>", value: "bytes" });

for (const wal of ["async-compressed", "sync", "none"] as const) {
  describe(`wal ${wal}`, () => {
    test("reusing the value array after upsert, tryAdd and batch changes nothing stored", async () => {
      const fs = memoryFileSystem();
      const tree = await ZoneTree.open({ dir: "/db", keyspace: ks, fs, wal, maintenance: "manual" });
      const buf = new Uint8Array(8);
      const want = new Map<number, number[]>();
      for (let i = 0; i < 300; i++) {
        buf.fill(i & 255);
        if (i % 3 === 0) tree.upsert(i, buf);
        else if (i % 3 === 1) tree.tryAdd(i, buf);
        else tree.batch([{ put: i, value: buf }, { put: i + 100_000, value: buf }]);
        want.set(i, [...buf]);
        if (i % 3 === 2) want.set(i + 100_000, [...buf]);
        buf.fill(0xee); // the caller reuses its array
      }
      const check = (t: typeof tree) => {
        for (const [k, v] of want) expect([...t.get(k)!]).toEqual(v);
      };
      check(tree);
      // Every value handed out is the caller's own copy too (from memory, then from disk).
      const handedOutAreCopies = (t: typeof tree) => {
        t.get(5)![0] ^= 1;
        for (const v of t.getMany([5, 6])) v![0] ^= 1;
        for (const [, v] of t.range({ gte: 5, lte: 6 })) v[0] ^= 1;
        using it = t.iterator();
        it.seek(5);
        it.next();
        it.value![0] ^= 1;
        expect(t.get(5)![0]).toBe(5);
        expect(t.get(6)![0]).toBe(6);
      };
      handedOutAreCopies(tree);
      tree.maintenance.moveMutableSegmentForward();
      handedOutAreCopies(tree);
      await tree.maintenance.merge();
      check(tree);
      handedOutAreCopies(tree);
      await tree.close();
      if (wal !== "none") {
        const reopened = await ZoneTree.open({ dir: "/db", keyspace: ks, fs, wal });
        check(reopened);
        await reopened.close();
      }
    });
  });
}

test("a transaction's buffered write keeps the bytes of the call, not of the commit", async () => {
  const tree = await ZoneTree.open({ dir: "/db", keyspace: ks, fs: memoryFileSystem() });
  const buf = Uint8Array.of(1, 2, 3);
  const tx = tree.transaction();
  tx.upsert(7, buf);
  buf[0] = 99;
  tx.commit();
  expect([...tree.get(7)!]).toEqual([1, 2, 3]);
  await tree.close();
});
