/**
 * The engine's read-only segments written out of key order are laid out again on the helper
 * thread (`BPlusTree.startRelayout`) once they are read, and only then. Through the public API:
 * what ranges and gets return equals a model before the relayouts land, after, after a merge to
 * disk, and after a reopen, for keys held inline and in the arena, overwrites and deletes across
 * segments.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defineKeyspace, ZoneTree } from "../../mod.ts";
import { RELAYOUT_MIN_RECORDS } from "../../src/memory/bplus_tree.ts";
import { combinedRunCursorsOpened } from "../../src/memory/combined_run.ts";
import { helperStats } from "../../src/util/helper_thread.ts";
import { Prng } from "../../src/util/prng.ts";

const keyspace = defineKeyspace({ key: "k:<str>:n:<u32be>", value: "utf8" });
type Key = { k: string; n: number };

const NAMES = ["a", "sensor-with-a-long-name-past-the-inline-bytes", "b", "zz"];

/** Reads (a range of one record) until `done` relayouts have landed in this process. */
async function landed(tree: { range(o: { limit: number }): Iterable<unknown> }, done: number) {
  const deadline = Date.now() + 20_000;
  while (helperStats().relayoutsDone < done) {
    if (Date.now() > deadline) throw new Error("relayouts did not land in 20 s");
    for (const _ of tree.range({ limit: 1 })) break;
    await Bun.sleep(5);
  }
  for (const _ of tree.range({ limit: 1 })) break; // the read that takes the result in
}

/** Point reads until a relayout starts after `started`: how many it took (at most 20). */
function readsUntilStarted(tree: { get(k: Key): unknown }, started: number): number {
  let reads = 0;
  while (helperStats().relayoutsStarted === started && reads < 20) {
    tree.get({ k: "a", n: 2e6 });
    reads++;
  }
  expect(helperStats().relayoutsStarted).toBe(started + 1);
  return reads;
}

/**
 * Writes `records` puts of random keys (of NAMES, numbers below 1e6) in batches of 500, without
 * yielding, and keeps `model` (key id to key and value) up to date.
 */
function loadRandom(
  tree: { batch(ops: { put: Key; value: string }[]): unknown },
  rng: Prng,
  records: number,
  model = new Map<string, { key: Key; value: string }>(),
) {
  for (let b = 0; b < records / 500; b++) {
    const ops = [];
    for (let i = 0; i < 500; i++) {
      const key = { k: NAMES[rng.int(NAMES.length)], n: rng.int(1e6) };
      const value = `v${b}-${i}`;
      ops.push({ put: key, value });
      model.set(`${key.k}/${key.n}`, { key, value });
    }
    tree.batch(ops);
  }
  return model;
}

function sortedModel(model: Map<string, { key: Key; value: string }>) {
  return [...model.values()].sort((x, y) =>
    x.key.k < y.key.k ? -1 : x.key.k > y.key.k ? 1 : x.key.n - y.key.n
  );
}

