/**
 * Model-based test of the whole tree: seeded random sequences of every write and read operation,
 * ranges with random bounds, reopen, compared after every step with a plain Map + sort. Small
 * segment sizes make many read-only segments. The seed is in the test name; set ZT_SEED to
 * reproduce one run, ZT_STEPS to run longer.
 */
import { describe, expect, test } from "bun:test";
import { defineKeyspace, memoryFileSystem, type OpenOptions, ZoneTree } from "../../mod.ts";
import { Prng } from "../../src/util/prng.ts";

const STEPS = Number(process.env.ZT_STEPS ?? 1500);
const SEEDS = process.env.ZT_SEED ? [Number(process.env.ZT_SEED)] : [1, 2, 3, 4];

interface ModelRecord {
  value: string;
  expiresAt: number;
}

const ks = defineKeyspace({ key: "k:<str>:n:<u32be>", value: "utf8" });
type Key = { k: string; n: number };

const WORDS = ["", "a", "ab", "abc", "b", "ba", "c", "\u0000", "a\u0000b", "ü", "😀", "zz"];

function randomKey(r: Prng): Key {
  return { k: r.pick(WORDS), n: r.int(20) };
}

function modelKey(key: Key): string {
  return Buffer.from(ks.key.encode(key)).toString("hex");
}

class Model {
  map = new Map<string, { key: Key; rec: ModelRecord }>();
  live(key: Key, now: number): ModelRecord | undefined {
    const e = this.map.get(modelKey(key));
    if (!e) return undefined;
    if (e.rec.expiresAt !== 0 && e.rec.expiresAt <= now) return undefined;
    return e.rec;
  }
  sorted(now: number): [string, Key, ModelRecord][] {
    const out: [string, Key, ModelRecord][] = [];
    for (const [hex, e] of this.map) {
      if (e.rec.expiresAt !== 0 && e.rec.expiresAt <= now) continue;
      out.push([hex, e.key, e.rec]);
    }
    out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return out;
  }
}

function randomExpiry(r: Prng, now: number): { expiresAt?: number } | undefined {
  const x = r.int(10);
  if (x === 0) return { expiresAt: now - 1000 }; // already expired
  if (x === 1) return { expiresAt: now + 3_600_000 };
  return undefined;
}

async function runModel(seed: number, extra: Partial<OpenOptions>) {
  const r = new Prng(seed);
  const fs = memoryFileSystem();
  const options = {
    dir: "/db",
    keyspace: ks,
    fs,
    mutableSegmentMaxItemCount: 1 + r.int(40),
    diskSegmentMaxItemCount: 20 + r.int(60),
    multipartMinItemCount: 4,
    multipartMaxItemCount: 8 + r.int(8),
    blockSizeBytes: 256,
    sparseStep: r.int(4),
    ...extra,
  } as OpenOptions<typeof ks>;
  let tree = await ZoneTree.open(options);
  const model = new Model();
  let lastOp = 0;
  const checkOp = (op: number | undefined) => {
    if (op === undefined) return;
    expect(op).toBeGreaterThan(lastOp);
    lastOp = op;
  };
  for (let step = 0; step < STEPS; step++) {
    const now = Date.now();
    const key = randomKey(r);
    const value = `v${step}`;
    const choice = r.int(100);
    const ctx = `seed ${seed} step ${step} op ${choice}`;
    if (choice < 30) {
      const exp = randomExpiry(r, now);
      checkOp(tree.upsert(key, value, exp));
      model.map.set(modelKey(key), { key, rec: { value, expiresAt: exp?.expiresAt ?? 0 } });
    } else if (choice < 36) {
      const had = model.live(key, now);
      const op = tree.tryAdd(key, value);
      expect(op === undefined, ctx).toBe(had !== undefined);
      checkOp(op);
      if (!had) model.map.set(modelKey(key), { key, rec: { value, expiresAt: 0 } });
    } else if (choice < 42) {
      const had = model.live(key, now);
      const op = tree.tryDelete(key);
      expect(op === undefined, ctx).toBe(had === undefined);
      checkOp(op);
      model.map.delete(modelKey(key));
    } else if (choice < 46) {
      checkOp(tree.forceDelete(key));
      model.map.delete(modelKey(key));
    } else if (choice < 50) {
      const had = model.live(key, now);
      const cancel = r.int(4) === 0;
      const op = tree.update(key, (v) => (cancel ? undefined : v + "+"));
      expect(op === undefined, ctx).toBe(had === undefined || cancel);
      checkOp(op);
      if (had && !cancel) had.value += "+";
    } else if (choice < 54) {
      const had = model.live(key, now);
      const res = tree.addOrUpdate(key, value, (v) => v + "*");
      expect(res.result, ctx).toBe(had ? "updated" : "added");
      checkOp(res.opIndex);
      if (had) had.value += "*";
      else model.map.set(modelKey(key), { key, rec: { value, expiresAt: 0 } });
    } else if (choice < 58) {
      const n = r.int(6);
      const ops = [];
      for (let i = 0; i < n; i++) {
        const k = randomKey(r);
        if (r.int(3) === 0) {
          ops.push({ del: k });
          model.map.delete(modelKey(k));
        } else {
          ops.push({ put: k, value: `${value}.${i}` });
          model.map.set(modelKey(k), { key: k, rec: { value: `${value}.${i}`, expiresAt: 0 } });
        }
      }
      const op = tree.batch(ops);
      if (n > 0) checkOp(op);
    } else if (choice < 75) {
      expect(tree.get(key), ctx).toBe(model.live(key, now)?.value);
      expect(tree.has(key), ctx).toBe(model.live(key, now) !== undefined);
    } else if (choice < 88) {
      checkRange(tree, model, r, now, ctx);
    } else if (choice < 91) {
      expect(tree.count(), ctx).toBe(model.sorted(now).length);
    } else if (choice < 94) {
      tree.maintenance.moveMutableSegmentForward();
    } else if (choice < 96) {
      await tree.maintenance.merge();
    } else if (choice < 97) {
      const n = tree.stats().bottomSegmentsCount;
      if (n >= 2) {
        const from = r.int(n - 1);
        await tree.maintenance.mergeBottomSegments(from, from + 1 + r.int(n - 1 - from));
      }
    } else {
      await tree.close();
      tree = await ZoneTree.open(options);
      expect(tree.lastOpIndex, ctx).toBeGreaterThanOrEqual(lastOp);
    }
  }
  checkRange(tree, model, r, Date.now(), `seed ${seed} final`);
  await tree.close();
}

