/**
 * Concurrency in one process (issue 7): many async tasks write, scan and commit transactions on
 * one tree while merges run in the background (each merge yields to the event loop between
 * slices, so the tasks really interleave with it). An exact model is kept alongside: point
 * operations are synchronous, so the model is updated at the moment each write returns.
 *
 * Checked while it runs:
 * - a snapshot scan (read slowly, across merges) returns exactly the model as of its start, and
 *   the bank accounts in it always sum to the total (transactions are atomic);
 * - a live scan returns keys in strictly increasing order, each value one that was written to
 *   that key and not older than the key's version when the scan started (nothing stale or
 *   resurrected by a merge), and every key that was present and left alone throughout;
 * - transactions that lose a race throw TransactionConflictError and write nothing.
 * At the end the tree equals the model, also after close and reopen.
 *
 * ZT_SEED=<n> reproduces the op choices (the interleaving with merges depends on timing).
 */
import { expect, test } from "bun:test";
import { defineKeyspace, memoryFileSystem, TransactionConflictError, ZoneTree } from "../../mod.ts";
import { Prng } from "../../src/util/prng.ts";

const SEED = Number(process.env.ZT_SEED ?? Date.now() % 1_000_000);
const ks = defineKeyspace({ name: "concurrency", key: "k:<u32be>", value: "utf8" });
type Tree = ZoneTree<number, string, number, number>;

const KEYS = 1500;
const ACCOUNT_BASE = 100_000;
const ACCOUNTS = 8;
const TOTAL = ACCOUNTS * 1000;

const TUNING = {
  wal: "async-compressed",
  maintenance: "auto",
  mutableSegmentMaxItemCount: 250,
  diskSegmentMaxItemCount: 1200,
  multipartMinItemCount: 100,
  multipartMaxItemCount: 300,
  blockSizeBytes: 512,
  sparseStep: 8,
} as const;

/** Yields to the event loop: a microtask turn, a macrotask, or a short timer. */
function tick(prng: Prng): Promise<void> {
  const x = prng.int(3);
  if (x === 0) return Promise.resolve();
  return new Promise((r) => (x === 1 ? setImmediate(r) : setTimeout(r, 1)));
}

/** The shared model: what the tree must hold. */
class Model {
  seq = 0;
  /** key → seq of its live value. */
  readonly live = new Map<number, number>();
  /** key → seq of the last write of any kind to it (puts, deletes, range deletes). */
  readonly lastWrite = new Map<number, number>();
  /** seq → key it was written to (for puts). */
  readonly putKey = new Map<number, number>();
  balances = new Map<number, number>();
}

function valueOf(seq: number): string {
  return `s${seq}`;
}

function seqOf(v: string): number {
  expect(v.startsWith("s"), `value ${v} was never written`).toBe(true);
  return Number(v.slice(1));
}

async function writer(tree: Tree, m: Model, prng: Prng, ops: number): Promise<void> {
  for (let i = 0; i < ops; i++) {
    const x = prng.int(100);
    const k = prng.int(2) ? prng.int(100) : prng.int(KEYS);
    if (x < 55) {
      const s = ++m.seq;
      tree.upsert(k, valueOf(s));
      m.live.set(k, s);
      m.lastWrite.set(k, s);
      m.putKey.set(s, k);
    } else if (x < 70) {
      const s = ++m.seq;
      tree.forceDelete(k);
      m.live.delete(k);
      m.lastWrite.set(k, s);
    } else if (x < 95) {
      const ops: ({ put: number; value: string } | { del: number })[] = [];
      const effects: (() => void)[] = [];
      for (let j = 0; j < 1 + prng.int(10); j++) {
        const key = prng.int(KEYS);
        const s = ++m.seq;
        if (prng.int(4)) {
          ops.push({ put: key, value: valueOf(s) });
          effects.push(() => (m.live.set(key, s), m.lastWrite.set(key, s), m.putKey.set(s, key)));
        } else {
          ops.push({ del: key });
          effects.push(() => (m.live.delete(key), m.lastWrite.set(key, s)));
        }
      }
      tree.batch(ops);
      for (const e of effects) e();
    } else {
      const lo = prng.int(KEYS);
      const hi = Math.min(KEYS, lo + 1 + prng.int(40));
      const s = ++m.seq;
      tree.deleteRange({ gte: lo, lt: hi });
      for (let key = lo; key < hi; key++) {
        m.live.delete(key);
        m.lastWrite.set(key, s);
      }
    }
    if (prng.int(4) === 0) await tick(prng);
  }
}

