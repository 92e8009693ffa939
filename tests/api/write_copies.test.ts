/**
 * A write keeps the bytes it was given at the moment of the call: with the `"bytes"` value codec
 * (and, for keys, a layout of one ascending `<bytes:N>` field)
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

describe("keys of a one-field <bytes:N> layout are used as given, never kept", () => {
  const raw = defineKeyspace({ key: "<bytes:4>", value: "bytes" });
  for (const wal of ["async-compressed", "sync"] as const) {
    test(`reusing the key array after upsert, tryAdd, batch, tryDelete and forceDelete changes nothing stored (wal ${wal})`, async () => {
      const fs = memoryFileSystem();
      const tree = await ZoneTree.open({ dir: "/db", keyspace: raw, fs, wal, maintenance: "manual" });
      const key = new Uint8Array(4);
      const at = (i: number) => Uint8Array.of(0, 0, i >> 8, i & 255);
      const want = new Map<number, number | undefined>();
      for (let i = 0; i < 400; i++) {
        key.set(at(i));
        const v = Uint8Array.of(i & 255);
        switch (i % 5) {
          case 0: tree.upsert(key, v); want.set(i, i & 255); break;
          case 1: tree.tryAdd(key, v); want.set(i, i & 255); break;
          case 2: tree.batch([{ put: key, value: v }]); want.set(i, i & 255); break;
          case 3: tree.upsert(key, v); key.set(at(i)); tree.tryDelete(key); want.set(i, undefined); break;
          case 4: tree.batch([{ put: key, value: v }, { del: at(i) }]); key.set(at(i)); tree.forceDelete(key); tree.upsert(at(i), v); want.set(i, i & 255); break;
        }
        key.fill(0xee); // the caller reuses its array
      }
      const check = (t: typeof tree) => {
        for (const [i, v] of want) expect(t.get(at(i))?.[0]).toBe(v);
        expect(t.get(Uint8Array.of(0xee, 0xee, 0xee, 0xee))).toBeUndefined();
        expect(t.count()).toBe([...want.values()].filter((v) => v !== undefined).length);
      };
      check(tree);
      tree.maintenance.moveMutableSegmentForward();
      await tree.maintenance.merge();
      check(tree);
      await tree.close();
      const reopened = await ZoneTree.open({ dir: "/db", keyspace: raw, fs, wal });
      check(reopened);
      await reopened.close();
    });
  }

  test("get, getMany and has take the key array as given and keep nothing of it between reads", async () => {
    const tree = await ZoneTree.open({ dir: "/db", keyspace: raw, fs: memoryFileSystem(), maintenance: "manual" });
    const at = (i: number) => Uint8Array.of(0, 1, i >> 8, i & 255);
    for (let i = 0; i < 300; i += 2) tree.upsert(at(i), Uint8Array.of(i & 255, 7));
    const key = new Uint8Array(4);
    const check = () => {
      for (let i = 0; i < 300; i++) {
        key.set(at(i)); // one array, rewritten before each read
        const v = tree.get(key);
        expect(v === undefined ? undefined : Array.from(v)).toEqual(i % 2 === 0 ? [i & 255, 7] : undefined);
        expect(tree.has(key)).toBe(i % 2 === 0);
        expect(Array.from(key)).toEqual(Array.from(at(i))); // the read left the key as it was
      }
      const keys = [at(4), at(5), at(6)];
      expect(tree.getMany(keys).map((v) => v?.[0])).toEqual([4, undefined, 6]);
      expect(keys.map((k) => Array.from(k))).toEqual([at(4), at(5), at(6)].map((k) => Array.from(k)));
    };
    check();
    tree.maintenance.moveMutableSegmentForward(); // a frozen segment (hash index) ...
    check();
    await tree.maintenance.merge(); // ... and a disk segment
    check();
    await tree.close();
  });

  test("a key of the wrong length or type is still a KeyEncodingError naming it, nothing written", async () => {
    const tree = await ZoneTree.open({ dir: "/db", keyspace: raw, fs: memoryFileSystem() });
    expect(() => tree.upsert(new Uint8Array(5), new Uint8Array(1))).toThrow("expected 4 bytes, got 5");
    expect(() => tree.batch([{ put: new Uint8Array(4), value: new Uint8Array(1) }, { put: "x" as never, value: new Uint8Array(1) }])).toThrow("Uint8Array");
    expect(tree.count()).toBe(0);
    // Tuple and object forms still go through the codec.
    tree.upsert([Uint8Array.of(1, 2, 3, 4)] as never, Uint8Array.of(9));
    expect(tree.get(Uint8Array.of(1, 2, 3, 4))).toEqual(Uint8Array.of(9));
    await tree.close();
  });
});

describe("batch columns", () => {
  test("a batch written from a listener inside another batch is its own, and both replay", async () => {
    // batch() reuses one set of columns; a "segment-moved" listener runs inside the outer
    // batch's write (the segment moves forward after it is applied) and writes a batch too.
    const fs = memoryFileSystem();
    const open = () =>
      ZoneTree.open({ dir: "/db", keyspace: ks, fs, wal: "sync", mutableSegmentMaxItemCount: 10 });
    const tree = await open();
    let inner = -1;
    tree.events.on("segment-moved", () => {
      if (inner === -1) inner = tree.batch([{ put: 999, value: Uint8Array.of(9) }]);
    });
    const outer = tree.batch(
      Array.from({ length: 20 }, (_, i) => ({ put: i, value: Uint8Array.of(i) })),
    );
    expect(outer).toBe(20);
    expect(inner).toBe(21); // one op: the outer batch's 20 were not written again
    expect(tree.stats().lastOpIndex).toBe(21);
    tree.batch([{ put: 1000, value: Uint8Array.of(1) }, { del: 3 }]);
    expect(tree.stats().lastOpIndex).toBe(23);
    const check = (t: typeof tree) => {
      expect([...t.keys()]).toEqual([...Array.from({ length: 20 }, (_, i) => i).filter((i) => i !== 3), 999, 1000]);
      for (let i = 0; i < 20; i++) if (i !== 3) expect([...t.get(i)!]).toEqual([i]);
      expect([...t.get(999)!]).toEqual([9]);
    };
    check(tree);
    await tree.close();
    const reopened = await open();
    check(reopened);
    expect(reopened.stats().lastOpIndex).toBe(23);
    await reopened.close();
  });

  test("a batch that fails while encoding writes nothing, and the next batch is whole", async () => {
    const tree = await ZoneTree.open({ dir: "/db", keyspace: ks, fs: memoryFileSystem() });
    expect(() =>
      tree.batch([{ put: 1, value: Uint8Array.of(1) }, { put: "x" as never, value: Uint8Array.of(2) }])
    ).toThrow();
    expect(tree.stats().lastOpIndex).toBe(0);
    expect(tree.batch([{ put: 2, value: Uint8Array.of(2) }])).toBe(1);
    expect([...tree.keys()]).toEqual([2]);
    await tree.close();
  });
});
