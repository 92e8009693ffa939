/**
 * The fault campaign: a tree on `faultFileSystem(memoryFileSystem())` runs the seeded workload of
 * `fault_workload.ts` (every write kind, batches, transactions, flushes, moves, merges, bottom
 * merges, backups) while one fault plan is armed, for a sweep of fault points: the Nth write
 * fails (whole or short), the Nth sync fails (once, or for good), the Nth open, rename, syncDir
 * or remove fails, every I/O operation from the Nth on fails (the disk died), the disk fills up
 * after N bytes. Then, for every fault point:
 * - each failed operation threw a typed error (IOError, or ReadOnlyError after the tree stopped
 *   accepting writes), no write was acknowledged after a failed write, and the live tree showed
 *   exactly the acknowledged writes throughout (checked by the workload);
 * - the process is "killed" (a copy of the current files), or the power fails (a copy cut to
 *   what was synced, keeping no unsynced byte or a random prefix of them), or the tree is closed:
 *   each copy reopens without faults, holds every durable acknowledged write, shows no value that
 *   no write stored, keeps batches whole, leaves no orphan file, verifies, and takes writes;
 * - every completed backup opens and holds exactly the tree as of its call.
 *
 * ZT_SEED=<n> reproduces a run; FAULT_POINTS=<n> samples more fault points per kind (default 5).
 */
import { afterAll, expect, test } from "bun:test";
import { ZoneTree } from "../../mod.ts";
import { faultFileSystem, type FaultPlan } from "../../src/fs/fault_file_system.ts";
import { type MemoryFileSystem, memoryFileSystem } from "../../src/fs/memory_file_system.ts";
import { Prng } from "../../src/util/prng.ts";
import { checkDirectory, numberOfKey, Oracle, widOfValue } from "../crash/crash_shared.ts";
import {
  type AnyTree,
  reopenAndCheck,
  treeOptions,
  Workload,
  type WorkloadConfig,
} from "./fault_workload.ts";

const SEED = Number(process.env.ZT_SEED ?? Date.now() % 1_000_000);
const POINTS = Number(process.env.FAULT_POINTS ?? 5);

const totals = {
  runs: 0,
  injected: 0,
  failedOps: 0,
  reopens: 0,
  durableChecked: 0,
  torn: 0,
  backups: 0,
};
afterAll(() => console.log(`fault totals (seed ${SEED}): ${JSON.stringify(totals)}`));

/** A fault kind: the plan that fails at point `n`. */
type Kind = { name: string; plan: (n: number, seed: number) => FaultPlan };

const KINDS: Kind[] = [
  { name: "write", plan: (n) => ({ rules: [{ op: "write", nth: n }] }) },
  {
    name: "short write",
    plan: (n, seed) => ({ rules: [{ op: "write", nth: n, short: true }], seed }),
  },
  { name: "sync", plan: (n) => ({ rules: [{ op: "sync", nth: n }] }) },
  { name: "sync for good", plan: (n) => ({ rules: [{ op: "sync", nth: n, count: Infinity }] }) },
  { name: "open", plan: (n) => ({ rules: [{ op: "open", nth: n }] }) },
  { name: "rename", plan: (n) => ({ rules: [{ op: "rename", nth: n }] }) },
  { name: "syncDir", plan: (n) => ({ rules: [{ op: "syncDir", nth: n }] }) },
  { name: "remove", plan: (n) => ({ rules: [{ op: "remove", nth: n }] }) },
  {
    name: "every op (disk died)",
    plan: (n) => ({ rules: [{ op: "any", nth: n, count: Infinity }] }),
  },
  { name: "ENOSPC", plan: (n) => ({ enospcAfterBytes: n * 97 }) },
  // The merge's files and the metadata, targeted.
  { name: "segment write", plan: (n) => ({ rules: [{ op: "write", path: "seg-", nth: n }] }) },
  { name: "segment sync", plan: (n) => ({ rules: [{ op: "sync", path: "seg-", nth: n }] }) },
  { name: "metadata rename", plan: (n) => ({ rules: [{ op: "rename", path: "meta", nth: n }] }) },
  {
    name: "metadata write",
    plan: (n) => ({ rules: [{ op: "write", path: "meta", nth: n, short: true }] }),
  },
  { name: "WAL create", plan: (n) => ({ rules: [{ op: "open", path: "wal", nth: n }] }) },
];

const MODES: { wal: WorkloadConfig["wal"]; layout: WorkloadConfig["layout"] }[] = [
  { wal: "sync", layout: "str" },
  { wal: "sync-compressed", layout: "u32" },
  { wal: "async-compressed", layout: "u32" },
];

