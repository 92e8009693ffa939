/**
 * Model-based test of the whole tree: seeded random sequences of every write and read operation,
 * ranges with random bounds, reopen, compared after every step with a plain Map + sort. Small
 * segment sizes make many read-only segments. The seed is in the test name; set ZT_SEED to
 * reproduce one run, ZT_STEPS to run longer.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defineKeyspace, localFileSystem, memoryFileSystem, type OpenOptions, ZoneTree } from "../../mod.ts";
import { TreeEngine } from "../../src/engine/tree_engine.ts";
import { filesOf } from "../../src/engine/disk_set.ts";
import { parseSegmentFileName } from "../../src/engine/file_names.ts";
import { readMetadata } from "../../src/engine/metadata.ts";
import { workerMergeCounts } from "../../src/merge/worker_merge.ts";
import { Prng } from "../../src/util/prng.ts";

const STEPS = Number(process.env.ZT_STEPS ?? 1500);
const SEEDS = process.env.ZT_SEED ? [Number(process.env.ZT_SEED)] : [1, 2, 3, 4];

interface ModelRecord {
  value: string;
  expiresAt: number;
}

/**
 * The four disk layouts: variable or fixed keys, variable or fixed values. Values are strings
 * for "utf8" and short fixed strings through a fixed-width custom codec.
 */
const fixedValue = {
  id: "test-fixed-8",
  fixedWidth: 8,
  encode: (v: string) => {
    const out = new Uint8Array(8);
    const b = new TextEncoder().encode(v);
    if (b.length > 8) throw new Error("too long");
    out.set(b);
    return out;
  },
  decode: (b: Uint8Array) => new TextDecoder().decode(b.subarray(0, b.indexOf(0) < 0 ? 8 : b.indexOf(0))),
};
const LAYOUTS = {
  "variable-key-variable-value": defineKeyspace({ key: "k:<str>:n:<u32be>", value: "utf8" }),
  "variable-key-fixed-value": defineKeyspace({ key: "k:<str>:n:<u32be>", value: fixedValue }),
  "fixed-key-variable-value": defineKeyspace({ key: "k:<u16be>:n:<u32be>", value: "utf8" }),
  "fixed-key-fixed-value": defineKeyspace({ key: "k:<u16be>:n:<u32be>", value: fixedValue }),
};
type LayoutName = keyof typeof LAYOUTS;
type Key = { k: string | number; n: number };
// deno-lint-ignore no-explicit-any
let ks: any = LAYOUTS["variable-key-variable-value"];
let fixedKeys = false;

const WORDS = ["", "a", "ab", "abc", "b", "ba", "c", "\u0000", "a\u0000b", "ü", "😀", "zz"];