/** Moves money between accounts in transactions that span awaits; retries on conflict. */
async function banker(tree: Tree, m: Model, prng: Prng, transfers: number): Promise<number> {
  let conflicts = 0;
  for (let i = 0; i < transfers; i++) {
    for (;;) {
      const a = ACCOUNT_BASE + prng.int(ACCOUNTS);
      const b = ACCOUNT_BASE + ((a - ACCOUNT_BASE + 1 + prng.int(ACCOUNTS - 1)) % ACCOUNTS);
      const tx = tree.transaction();
      const balA = Number(tx.get(a)!.slice(1));
      await tick(prng);
      const balB = Number(tx.get(b)!.slice(1));
      const amount = prng.int(50);
      tx.upsert(a, `b${balA - amount}`);
      tx.upsert(b, `b${balB + amount}`);
      if (prng.int(2)) await tick(prng);
      const before = tree.lastOpIndex;
      try {
        tx.commit();
      } catch (e) {
        expect(e).toBeInstanceOf(TransactionConflictError);
        expect(tree.lastOpIndex).toBe(before); // nothing written
        conflicts++;
        continue;
      }
      m.balances.set(a, balA - amount);
      m.balances.set(b, balB + amount);
      break;
    }
  }
  return conflicts;
}

function accountSum(entries: Iterable<[number, string]>): number {
  let sum = 0;
  for (const [k, v] of entries) if (k >= ACCOUNT_BASE) sum += Number(v.slice(1));
  return sum;
}

/** A snapshot scan read slowly: exactly the model as of its start. */
async function snapshotScan(tree: Tree, m: Model, prng: Prng): Promise<void> {
  const want = new Map([...m.live].map(([k, s]) => [k, valueOf(s)]));
  for (const [k, b] of m.balances) want.set(k, `b${b}`);
  const got = new Map<number, string>();
  let i = 0;
  const useIterator = prng.int(2) === 0;
  if (useIterator) {
    using it = tree.iterator({ snapshot: true });
    while (it.next()) {
      got.set(it.key, it.value!);
      if (++i % 40 === 0) await tick(prng);
    }
  } else {
    for (const [k, v] of tree.range({ snapshot: true })) {
      got.set(k, v);
      if (++i % 40 === 0) await tick(prng);
    }
  }
  const diffs = [...new Set([...got.keys(), ...want.keys()])].filter((k) =>
    got.get(k) !== want.get(k)
  );
  expect(diffs.slice(0, 5).map((k) => `${k}: ${got.get(k)} vs ${want.get(k)}`), "snapshot scan")
    .toEqual([]);
  expect(accountSum(got), "accounts in a snapshot").toBe(TOTAL);
}

/** A live scan read slowly: ordered, no duplicates, nothing stale, nothing left alone missing. */
async function liveScan(tree: Tree, m: Model, prng: Prng): Promise<void> {
  const versionAtStart = new Map(m.lastWrite);
  const liveAtStart = new Map(m.live);
  const reverse = prng.int(2) === 0;
  const seen = new Set<number>();
  let last = reverse ? Infinity : -1;
  let i = 0;
  for (const [k, v] of tree.range({ reverse, lt: ACCOUNT_BASE })) {
    expect(reverse ? k < last : k > last, `live scan order: ${k} after ${last}`).toBe(true);
    last = k;
    seen.add(k);
    const s = seqOf(v);
    expect(m.putKey.get(s), `value ${v} under key ${k} was written to another key`).toBe(k);
    expect(s, `key ${k}: a version older than the one at the start`).toBeGreaterThanOrEqual(
      versionAtStart.get(k) ?? 0,
    );
    if (++i % 30 === 0) await tick(prng);
  }
  for (const [k, s] of liveAtStart) {
    if (m.lastWrite.get(k) === versionAtStart.get(k)) {
      expect(seen.has(k), `key ${k} (version ${s}) was left alone but the live scan missed it`)
        .toBe(true);
    }
  }
}

