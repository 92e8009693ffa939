/**
 * Snapshots see exactly the records present at their creation; transactions detect conflicts
 * between racing async tasks and lose no update.
 */
import { describe, expect, test } from "bun:test";
import { defineKeyspace, memoryFileSystem, TransactionConflictError, ZoneTree } from "../../mod.ts";

const ks = defineKeyspace({ key: "k:<u32be>", value: "u32be" });

async function open(extra: Record<string, unknown> = {}) {
  return await ZoneTree.open({
    dir: "/db",
    keyspace: ks,
    fs: memoryFileSystem(),
    mutableSegmentMaxItemCount: 50,
    multipartMinItemCount: 10,
    multipartMaxItemCount: 40,
    ...extra,
  });
}

describe("snapshot iterators", () => {
  test("a snapshot range sees the records present at its creation, whatever happens after", async () => {
    const tree = await open();
    for (let i = 0; i < 300; i++) tree.upsert(i, i);
    const it = tree.range({ snapshot: true });
    const first = it.next(); // the snapshot is taken when iteration starts
    expect(first.value).toEqual([0, 0]);
    for (let i = 0; i < 300; i += 2) tree.forceDelete(i);
    tree.deleteRange({ gte: 100, lt: 200 });
    for (let i = 300; i < 400; i++) tree.upsert(i, i);
    tree.upsert(1, 999);
    tree.maintenance.moveMutableSegmentForward();
    await tree.maintenance.merge();
    const rest = [...it];
    expect(rest.length).toBe(299);
    expect(rest.map(([k]) => k)).toEqual(Array.from({ length: 299 }, (_, i) => i + 1));
    expect(rest[0]).toEqual([1, 1]);
    // The live view has all the changes.
    expect(tree.get(1)).toBe(999);
    expect(tree.get(150)).toBeUndefined();
    expect(tree.get(2)).toBeUndefined();
    expect(tree.count()).toBe(100 + 100); // odd keys below 300 outside [100,200), and 300..399
    await tree.close();
  });

  test("a snapshot iterator pins disk segments that a merge replaces", async () => {
    const tree = await open();
    for (let i = 0; i < 200; i++) tree.upsert(i, i);
    tree.maintenance.moveMutableSegmentForward();
    await tree.maintenance.merge();
    using it = tree.iterator({ snapshot: true });
    for (let i = 0; i < 200; i++) tree.upsert(i, i + 1000);
    tree.maintenance.moveMutableSegmentForward();
    await tree.maintenance.merge();
    let n = 0;
    while (it.next()) {
      expect(it.value).toBe(it.key as number);
      n++;
    }
    expect(n).toBe(200);
    expect(tree.get(5)).toBe(1005);
    await tree.close();
  });
});

describe("kept iterators", () => {
  /** Every key from `from` on that a seek to `from` reaches, then next() to the end. */
  function seekAll(it: { seek(k: number): void; next(): boolean; readonly key: unknown; readonly value: unknown }, from: number) {
    it.seek(from);
    const out: [unknown, unknown][] = [];
    while (it.next()) out.push([it.key, it.value]);
    return out;
  }

  test("a kept default iterator's seek sees writes made in segments added after it was made", async () => {
    const tree = await open();
    for (let i = 0; i < 40; i++) tree.upsert(i, i);
    using it = tree.iterator();
    expect(seekAll(it, 0).length).toBe(40);
    // Writes past the mutable segment's size move it forward: the new records live in a
    // segment the iterator's cursor was not opened over.
    for (let i = 40; i < 200; i++) tree.upsert(i, i);
    tree.upsert(3, 33);
    tree.maintenance.moveMutableSegmentForward();
    tree.upsert(500, 5);
    const after = seekAll(it, 0);
    expect(after.length).toBe(201);
    expect(after[3]).toEqual([3, 33]);
    expect(after[200]).toEqual([500, 5]);
    // A merge replaces the segments it read: the next seek reads the merged ones, same records.
    await tree.maintenance.merge();
    tree.forceDelete(7);
    expect(seekAll(it, 5).map(([k]) => k).slice(0, 3)).toEqual([5, 6, 8]);
    // Reverse, and the first next() without a seek.
    using rev = tree.iterator({ reverse: true });
    tree.maintenance.moveMutableSegmentForward();
    tree.upsert(900, 9);
    expect(rev.next()).toBe(true);
    expect(rev.key).toBe(900);
    await tree.close();
  });

  test("a snapshot iterator's seek does not reopen over later segments", async () => {
    const tree = await open();
    for (let i = 0; i < 40; i++) tree.upsert(i, i);
    using it = tree.iterator({ snapshot: true });
    for (let i = 40; i < 200; i++) tree.upsert(i, i);
    tree.upsert(3, 33);
    tree.maintenance.moveMutableSegmentForward();
    const seen = seekAll(it, 0);
    expect(seen.length).toBe(40);
    expect(seen[3]).toEqual([3, 3]);
    await tree.close();
  });
});

describe("transactions", () => {
  test("read-your-own-writes, commit as one record, rollback drops writes", async () => {
    const tree = await open();
    tree.upsert(1, 10);
    const tx = tree.transaction();
    expect(tx.get(1)).toBe(10);
    tx.upsert(1, 11);
    tx.upsert(2, 20);
    expect(tx.get(1)).toBe(11);
    tx.delete(2);
    expect(tx.get(2)).toBeUndefined();
    expect(tree.get(1)).toBe(10);
    const op = tx.commit();
    expect(op).toBe(tree.lastOpIndex);
    expect(tree.get(1)).toBe(11);
    const tx2 = tree.transaction();
    tx2.upsert(3, 30);
    tx2.rollback();
    expect(tree.get(3)).toBeUndefined();
    expect(() => tx2.commit()).toThrow();
    await tree.close();
  });

  test("a key written by someone else since the transaction read it is a conflict", async () => {
    const tree = await open();
    tree.upsert(1, 1);
    const tx = tree.transaction();
    tx.get(1);
    tree.upsert(1, 2);
    tx.upsert(1, 3);
    expect(() => tx.commit()).toThrow(TransactionConflictError);
    expect(tree.get(1)).toBe(2);
    // deleteRange over a read key conflicts too.
    const tx2 = tree.transaction();
    tx2.get(1);
    tree.deleteRange({ gte: 0, lt: 10 });
    tx2.upsert(5, 5);
    try {
      tx2.commit();
      throw new Error("expected a conflict");
    } catch (e) {
      expect((e as TransactionConflictError).code).toBe("TRANSACTION_CONFLICT");
    }
    await tree.close();
  });

  test("20 async workers incrementing one counter through transactions lose no update", async () => {
    const tree = await open({ maintenance: "auto" });
    tree.upsert(0, 0);
    let conflicts = 0;
    const worker = async (increments: number) => {
      for (let done = 0; done < increments;) {
        const tx = tree.transaction();
        const v = tx.get(0)!;
        await new Promise((r) => setTimeout(r, Math.random() * 2)); // other tasks run here
        tx.upsert(0, v + 1);
        try {
          tx.commit();
          done++;
        } catch (e) {
          if (!(e instanceof TransactionConflictError)) throw e;
          conflicts++;
        }
      }
    };
    await Promise.all(Array.from({ length: 20 }, () => worker(10)));
    expect(tree.get(0)).toBe(200);
    expect(conflicts).toBeGreaterThan(0);
    await tree.close();
  });
});