function randomKey(r: Prng): Key {
  const w = r.int(WORDS.length);
  return { k: fixedKeys ? w * 7 : WORDS[w], n: r.int(20) };
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

/** Runs the model; returns a transcript of every read result (for the metamorphic check). */
async function runModel(
  seed: number,
  extra: Partial<OpenOptions>,
  layout: LayoutName = "variable-key-variable-value",
  steps = STEPS,
  dir = "/db",
) {
  ks = LAYOUTS[layout];
  fixedKeys = layout.startsWith("fixed-key");
  const transcript: unknown[] = [];
  const r = new Prng(seed);
  const fs = dir === "/db" ? memoryFileSystem() : localFileSystem();
  const options = {
    dir,
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
  const seen = { readOnly: false, disk: false, bottom: false };
  for (let step = 0; step < steps; step++) {
    const st = tree.stats();
    seen.readOnly ||= st.readOnlySegmentsCount > 0;
    seen.disk ||= st.diskSegmentRecordCount > 0;
    seen.bottom ||= st.bottomSegmentsCount > 0;
    const now = Date.now();
    const key = randomKey(r);
    const value = `v${step % 1000}`;
    const choice = r.int(100);
    const ctx = `seed ${seed} step ${step} op ${choice}`;
    if (process.env.ZT_TRACE) console.log(ctx, JSON.stringify(tree.stats()));
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
      const op = tree.update(key, (v) => (cancel ? undefined : v.slice(0, 6) + "+"));
      expect(op === undefined, ctx).toBe(had === undefined || cancel);
      checkOp(op);
      if (had && !cancel) had.value = had.value.slice(0, 6) + "+";
    } else if (choice < 54) {
      const had = model.live(key, now);
      const res = tree.addOrUpdate(key, value, (v) => v.slice(0, 6) + "*");
      expect(res.result, ctx).toBe(had ? "updated" : "added");
      checkOp(res.opIndex);
      if (had) had.value = had.value.slice(0, 6) + "*";
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
      transcript.push(tree.get(key));
      expect(tree.get(key), ctx).toBe(model.live(key, now)?.value);
      expect(tree.has(key), ctx).toBe(model.live(key, now) !== undefined);
    } else if (choice < 88) {
      transcript.push(checkRange(tree, model, r, now, ctx));
    } else if (choice < 91) {
      expect(tree.count(), ctx).toBe(model.sorted(now).length);
    } else if (choice < 92) {
      // deleteRange must behave exactly like deleting each key in the bounds.
      const bounds = randomBounds(r);
      if (process.env.ZT_TRACE) console.log("deleteRange", JSON.stringify(bounds));
      checkOp(tree.deleteRange(bounds as never));
      for (const hex of [...model.map.keys()]) {
        if (matchesBounds(hex, bounds)) model.map.delete(hex);
      }
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
  transcript.push(checkRange(tree, model, r, Date.now(), `seed ${seed} final`));
  await tree.close();
  // The run must have reached every layer, or it tested less than it claims.
  expect(seen.disk && seen.bottom && seen.readOnly, `layers reached: ${JSON.stringify(seen)}`).toBe(true);
  return transcript;
}

function checkRange(
  // deno-lint-ignore no-explicit-any
  tree: ZoneTree<any, string, any, any>,
  model: Model,
  r: Prng,
  now: number,
  ctx: string,
): unknown {
  const all = model.sorted(now);
  const opts = randomBounds(r);
  const reverse = r.int(2) === 0;
  const limit = r.int(3) === 0 ? r.int(10) : undefined;
  let expected = all.filter(([h]) => matchesBounds(h, opts));
  if (reverse) expected = expected.reverse();
  if (limit !== undefined) expected = expected.slice(0, limit);
  const got = [...tree.range({ ...opts, reverse, limit } as never)];
  expect(got.map(([k, v]) => [k, v]), `${ctx} range ${JSON.stringify(opts)} rev=${reverse} limit=${limit}`)
    .toEqual(expected.map(([, k, rec]) => [k, rec.value]));
  return got;
}

const BOUND_NAMES = ["gte", "gt", "lte", "lt", "prefix"];

/** Random range bounds: each side a full key, a one-field prefix or the empty prefix. */
function randomBounds(r: Prng): Record<string, unknown> {
  const bound = () => {
    const key = randomKey(r);
    const kind = r.int(8);
    if (kind === 0) return {};
    if (kind < 3) return { k: key.k };
    return key;
  };
  const opts: Record<string, unknown> = {};
  for (const name of BOUND_NAMES) if (r.int(4) === 0) opts[name] = bound();
  return opts;
}

/** Whether the key with encoded hex `h` lies within `opts`, by the byte rules of API.md §4. */
function matchesBounds(h: string, opts: Record<string, unknown>): boolean {
  const hex = (u: Uint8Array) => Buffer.from(u).toString("hex");
  const succ = (u: Uint8Array) => {
    let end = u.length;
    while (end > 0 && u[end - 1] === 0xff) end--;
    if (end === 0) return undefined;
    const o = u.slice(0, end);
    o[end - 1]++;
    return hex(o);
  };
  for (const name of BOUND_NAMES) {
    const b = opts[name];
    if (b === undefined) continue;
    const e = ks.key.encodeBound(b as Key);
    const bh = hex(e.bytes);
    const s = succ(e.bytes);
    if (name === "gte" && h < bh) return false;
    if (name === "gt" && (e.complete ? h <= bh : (s === undefined || h < s))) return false;
    if (name === "lte" && (e.complete ? h > bh : (s !== undefined && h >= s))) return false;
    if (name === "lt" && h >= bh) return false;
    if (name === "prefix" && !h.startsWith(bh)) return false;
  }
  return true;
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

describe("model on local files with every read-only merge in a Worker", () => {
  const cases: [number, Partial<OpenOptions>][] = [
    [31, {}], // the worker replays the merged segments' WALs
    [32, { wal: "none" }], // nothing logged: this thread packs the records for the worker
    [33, { wal: "sync-compressed", diskSegmentMode: "single", compression: "none" }],
  ];
  for (const [seed, extra] of cases) {
    test(`random ops, seed ${seed}, ${JSON.stringify(extra)}`, async () => {
      const root = mkdtempSync(join(tmpdir(), "zt-model-worker-"));
      const saved = TreeEngine.workerMergeMinRecords;
      TreeEngine.workerMergeMinRecords = 0;
      try {
        const dir = join(root, "db");
        const before = workerMergeCounts.done;
        const transcript = await runModel(seed, extra, "variable-key-variable-value", 600, dir);
        expect(workerMergeCounts.done - before).toBeGreaterThan(5);
        expect(workerMergeCounts.handedBack).toBe(0);
        // No orphan: every segment file left is one the metadata names (replaced segments are
        // removed in the background, and close waits for that).
        const meta = readMetadata(localFileSystem(), dir)!;
        const named = new Set([meta.diskSegment, ...meta.bottomSegments].flatMap((rec) => rec ? filesOf(rec) : []));
        const segmentFiles = readdirSync(dir).filter((n) => parseSegmentFileName(n) !== undefined);
        expect(segmentFiles.filter((n) => !named.has(n))).toEqual([]);
        expect(segmentFiles.length).toBeGreaterThan(0);
        // The same op log, merged in this thread over the memory provider, reads the same.
        TreeEngine.workerMergeMinRecords = Infinity;
        expect(await runModel(seed, extra, "variable-key-variable-value", 600)).toEqual(transcript);
      } finally {
        TreeEngine.workerMergeMinRecords = saved;
        rmSync(root, { recursive: true, force: true });
      }
    }, 120_000);
  }
});

describe("metamorphic: one op log, every layout and option set, identical results", () => {
  const OPTION_SETS: Partial<OpenOptions>[] = [
    { compression: "lz4", diskSegmentMode: "multipart" },
    { compression: "none", diskSegmentMode: "multipart" },
    { compression: "lz4", diskSegmentMode: "single" },
    { compression: "none", diskSegmentMode: "single", wal: "sync-compressed" },
  ];
  for (const layout of Object.keys(LAYOUTS) as LayoutName[]) {
    test(`${layout}: 4 option sets agree with the model and each other, seed 21`, async () => {
      let first: unknown[] | undefined;
      for (const opts of OPTION_SETS) {
        const transcript = await runModel(21, opts, layout);
        if (first === undefined) first = transcript;
        else expect(transcript, `${layout} ${JSON.stringify(opts)}`).toEqual(first);
      }
    }, 120_000);
  }
});