describe("engine relayout of read-only segments", () => {
  test("a write-only load and its merge start none", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zt-relayout-"));
    try {
      const tree = await ZoneTree.open({ dir, keyspace, maintenance: "manual" });
      const started = helperStats().relayoutsStarted;
      const rng = new Prng(5);
      for (let b = 0; b < 2 * RELAYOUT_MIN_RECORDS / 500; b++) {
        tree.batch(Array.from({ length: 500 }, () => ({ put: { k: "s", n: rng.int(1e9) }, value: "v" })));
      }
      tree.maintenance.moveMutableSegmentForward();
      expect(await tree.maintenance.merge()).toBe("ok");
      expect(helperStats().relayoutsStarted).toBe(started);
      await tree.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("after a write-only stretch, the first read moves a large mutable segment forward to join them (auto maintenance)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zt-relayout-"));
    const per = RELAYOUT_MIN_RECORDS + 1000;
    try {
      const tree = await ZoneTree.open({ dir, keyspace, mutableSegmentMaxItemCount: per });
      const rng = new Prng(0xa0);
      const model = new Map<string, { key: Key; value: string }>();
      const load = (records: number) => loadRandom(tree, rng, records, model);
      // Two segments' worth and most of a third, without yielding (no merge can start).
      load(2 * per + RELAYOUT_MIN_RECORDS + 500);
      const before = tree.stats();
      expect(before.readOnlySegmentsCount).toBe(2);
      expect(before.mutableSegmentRecordCount).toBeGreaterThanOrEqual(RELAYOUT_MIN_RECORDS);
      const started = helperStats().relayoutsStarted;
      const done = helperStats().relayoutsDone;
      const runCursors = combinedRunCursorsOpened();
      expect(tree.get({ k: "a", n: 2e6 })).toBeUndefined();
      const after = tree.stats();
      expect(after.readOnlySegmentsCount).toBe(3);
      expect(after.mutableSegmentRecordCount).toBe(0);
      expect(after.totalRecordCount).toBe(before.totalRecordCount);
      // The next reads list one segment each, and the last of them starts one relayout of all
      // three together.
      expect(readsUntilStarted(tree, started)).toBe(3);
      // Wait without yielding (a merge would take the segments and drop the run).
      const deadline = Date.now() + 20_000;
      while (helperStats().relayoutsDone === done) {
        if (Date.now() > deadline) throw new Error("the relayout did not land in 20 s");
        tree.get({ k: "a", n: 2e6 });
      }
      for (let i = 0; i < 8; i++) tree.get({ k: "a", n: 2e6 }); // the steps that apply it
      // The mutable segment is empty: a range reads the run alone (no merge around it).
      expect(tree.stats().mutableSegmentRecordCount).toBe(0);
      const alone = [...tree.range()];
      expect(alone.length).toBe(model.size);
      const wantAlone = sortedModel(model);
      for (let i = 0; i < alone.length; i += 97) expect(alone[i][1]).toBe(wantAlone[i].value);
      expect(combinedRunCursorsOpened()).toBe(runCursors + 1);
      // A positioned iterator opened now still sees, at its next seek, a write made after it.
      {
        using it = tree.iterator();
        tree.upsert({ k: "0-first", n: 0 }, "written after the iterator");
        it.seek({ k: "0-first", n: 0 });
        expect(it.next()).toBe(true);
        expect(it.value).toBe("written after the iterator");
        model.set("0-first/0", { key: { k: "0-first", n: 0 }, value: "written after the iterator" });
      }
      // Writes go on into the new mutable segment, which ranges merge with the run.
      load(1000);
      const want = sortedModel(model);
      const got = [...tree.range()];
      expect(got.length).toBe(want.length);
      for (let i = 0; i < want.length; i++) {
        expect(got[i][0]).toEqual(want[i].key);
        expect(got[i][1]).toBe(want[i].value);
      }
      expect(combinedRunCursorsOpened()).toBeGreaterThan(runCursors + 1);
      await tree.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a segment-moved listener that reads while a read moves the mutable segment forward", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zt-relayout-"));
    const per = RELAYOUT_MIN_RECORDS + 1000;
    try {
      const tree = await ZoneTree.open({ dir, keyspace, mutableSegmentMaxItemCount: per });
      const rng = new Prng(0xa1);
      loadRandom(tree, rng, 2 * per + RELAYOUT_MIN_RECORDS + 500);
      let heard = 0;
      tree.events.on("segment-moved", () => {
        heard++;
        expect(tree.get({ k: "s", n: 2e6 })).toBeUndefined();
      });
      const started = helperStats().relayoutsStarted;
      expect(tree.get({ k: "s", n: 2e6 })).toBeUndefined(); // moves the mutable segment forward
      expect(heard).toBe(1);
      expect(tree.stats().readOnlySegmentsCount).toBe(3);
      expect(readsUntilStarted(tree, started)).toBeLessThanOrEqual(3);
      await tree.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a merge that takes the segments while they are laid out together: the result is dropped", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zt-relayout-"));
    try {
      const tree = await ZoneTree.open({ dir, keyspace, maintenance: "manual" });
      const rng = new Prng(0xd0);
      const model = new Map<string, { key: Key; value: string }>();
      for (let segment = 0; segment < 2; segment++) {
        loadRandom(tree, rng, RELAYOUT_MIN_RECORDS, model);
        tree.maintenance.moveMutableSegmentForward();
      }
      const started = helperStats().relayoutsStarted;
      const done = helperStats().relayoutsDone;
      const runCursors = combinedRunCursorsOpened();
      expect(tree.get({ k: "a", n: 1e7 })).toBeUndefined(); // the first read picks the segments
      expect(readsUntilStarted(tree, started)).toBe(2);
      expect(await tree.maintenance.merge()).toBe("ok");
      await landed(tree, done + 1);
      const got = [...tree.range()];
      expect(got.length).toBe(model.size);
      for (const [key, value] of got) expect(value).toBe(model.get(`${key.k}/${key.n}`)?.value);
      expect(combinedRunCursorsOpened()).toBe(runCursors);
      await tree.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("ranges and gets equal a model before and after the relayouts, a merge and a reopen", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zt-relayout-"));
    const per = RELAYOUT_MIN_RECORDS + 2000;
    const open = () =>
      ZoneTree.open({ dir, keyspace, maintenance: "manual", mutableSegmentMaxItemCount: 10 * per });
    try {
      let tree = await open();
      const rng = new Prng(0xa11);
      const model = new Map<string, { key: Key; value: string }>();
      const started = helperStats().relayoutsStarted;
      const done = helperStats().relayoutsDone;
      let op = 0;
      for (let segment = 0; segment < 3; segment++) {
        for (let b = 0; b < per / 500; b++) {
          const ops = [];
          for (let i = 0; i < 500; i++) {
            const key = { k: NAMES[rng.int(NAMES.length)], n: rng.int(3 * per) };
            const id = `${key.k}/${key.n}`;
            if (rng.int(12) === 0) {
              ops.push({ del: key });
              model.delete(id);
            } else {
              const value = `v${op++}:`.padEnd(rng.int(150), "x");
              ops.push({ put: key, value });
              model.set(id, { key, value });
            }
          }
          tree.batch(ops);
        }
        tree.maintenance.moveMutableSegmentForward();
      }
      // Nothing was read yet: no relayout started (a write-only load needs none).
      expect(helperStats().relayoutsStarted - started).toBe(0);
      const check = () => {
        const want = sortedModel(model);
        const got = [...tree.range()];
        expect(got.length).toBe(want.length);
        for (let i = 0; i < want.length; i++) {
          expect(got[i][0]).toEqual(want[i].key);
          expect(got[i][1]).toBe(want[i].value);
        }
        const rev = [...tree.range({ reverse: true, limit: 1000 })];
        for (let i = 0; i < rev.length; i++) expect(rev[i][1]).toBe(want[want.length - 1 - i].value);
        for (let i = 0; i < want.length; i += 7) expect(tree.get(want[i].key)).toBe(want[i].value);
        for (let n = 0; n < 300; n++) {
          const key = { k: NAMES[n % NAMES.length], n: rng.int(3 * per) };
          expect(tree.get(key)).toBe(model.get(`${key.k}/${key.n}`)?.value);
        }
      };
      const runCursors = combinedRunCursorsOpened();
      const mutable = [];
      for (let n = 0; n < RELAYOUT_MIN_RECORDS; n++) {
        mutable.push({ put: { k: "m", n }, value: `in the mutable segment ${n}` });
        model.set(`m/${n}`, { key: { k: "m", n }, value: `in the mutable segment ${n}` });
      }
      tree.batch(mutable);
      check();
      // Manual maintenance: reads never move the mutable segment forward.
      expect(tree.stats().mutableSegmentRecordCount).toBe(RELAYOUT_MIN_RECORDS);
      // The first read started one relayout of the three segments together (queries merge the
      // segments until it lands: check() may have seen either).
      expect(helperStats().relayoutsStarted - started).toBe(1);
      await landed(tree, done + 1);
      // Then they read the combined run in their place.
      const landedAt = combinedRunCursorsOpened();
      expect(landedAt).toBeGreaterThan(runCursors);
      check();
      expect(combinedRunCursorsOpened()).toBeGreaterThan(landedAt);
      // A newer segment (overwrites and deletes of keys the run holds) reads before the run.
      for (let b = 0; b < 4; b++) {
        const ops = [];
        for (const { key } of sortedModel(model).filter((_, i) => i % 40 === b)) {
          if (b === 3) {
            ops.push({ del: key });
            model.delete(`${key.k}/${key.n}`);
          } else {
            const value = `new${op++}`;
            ops.push({ put: key, value });
            model.set(`${key.k}/${key.n}`, { key, value });
          }
        }
        tree.batch(ops);
      }
      tree.maintenance.moveMutableSegmentForward();
      check();
      // The newer segment (the mutable one above, with the overwrites) is laid out on its own.
      expect(helperStats().relayoutsStarted - started).toBe(2);
      expect(await tree.maintenance.merge()).toBe("ok");
      const afterMerge = combinedRunCursorsOpened();
      check();
      expect(combinedRunCursorsOpened()).toBe(afterMerge); // merged: the run is gone
      await tree.close();
      tree = await open();
      check();
      await tree.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
