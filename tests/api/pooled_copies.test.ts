/**
 * Deno's mode of handing out bytes (`util/bytes.ts`, RUNTIME_POOLS_COPIES), forced on under Bun:
 * keys encoded by a keyspace and values and `bytes` key fields read back are views into shared
 * 8 KiB slabs. Every such array must still hold bytes of its own: a caller writing into one
 * changes nothing stored and no other array it was given, on every read path (get, getMany,
 * range, keys, iterator, transactions) and from memory and disk alike.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { defineKeyspace, memoryFileSystem, ZoneTree } from "../../mod.ts";
import { setPooledCopies } from "../../src/util/bytes.ts";

let was = false;
beforeAll(() => {
  was = setPooledCopies(true);
});
afterAll(() => {
  setPooledCopies(was);
});

const readings = defineKeyspace({ key: "sensor:<str>:ts:<u64be>", value: "bytes" });
const blobs = defineKeyspace({ key: "<bytes:16>", value: "bytes" });

const valueOf = (s: number, t: number) =>
  Uint8Array.from({ length: 16 + (t % 5) * 40 }, (_, i) => (s * 31 + t * 7 + i) & 0xff);
const idOf = (n: number) =>
  Uint8Array.from({ length: 16 }, (_, i) => (n >> (i % 4 * 8)) & 0xff ^ i);

describe("pooled copies through the public API", () => {
  for (const onDisk of [false, true]) {
    test(`time-series keys and values ${onDisk ? "from a disk segment" : "in memory"}`, async () => {
      const tree = await ZoneTree.open({
        dir: "/db",
        keyspace: readings,
        fs: memoryFileSystem(),
        maintenance: "manual",
      });
      const sensors = Array.from({ length: 20 }, (_, s) => `s-${s}`);
      for (let t = 0; t < 200; t++) {
        tree.batch(sensors.map((s, i) => ({ put: [s, t], value: valueOf(i, t) })));
      }
      if (onDisk) {
        tree.maintenance.moveMutableSegmentForward();
        await tree.maintenance.merge();
        expect(tree.stats().diskSegmentRecordCount).toBe(4000);
      }
      // Everything a range hands out, kept, then scribbled over: the next reads are unchanged.
      const got: Uint8Array[] = [];
      let n = 0;
      for (const [key, value] of tree.range({})) {
        const i = sensors.indexOf(key.sensor);
        expect(Array.from(value)).toEqual(Array.from(valueOf(i, Number(key.ts))));
        got.push(value);
        n++;
      }
      expect(n).toBe(4000);
      expect(got.some((v) => v.byteOffset > 0)).toBe(true); // the pooled path was taken
      for (const v of got) v.fill(0xee);
      for (let i = 0; i < sensors.length; i++) {
        const latest = [...tree.range({ prefix: [sensors[i]], reverse: true, limit: 3 })];
        expect(latest.map(([k]) => Number(k.ts))).toEqual([199, 198, 197]);
        for (const [k, v] of latest) {
          expect(Array.from(v)).toEqual(Array.from(valueOf(i, Number(k.ts))));
        }
        const one = tree.get([sensors[i], 50])!;
        const again = tree.get([sensors[i], 50])!;
        one.fill(1);
        expect(Array.from(again)).toEqual(Array.from(valueOf(i, 50)));
      }
      const many = tree.getMany(sensors.map((s) => [s, 7] as [string, number]));
      many.forEach((v, i) => expect(Array.from(v!)).toEqual(Array.from(valueOf(i, 7))));
      await tree.close();
    });
  }

  test("`<bytes:16>` keys, iterators and transactions", async () => {
    const tree = await ZoneTree.open({
      dir: "/db",
      keyspace: blobs,
      fs: memoryFileSystem(),
      maintenance: "manual",
    });
    for (let n = 0; n < 500; n++) tree.upsert(idOf(n), valueOf(n, n));
    const keys = [...tree.keys({})];
    expect(keys.length).toBe(500);
    const before = keys.map((k) => Array.from(k));
    for (const k of keys) k.fill(0);
    const after = [...tree.keys({})].map((k) => Array.from(k));
    expect(after).toEqual(before);
    {
      using it = tree.iterator();
      const seen: [Uint8Array, Uint8Array][] = [];
      const raw: Uint8Array[] = [];
      while (it.next()) {
        seen.push([it.key, it.value!]);
        raw.push(it.rawKey);
      }
      expect(seen.length).toBe(500);
      expect(raw.map((k) => Array.from(k))).toEqual(before);
      for (const [k, v] of seen) {
        k.fill(9);
        v.fill(9);
      }
      for (const k of raw) k.fill(8);
    }
    const tx = tree.transaction();
    const value = new Uint8Array(24).fill(5);
    tx.upsert(idOf(1000), value);
    value.fill(6); // the transaction keeps what it was given at the call
    tx.get(idOf(3))!.fill(7);
    tx.commit();
    expect(Array.from(tree.get(idOf(1000))!)).toEqual(new Array(24).fill(5));
    for (let n = 0; n < 500; n += 37) {
      expect(Array.from(tree.get(idOf(n))!)).toEqual(Array.from(valueOf(n, n)));
    }
    await tree.close();
  });

  test("struct values, scalar values and escaped `<bytes>` key fields", async () => {
    const ks = defineKeyspace({ key: "blob:<bytes>:n:<u32be>", value: { a: "f64", b: "u32be" } });
    const tree = await ZoneTree.open({ dir: "/db", keyspace: ks, fs: memoryFileSystem() });
    // Zeros in a `<bytes>` field are escaped in the key, so its decode builds a new array.
    const blob = (n: number) =>
      Uint8Array.from({ length: 3 + (n % 7) }, (_, i) => (i + n) % 3 === 0 ? 0 : n);
    for (let n = 0; n < 300; n++) tree.upsert([blob(n), n], { a: n / 4, b: n * 3 });
    const seen = [...tree.range({})];
    expect(seen.length).toBe(300);
    for (const [k] of seen) k.blob.fill(0xab);
    for (const [k, v] of tree.range({})) {
      expect(Array.from(k.blob)).toEqual(Array.from(blob(k.n)));
      expect(v).toEqual({ a: k.n / 4, b: k.n * 3 });
    }
    const scalar = defineKeyspace({ key: "<u32be>", value: "f64" });
    const t2 = await ZoneTree.open({ dir: "/s", keyspace: scalar, fs: memoryFileSystem() });
    for (let n = 0; n < 2000; n++) t2.upsert(n, n + 0.5);
    for (let n = 0; n < 2000; n += 13) expect(t2.get(n)).toBe(n + 0.5);
    await t2.close();
    await tree.close();
  });
});
