/**
 * `tree.range()` and `tree.keys()` return a hand-written iterator (src/api/tree_iterator.ts)
 * instead of a generator. These tests pin down the generator behaviour it must keep: laziness,
 * ending after an error, `return()`/`throw()`/`break`, a closed tree between two records, the
 * iterator helpers and disposal, and the same records as the cursor model, in memory and on disk.
 */
import { describe, expect, test } from "bun:test";
import { defineKeyspace, memoryFileSystem, ZoneTree } from "../../mod.ts";

const keyspace = defineKeyspace({ key: "<u32be>", value: "utf8" });

async function open(count: number, onDisk = false) {
  const tree = await ZoneTree.open({
    dir: "/db",
    keyspace,
    fs: memoryFileSystem(),
    maintenance: "manual",
  });
  for (let i = 0; i < count; i++) tree.upsert(i, `v${i}`);
  if (onDisk) {
    tree.maintenance.moveMutableSegmentForward();
    await tree.maintenance.merge();
  }
  return tree;
}

describe("range iterator", () => {
  for (const onDisk of [false, true]) {
    const where = onDisk ? "on disk" : "in memory";

    test(`range and keys yield every record in order, both directions (${where})`, async () => {
      const tree = await open(500, onDisk);
      tree.forceDelete(7);
      const expected = Array.from({ length: 500 }, (_, i) => i).filter((i) => i !== 7);
      expect([...tree.range()]).toEqual(expected.map((i) => [i, `v${i}`]));
      expect([...tree.range({ reverse: true })]).toEqual(
        expected.slice().reverse().map((i) => [i, `v${i}`]),
      );
      expect([...tree.keys({ gte: 100, lt: 110 })]).toEqual(expected.slice(99, 109));
      expect([...tree.keys({ reverse: true, limit: 3 })]).toEqual([499, 498, 497]);
      await tree.close();
    });
  }

  test("nothing is checked or opened until the first next(); an error there ends it", async () => {
    const tree = await open(10);
    const it = tree.range({ limit: -1 });
    expect(() => it.next()).toThrow(expect.objectContaining({ code: "INVALID_OPTION" }));
    expect(it.next()).toEqual({ value: undefined, done: true });
    await tree.close();
    // Made on a closed tree but never pulled: no error, as with a generator.
    tree.keys();
  });

  test("break, return() and throw() end it for good", async () => {
    const tree = await open(10, true);
    const it = tree.keys();
    for (const k of it) if (k === 2) break;
    expect(it.next()).toEqual({ value: undefined, done: true });

    const r = tree.range();
    expect(r.next()).toEqual({ value: [0, "v0"], done: false });
    expect(r.return()).toEqual({ value: undefined, done: true });
    expect(r.next().done).toBe(true);

    const t = tree.range();
    t.next();
    const boom = new Error("boom");
    expect(() => t.throw(boom)).toThrow(boom);
    expect(t.next().done).toBe(true);
    await tree.close();
  });

  test("a tree closed between two records is CLOSED on the next step, then done", async () => {
    const tree = await open(10, true);
    const it = tree.range();
    expect(it.next().value).toEqual([0, "v0"]);
    await tree.close();
    expect(() => it.next()).toThrow(expect.objectContaining({ code: "CLOSED" }));
    expect(it.next().done).toBe(true);
  });

  test("it is its own iterable, with the iterator helpers and disposal of a generator", async () => {
    const tree = await open(10);
    const it = tree.keys();
    expect(it[Symbol.iterator]()).toBe(it);
    expect(tree.keys().take(3).toArray()).toEqual([0, 1, 2]);
    expect(tree.range({ gte: 5 }).map(([, v]) => v).toArray()).toEqual(
      ["v5", "v6", "v7", "v8", "v9"],
    );
    {
      using scoped = tree.keys();
      expect(scoped.next().value).toBe(0);
      it.next();
      it[Symbol.dispose]();
      expect(it.next().done).toBe(true);
    }
    await tree.close();
  });
});
