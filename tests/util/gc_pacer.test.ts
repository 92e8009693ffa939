// src/util/gc_pacer.ts: one young-generation collection per PACE_BYTES of copies handed out,
// found in Bun (bun:jsc) and absent elsewhere; the read paths count what they return, batches their ops.
import { afterEach, expect, test } from "bun:test";
import { defineKeyspace, memoryFileSystem, ZoneTree } from "../../mod.ts";
import { pace, PACE_BYTES, setGcPacing } from "../../src/util/gc_pacer.ts";

afterEach(() => void setGcPacing(true));

/** A tree in memory with 4-byte keys and bytes values. */
function openTree() {
  return ZoneTree.open({
    dir: "/db",
    fs: memoryFileSystem(),
    keyspace: defineKeyspace({ key: "<u32be>", value: "bytes" }),
  });
}

type Tree = Awaited<ReturnType<typeof openTree>>;
/** 4,000 bytes: 5,000 of them are ~20 MB, past PACE_BYTES. */
const VALUE = new Uint8Array(4000);

/**
 * Runs `body` on a tree holding keys 0..records-1 with {@link VALUE}, collections counted from
 * then on (`collections()`); closes the tree after.
 */
async function withCountedTree(
  records: number,
  body: (tree: Tree, collections: () => number) => void,
): Promise<void> {
  let collections = 0;
  const tree = await openTree();
  try {
    for (let i = 0; i < records; i++) tree.upsert(i, VALUE);
    setGcPacing(true, () => collections++);
    body(tree, () => collections);
  } finally {
    await tree.close();
  }
}

test("finds bun:jsc's young-generation collection under Bun, and runs it", () => {
  setGcPacing(true);
  expect(setGcPacing(true)).toBe(true);
  pace(PACE_BYTES); // the real collection: must not throw
});

test("collects once each time the bytes counted pass PACE_BYTES, and not when off", () => {
  let collections = 0;
  setGcPacing(true, () => collections++);
  pace(PACE_BYTES - 1);
  expect(collections).toBe(0);
  pace(1);
  expect(collections).toBe(1);
  for (let i = 0; i < 10; i++) pace(PACE_BYTES / 4);
  expect(collections).toBe(3);
  expect(setGcPacing(false)).toBe(true);
  pace(10 * PACE_BYTES);
  expect(collections).toBe(3);
  expect(setGcPacing(true, () => collections++)).toBe(false);
});

test("ranges and gets count the copies they return", async () => {
  await withCountedTree(5000, (tree, collections) => {
    // ~20 MB of values per pass: at least one collection each, none from writes.
    tree.upsert(5000, VALUE);
    expect(collections()).toBe(0);
    let n = 0;
    for (const [, v] of tree.range()) n += v.length;
    expect(n).toBe(5001 * 4000);
    expect(collections()).toBeGreaterThanOrEqual(1);
    const afterRange = collections();
    for (let i = 0; i < 5000; i++) expect(tree.get(i)?.length).toBe(4000);
    expect(collections()).toBeGreaterThan(afterRange);
    const afterGets = collections();
    for (const _ of tree.keys()) n++; // keys only: ~100 bytes each, 5,000 of them
    expect(collections()).toBe(afterGets);
  });
});

test("an iterator counts the keys and values it hands out", async () => {
  await withCountedTree(5000, (tree, collections) => {
    // Stepping without reading keys or values hands nothing out.
    using it = tree.iterator();
    let n = 0;
    while (it.next()) n++;
    expect(n).toBe(5000);
    expect(collections()).toBe(0);
    // ~20 MB of values: at least one collection.
    it.seek(0);
    let bytes = 0;
    while (it.next()) bytes += (it.value as Uint8Array).length;
    expect(bytes).toBe(5000 * 4000);
    expect(collections()).toBeGreaterThanOrEqual(1);
  });
});

test("a batch counts its ops (made for the call), single writes do not", async () => {
  await withCountedTree(0, (tree, collections) => {
    // ~20 MB written one by one: no collection.
    for (let i = 0; i < 5000; i++) tree.upsert(i, VALUE);
    expect(collections()).toBe(0);
    // ~4 MB of ops in one batch: counted, short of PACE_BYTES.
    const ops = Array.from({ length: 1000 }, (_, i) => ({ put: i, value: VALUE }));
    tree.batch(ops);
    expect(collections()).toBe(0);
    // Four more pass 16 MiB together (5 x 4.1 MB): one collection.
    for (let b = 0; b < 4; b++) tree.batch(ops);
    expect(collections()).toBe(1);
    // Deletes count their keys and op objects: 1,000 of them are far from PACE_BYTES.
    tree.batch(ops.map((op) => ({ del: op.put })));
    expect(collections()).toBe(1);
    expect(tree.get(0)).toBeUndefined();
  });
});