/** Fault points to try: dense at the start, sparser later (1, 2, 3, 5, 8, 13, ...), jittered. */
function points(prng: Prng, count: number): number[] {
  const out: number[] = [];
  let [a, b] = [1, 2];
  for (let i = 0; i < count; i++) {
    out.push(a + prng.int(Math.max(1, a >> 1)));
    [a, b] = [b, a + b];
  }
  return out;
}

/** Every completed backup opens and holds exactly the tree as of its call. */
async function checkBackups(mem: MemoryFileSystem, w: Workload, why: string): Promise<void> {
  for (const b of w.backups) {
    let tree: AnyTree;
    try {
      tree = await ZoneTree.open({
        ...treeOptions(w.cfg, mem, b.dir),
        mode: "open",
        readOnly: true,
      }) as AnyTree;
    } catch (e) {
      throw new Error(`${why}: backup ${b.dir} does not open: ${e}`);
    }
    try {
      checkDirectory(b.dir, w.cfg.layout, { fs: mem, backup: true });
      const got = new Map<number, number>();
      for (const [k, v] of tree.range()) got.set(numberOfKey(w.cfg.layout, k), widOfValue(v));
      if (b.clean) {
        const oracle = new Oracle();
        oracle.absorb(w.text(), false);
        const want = oracle.stateAt(b.wid);
        const diffs = [...new Set([...got.keys(), ...want.keys()])].filter((k) =>
          got.get(k) !== want.get(k)
        );
        expect(
          diffs.slice(0, 5).map((k) => `${k}: ${got.get(k)} vs ${want.get(k)}`),
          `${why}: backup ${b.dir}`,
        )
          .toEqual([]);
      }
      totals.backups++;
    } finally {
      await tree.close();
    }
  }
}

/**
 * One fault point: warm up without faults, arm `plan`, run, then check the live tree, three
 * copies (killed, power lost keeping none / a random part of the unsynced bytes) and the tree
 * closed and reopened. Returns how many faults fired.
 */
async function faultRun(cfg: WorkloadConfig, plan: FaultPlan, why: string): Promise<number> {
  const mem = memoryFileSystem();
  const fs = faultFileSystem(mem);
  const tree = await ZoneTree.open(treeOptions(cfg, fs)) as AnyTree;
  const w = new Workload(tree, cfg);
  w.label = why;
  await w.run(60);
  fs.arm(plan);
  await w.run(140);
  const injected = fs.injectedCount;
  totals.runs++;
  totals.injected += injected;
  totals.failedOps += w.thrown.length;
  for (const e of w.events) {
    expect(["IO", "READ_ONLY"], `${why}: error event ${e}`).toContain(
      (e as { code?: string }).code,
    );
  }
  w.checkLive(`${why}: live tree after the faults`);
  const syncMode = cfg.wal !== "async-compressed";
  const copies: [string, MemoryFileSystem][] = [["killed", mem.clone()]];
  for (const keep of ["none", "random"] as const) {
    const copy = mem.clone();
    copy.crash({ keepUnsynced: keep, seed: cfg.seed });
    copies.push([`power loss keeping ${keep} unsynced`, copy]);
  }
  await checkBackups(mem, w, why);
  // Closing with the faults still armed: it succeeds, or fails with a typed error.
  let closed = true;
  try {
    await tree.close();
  } catch (e) {
    closed = false;
    expect(["IO", "READ_ONLY"], `${why}: close threw ${e}`).toContain(
      (e as { code?: string }).code,
    );
  }
  expect(tree.closed, why).toBe(true);
  fs.disarm();
  copies.push([closed ? "closed" : "close failed", mem]);
  for (const [what, copy] of copies) {
    // A clean close made every acknowledged write durable.
    const text = what === "closed" ? w.text([w.flushedLine()]) : w.text();
    const r = await reopenAndCheck(copy, cfg, text, syncMode, `${why}, ${what}`);
    totals.reopens++;
    totals.durableChecked += r.durableChecked;
    totals.torn += r.torn;
  }
  return injected;
}

for (const mode of MODES) {
  test(
    `${mode.wal}: every fault kind at a sweep of points keeps every durable write (seed ${SEED})`,
    async () => {
      const prng = new Prng(SEED ^ mode.wal.length);
      for (const kind of KINDS) {
        for (const n of points(prng, POINTS)) {
          const cfg: WorkloadConfig = {
            ...mode,
            maintenance: n % 2 ? "auto" : "manual",
            seed: prng.u32(),
            keySpace: 400,
          };
          const why =
            `ZT_SEED=${SEED} ${mode.wal} ${kind.name} at ${n} (workload seed ${cfg.seed})`;
          const injected = await faultRun(cfg, kind.plan(n, cfg.seed), why);
          if (injected === 0) break; // past the last operation of this kind
        }
      }
    },
    120_000,
  );
}
