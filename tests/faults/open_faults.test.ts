/**
 * I/O faults while a tree opens and recovers: a directory left by a power loss in the middle of a
 * workload (WALs to replay, torn tails to cut, merged WALs to settle, obsolete files to remove)
 * is opened with the Nth open, write, sync, truncate, rename, remove or syncDir failing, with a
 * short write, or with every operation failing from the Nth on. The open either succeeds or
 * fails with a typed `IOError`; either way a later open without faults holds every durable
 * acknowledged write, leaves no orphan file, and takes writes.
 *
 * ZT_SEED=<n> reproduces a run.
 */
import { afterAll, expect, test } from "bun:test";
import { ZoneTree } from "../../mod.ts";
import { faultFileSystem, type FaultPlan } from "../../src/fs/fault_file_system.ts";
import { memoryFileSystem } from "../../src/fs/memory_file_system.ts";
import { Prng } from "../../src/util/prng.ts";
import {
  type AnyTree,
  reopenAndCheck,
  treeOptions,
  Workload,
  type WorkloadConfig,
} from "./fault_workload.ts";

const SEED = Number(process.env.ZT_SEED ?? Date.now() % 1_000_000);
const totals = { opens: 0, failedOpens: 0, injected: 0, durableChecked: 0 };
afterAll(() => console.log(`open fault totals (seed ${SEED}): ${JSON.stringify(totals)}`));

const KINDS: { name: string; plan: (n: number) => FaultPlan }[] = [
  ...(["open", "write", "sync", "truncate", "rename", "remove", "syncDir"] as const).map((op) => ({
    name: op,
    plan: (n: number): FaultPlan => ({ rules: [{ op, nth: n }] }),
  })),
  {
    name: "short write",
    plan: (n) => ({ rules: [{ op: "write", nth: n, short: true }], seed: n }),
  },
  {
    name: "every op from N on",
    plan: (n) => ({ rules: [{ op: "any", nth: n, count: Infinity }] }),
  },
];

const MODES: WorkloadConfig[] = [
  { wal: "sync", layout: "str", maintenance: "manual", seed: 0, keySpace: 300 },
  { wal: "sync-compressed", layout: "u32", maintenance: "auto", seed: 0, keySpace: 300 },
  { wal: "async-compressed", layout: "u32", maintenance: "manual", seed: 0, keySpace: 300 },
];

for (const mode of MODES) {
  test(
    `${mode.wal}: an I/O fault anywhere in open and recovery is IOError and loses nothing (seed ${SEED})`,
    async () => {
      const cfg = { ...mode, seed: new Prng(SEED ^ mode.wal.length).u32() };
      const syncMode = cfg.wal !== "async-compressed";
      // The directory a power loss left in the middle of a workload.
      const mem = memoryFileSystem();
      const tree = await ZoneTree.open(treeOptions(cfg, mem)) as AnyTree;
      const w = new Workload(tree, cfg);
      await w.run(250);
      tree.maintenance.moveMutableSegmentForward();
      const base = mem.clone();
      base.crash({ keepUnsynced: "random", seed: cfg.seed });
      await tree.close();
      const text = w.text();
      for (const kind of KINDS) {
        for (let n = 1; n < 200; n++) {
          const why = `ZT_SEED=${SEED} ${cfg.wal} open with ${kind.name} failing at ${n}`;
          const inner = base.clone();
          const fs = faultFileSystem(inner, kind.plan(n));
          totals.opens++;
          try {
            const t = await ZoneTree.open(treeOptions(cfg, fs));
            t.events.on("error", () => {});
            try {
              await t.close();
            } catch (e) {
              expect((e as { code?: string }).code, `${why}: close threw ${e}`).toBe("IO");
            }
          } catch (e) {
            totals.failedOpens++;
            expect((e as { code?: string }).code, `${why}: open threw ${(e as Error).stack}`).toBe(
              "IO",
            );
          }
          const injected = fs.injectedCount;
          totals.injected += injected;
          fs.disarm();
          const r = await reopenAndCheck(inner, cfg, text, syncMode, why);
          totals.durableChecked += r.durableChecked;
          if (injected === 0) break; // past the last operation of this kind
        }
      }
    },
    60_000,
  );
}