function checkTree(tree: Tree, m: Model, why: string): void {
  const want = new Map([...m.live].map(([k, s]) => [k, valueOf(s)]));
  for (const [k, b] of m.balances) want.set(k, `b${b}`);
  const got = new Map(tree.range());
  const diffs = [...new Set([...got.keys(), ...want.keys()])].filter((k) =>
    got.get(k) !== want.get(k)
  );
  expect(diffs.slice(0, 5).map((k) => `${k}: ${got.get(k)} vs ${want.get(k)}`), why).toEqual([]);
  expect(tree.count(), why).toBe(want.size);
  for (let k = 0; k < KEYS; k += 7) expect(tree.get(k), `${why}: get(${k})`).toBe(want.get(k));
}

test(
  `writers, scanners and transactions interleave with background merges (seed ${SEED})`,
  async () => {
    const fs = memoryFileSystem();
    const tree = await ZoneTree.open({ dir: "/db", keyspace: ks, fs, ...TUNING }) as Tree;
    const errors: unknown[] = [];
    tree.events.on("error", (e) => errors.push(e));
    let merges = 0;
    tree.events.on("merge-started", () => merges++);
    const m = new Model();
    for (let a = 0; a < ACCOUNTS; a++) {
      tree.upsert(ACCOUNT_BASE + a, "b1000");
      m.balances.set(ACCOUNT_BASE + a, 1000);
    }
    const prng = new Prng(SEED);
    let scans = 0;
    let stop = false;
    const scanner = async (p: Prng) => {
      while (!stop) {
        if (p.int(2)) await snapshotScan(tree, m, p);
        else await liveScan(tree, m, p);
        scans++;
        await tick(p);
      }
    };
    const bottomMerger = async (p: Prng) => {
      while (!stop) {
        const n = tree.stats().bottomSegmentsCount;
        if (n >= 2) {
          const from = p.int(n - 1);
          await tree.maintenance.mergeBottomSegments(from, n - 1);
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    const writers = Array.from({ length: 6 }, () => writer(tree, m, new Prng(prng.u32()), 1200));
    const bankers = Array.from({ length: 3 }, () => banker(tree, m, new Prng(prng.u32()), 60));
    const background = [
      scanner(new Prng(prng.u32())),
      scanner(new Prng(prng.u32())),
      scanner(new Prng(prng.u32())),
      bottomMerger(new Prng(prng.u32())),
    ];
    await Promise.all(writers);
    const conflicts = (await Promise.all(bankers)).reduce((a, b) => a + b, 0);
    stop = true;
    await Promise.all(background);
    expect(errors).toEqual([]);
    expect(merges).toBeGreaterThan(3);
    expect(scans).toBeGreaterThan(3);
    console.log(
      `concurrency (seed ${SEED}): ${merges} merges, ${scans} scans, ${conflicts} conflicts, ${m.seq} writes`,
    );
    checkTree(tree, m, "after the tasks");
    await tree.close();
    const again = await ZoneTree.open({
      dir: "/db",
      keyspace: ks,
      fs,
      ...TUNING,
      mode: "open",
    }) as Tree;
    checkTree(again, m, "after reopen");
    await again.close();
  },
  60_000,
);

test("iterators opened before merges read after them: snapshots see the old contents exactly, live ones a consistent view", async () => {
  const fs = memoryFileSystem();
  const tree = await ZoneTree.open({
    dir: "/db",
    keyspace: ks,
    fs,
    ...TUNING,
    maintenance: "manual",
    diskSegmentMaxItemCount: 300,
  }) as Tree;
  const m = new Model();
  const prng = new Prng(SEED ^ 0x17);
  // Bottom segments, a disk segment, a read-only segment and a mutable segment.
  for (let round = 0; round < 4; round++) {
    await writer(tree, m, prng, 400);
    tree.maintenance.moveMutableSegmentForward();
    await tree.maintenance.merge();
  }
  await writer(tree, m, prng, 200);
  tree.maintenance.moveMutableSegmentForward();
  await writer(tree, m, prng, 100);
  expect(tree.stats().bottomSegmentsCount).toBeGreaterThanOrEqual(2);
  const old = new Map([...m.live].map(([k, s]) => [k, valueOf(s)]));
  const versionAtStart = new Map(m.lastWrite);

  const snapIt = tree.iterator({ snapshot: true });
  const snapRange = tree.range({ snapshot: true })[Symbol.iterator]();
  const liveIt = tree.iterator();
  const liveRange = tree.range()[Symbol.iterator]();
  const snapReverse = tree.iterator({ snapshot: true, reverse: true });
  const got = {
    snapIt: new Map<number, string>(),
    snapRange: new Map<number, string>(),
    snapReverse: new Map<number, string>(),
  };
  const live: [number, string][] = [];
  const liveR: [number, string][] = [];
  for (let i = 0; i < 50; i++) {
    if (snapIt.next()) got.snapIt.set(snapIt.key, snapIt.value!);
    if (snapReverse.next()) got.snapReverse.set(snapReverse.key, snapReverse.value!);
    const r = snapRange.next();
    if (!r.done) got.snapRange.set(r.value[0], r.value[1]);
    if (liveIt.next()) live.push([liveIt.key, liveIt.value!]);
    const l = liveRange.next();
    if (!l.done) liveR.push(l.value);
  }
  // Overwrite and delete much, merge everything, drop the deletion markers at the bottom.
  await writer(tree, m, prng, 600);
  tree.maintenance.moveMutableSegmentForward();
  await tree.maintenance.merge();
  await tree.maintenance.mergeBottomSegments();
  await writer(tree, m, prng, 100);
  tree.maintenance.moveMutableSegmentForward();
  await tree.maintenance.merge();
  expect(tree.stats().bottomSegmentsCount).toBeLessThanOrEqual(2);

  while (snapIt.next()) got.snapIt.set(snapIt.key, snapIt.value!);
  while (snapReverse.next()) got.snapReverse.set(snapReverse.key, snapReverse.value!);
  for (let r = snapRange.next(); !r.done; r = snapRange.next()) {
    got.snapRange.set(r.value[0], r.value[1]);
  }
  for (const [name, map] of Object.entries(got)) {
    const diffs = [...new Set([...map.keys(), ...old.keys()])].filter((k) =>
      map.get(k) !== old.get(k)
    );
    expect(diffs.slice(0, 5), `${name}: exactly the contents when it was opened`).toEqual([]);
  }
  while (liveIt.next()) live.push([liveIt.key, liveIt.value!]);
  for (let l = liveRange.next(); !l.done; l = liveRange.next()) liveR.push(l.value);
  for (const [name, rows] of [["live iterator", live], ["live range", liveR]] as const) {
    for (let i = 1; i < rows.length; i++) {
      expect(rows[i][0], `${name}: order`).toBeGreaterThan(rows[i - 1][0]);
    }
    for (const [k, v] of rows) {
      const s = seqOf(v);
      expect(m.putKey.get(s), `${name}: key ${k}`).toBe(k);
      expect(s, `${name}: key ${k} older than when opened`).toBeGreaterThanOrEqual(
        versionAtStart.get(k) ?? 0,
      );
    }
    const seen = new Set(rows.map(([k]) => k));
    for (const [k] of old) {
      if (m.lastWrite.get(k) === versionAtStart.get(k)) {
        expect(seen.has(k), `${name}: missed ${k}`).toBe(true);
      }
    }
  }
  for (const it of [snapIt, snapReverse, liveIt]) it.close();
  checkTree(tree, m, "after the merges");
  await tree.close();
});