function checkRange(
  tree: ZoneTree<Key, string, Key, Partial<Key> | [string?, number?]>,
  model: Model,
  r: Prng,
  now: number,
  ctx: string,
) {
  const all = model.sorted(now);
  const bound = () => {
    const key = randomKey(r);
    const kind = r.int(3);
    if (kind === 0) return { k: key.k };
    return key;
  };
  const opts: Record<string, unknown> = {};
  const names = ["gte", "gt", "lte", "lt", "prefix"];
  for (const name of names) if (r.int(5) === 0) opts[name] = bound();
  const reverse = r.int(2) === 0;
  const limit = r.int(3) === 0 ? r.int(10) : undefined;
  // Expected: filter the model by the same byte rules.
  const enc = (b: unknown) => ks.key.encodeBound(b as Key);
  const hex = (u: Uint8Array) => Buffer.from(u).toString("hex");
  const succ = (u: Uint8Array) => {
    let end = u.length;
    while (end > 0 && u[end - 1] === 0xff) end--;
    if (end === 0) return undefined;
    const o = u.slice(0, end);
    o[end - 1]++;
    return hex(o);
  };
  let expected = all.filter(([h]) => {
    for (const name of names) {
      const b = opts[name];
      if (b === undefined) continue;
      const e = enc(b);
      const bh = hex(e.bytes);
      const s = succ(e.bytes);
      if (name === "gte" && h < bh) return false;
      if (name === "gt" && (e.complete ? h <= bh : (s === undefined || h < s))) return false;
      if (name === "lte" && (e.complete ? h > bh : (s !== undefined && h >= s))) return false;
      if (name === "lt" && h >= bh) return false;
      if (name === "prefix" && !h.startsWith(bh)) return false;
    }
    return true;
  });
  if (reverse) expected = expected.reverse();
  if (limit !== undefined) expected = expected.slice(0, limit);
  const got = [...tree.range({ ...opts, reverse, limit } as never)];
  expect(got.map(([k, v]) => [k, v]), `${ctx} range ${JSON.stringify(opts)} rev=${reverse} limit=${limit}`)
    .toEqual(expected.map(([, k, rec]) => [k, rec.value]));
}

describe("model: tree matches a Map + sort", () => {
  for (const seed of SEEDS) {
    test(`random ops, seed ${seed}`, async () => {
      await runModel(seed, {});
    }, 60_000);
  }
  test("random ops with wal sync, seed 11", async () => {
    await runModel(11, { wal: "sync" });
  }, 60_000);
  test("random ops with wal none (clean reopen keeps data), seed 12", async () => {
    await runModel(12, { wal: "none" });
  }, 60_000);
  test("random ops with manual maintenance, seed 13", async () => {
    await runModel(13, { maintenance: "manual" });
  }, 60_000);
  test("random ops with single disk segments and no compression, seed 14", async () => {
    await runModel(14, { diskSegmentMode: "single", compression: "none" });
  }, 60_000);
});
