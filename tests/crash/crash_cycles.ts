/**
 * The crash cycles of `tree_crash.test.ts` (CI budget) and `stress.ts` (long campaigns): run the
 * child (`crash_child.ts`) on a real directory until the kill policy fires, SIGKILL it, reopen
 * the directory and check, against the oracle built from the child's stdout, that
 * - every durable acknowledged write is present, or superseded by a write issued after it
 *   ("sync", "sync-compressed": every acknowledged write; "async-compressed": every write
 *   acknowledged before a resolved flush());
 * - what survives is a prefix of the writes: every write acknowledged before the newest one
 *   whose value is seen is present too, or superseded;
 * - a batch is all or nothing (its marker key decides which);
 * - no value appears that no write to that key stored; range, reverse range and get agree;
 * - lastOpIndex after reopen is at least every opIndex ever returned, and a new write gets a
 *   larger one;
 * - the change feed since the child opened the tree holds every durable write and replays to
 *   the tree's content; every backup the child completed holds exactly the tree as of its call;
 * - no orphan file is left, every file the metadata names exists, every WAL replays and every
 *   disk segment verifies (before and after the parent closes it again).
 * Cycles continue in the same directory, so recovery of a recovered tree is exercised; the
 * parent sometimes merges after recovery. CRASH_DEBUG=1 prints every cycle.
 *
 * @module
 */
import { expect } from "bun:test";
import * as nodeFs from "node:fs";
import { ZoneTree } from "../../mod.ts";
import { Prng } from "../../src/util/prng.ts";
import {
  checkDirectory,
  type ChildConfig,
  type CycleLog,
  keyOf,
  KEYSPACES,
  numberOfKey,
  Oracle,
  tuningOf,
  valueOf,
  widOfValue,
} from "./crash_shared.ts";

/** These tests exercise the change feed across merges: keep 64 MiB of merged WALs for it. */
const FEED_RETENTION = 64 * 1024 * 1024;

const childScript = new URL("./crash_child.ts", import.meta.url).pathname;

/** Totals over every run of this process (the test and the stress driver print them). */
export const totals = {
  cycles: 0,
  issued: 0,
  acked: 0,
  durableChecked: 0,
  torn: 0,
  merges: 0,
  killedInMerge: 0,
  backups: 0,
  feedChanges: 0,
  bottomMerges: 0,
  maxBottomSegments: 0,
};

/**
 * When the child dies: the parent kills it once it printed `afterLines` lines (lands anywhere,
 * also inside a call), some ms after the large merge started, or the child kills itself before
 * step `selfAtStep` (between calls, with background WAL writes and merges under way; the op
 * sequence up to the kill is then exactly reproducible from the seed).
 */
export type KillPolicy = { afterLines: number } | { afterMergeMs: number } | { selfAtStep: number };

/** Runs the child until the kill policy fires, SIGKILLs it and returns everything it printed. */
export async function runChild(cfg: ChildConfig, kill: KillPolicy): Promise<string> {
  const child = Bun.spawn([process.execPath, childScript, JSON.stringify(cfg)], {
    stdout: "pipe",
    stderr: "pipe",
  });
  let text = "";
  let lines = 0;
  let killed = false;
  const killNow = () => {
    if (!killed) child.kill(9);
    killed = true;
  };
  let stalled = false;
  const hardStop = setTimeout(() => {
    stalled = true;
    killNow();
  }, 30_000);
  let mergeTimer: ReturnType<typeof setTimeout> | undefined;
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    const s = decoder.decode(chunk, { stream: true });
    text += s;
    if (killed) continue;
    for (let i = s.indexOf("\n"); i >= 0; i = s.indexOf("\n", i + 1)) lines++;
    if ("afterLines" in kill && lines >= kill.afterLines) killNow();
    if ("afterMergeMs" in kill && mergeTimer === undefined && /(^|\n)G /.test(text)) {
      mergeTimer = setTimeout(killNow, kill.afterMergeMs);
    }
    if (/(^|\n)E /.test(text)) killNow();
  }
  const code = await child.exited;
  clearTimeout(hardStop);
  clearTimeout(mergeTimer);
  const stderr = await new Response(child.stderr).text();
  if (stalled) throw new Error(`the child stalled for 30 s; stderr: ${stderr}`);
  const selfKilled = "selfAtStep" in kill && child.signalCode === "SIGKILL";
  if (!(killed || selfKilled) || code !== null && child.signalCode !== "SIGKILL") {
    throw new Error(
      `the child exited by itself (${code}); stdout tail: ${text.slice(-500)}; stderr: ${stderr}`,
    );
  }
  return text;
}

export interface Run {
  name: string;
  wal: ChildConfig["wal"] | "alternate";
  layout: ChildConfig["layout"];
  variant: ChildConfig["variant"];
  cycles: number;
  seed: number;
  keySpace?: number;
  diskSegmentMaxItemCount?: number;
}

/**
 * Every backup the child made holds exactly the tree as of its call; one cut short by the kill
 * has no metadata and does not open.
 */
async function checkBackups(cfg: ChildConfig, oracle: Oracle, log: CycleLog): Promise<void> {
  for (const b of log.backups) {
    let tree;
    try {
      tree = await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION,
        dir: b.dir,
        keyspace: KEYSPACES[cfg.layout],
        mode: "open",
        readOnly: true,
      });
    } catch (e) {
      expect(b.complete, `backup ${b.dir}: ${e}`).toBe(false);
      expect((e as { code?: string }).code, `backup ${b.dir}: ${e}`).toBe("DATABASE_NOT_FOUND");
      nodeFs.rmSync(b.dir, { recursive: true, force: true });
      continue;
    }
    try {
      checkDirectory(b.dir, cfg.layout, { backup: true });
      const got = new Map<number, number>();
      // deno-lint-ignore no-explicit-any
      for (const [k, v] of (tree as ZoneTree<any, string, any, any>).range()) {
        got.set(numberOfKey(cfg.layout, k), widOfValue(v));
      }
      const want = oracle.stateAt(b.wid);
      const diffs = [...new Set([...got.keys(), ...want.keys()])].filter((k) =>
        got.get(k) !== want.get(k)
      );
      expect(
        diffs.slice(0, 5).map((k) => `${k}: ${got.get(k)} vs ${want.get(k)}`),
        `backup ${b.dir}`,
      ).toEqual([]);
      totals.backups++;
    } finally {
      await tree.close();
    }
    // Restored: a writable open settles the copy (drops the retained WALs it lacks) and merges.
    const restored = await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION,
      dir: b.dir,
      keyspace: KEYSPACES[cfg.layout],
      mode: "open",
      maintenance: "manual",
      ...tuningOf(cfg),
    });
    try {
      checkDirectory(b.dir, cfg.layout);
      restored.maintenance.moveMutableSegmentForward();
      await restored.maintenance.merge();
      expect(restored.count(), `restored backup ${b.dir}`).toBe(oracle.stateAt(b.wid).size);
    } finally {
      await restored.close();
    }
    checkDirectory(b.dir, cfg.layout);
    nodeFs.rmSync(b.dir, { recursive: true, force: true });
  }
}

/**
 * The change feed since the child opened the tree holds every durable write of the cycle at the
 * opIndex it returned, only writes the child issued, in increasing opIndex order, and replaying
 * it over the cycle's starting content gives exactly what the tree holds now.
 */
async function checkChangeFeed(
  // deno-lint-ignore no-explicit-any
  t: ZoneTree<any, string, any, any>,
  cfg: ChildConfig,
  oracle: Oracle,
  log: CycleLog,
  observed: Map<number, number>,
): Promise<void> {
  const ks = KEYSPACES[cfg.layout];
  const state = oracle.baseline();
  const seen = new Set<number>();
  let last = log.openedAt;
  const now = Date.now();
  for await (const c of t.changes(log.openedAt)) {
    expect(c.opIndex, "change feed order").toBeGreaterThan(last);
    last = c.opIndex;
    seen.add(c.opIndex);
    if (c.type === "deleteRange") {
      for (const k of [...state.keys()]) {
        const enc = ks.key.encode(keyOf(cfg.layout, k));
        if (ks.key.compare(enc, c.range.start) >= 0 && ks.key.compare(enc, c.range.end) < 0) {
          state.delete(k);
        }
      }
      continue;
    }
    const k = numberOfKey(cfg.layout, c.key);
    if (c.type === "delete") {
      state.delete(k);
      continue;
    }
    const wid = widOfValue(c.value);
    const expired = c.expiresAt !== undefined && c.expiresAt <= now;
    expect(
      oracle.wrote(wid, k, expired ? "del" : "put"),
      `change ${c.opIndex}: write ${wid} on key ${k}`,
    ).toBe(true);
    if (expired) state.delete(k);
    else state.set(k, wid);
  }
  for (const [wid, opIndex] of oracle.durableWrites()) {
    expect(
      seen.has(opIndex),
      `durable write ${wid} (opIndex ${opIndex}) missing from the change feed`,
    ).toBe(true);
  }
  const diffs = [...new Set([...state.keys(), ...observed.keys()])].filter((k) =>
    state.get(k) !== observed.get(k)
  );
  expect(
    diffs.slice(0, 5).map((k) => `${k}: feed gives ${state.get(k)}, tree has ${observed.get(k)}`),
    "baseline + change feed = tree",
  ).toEqual([]);
  totals.feedChanges += seen.size;
}

/** Reopens the tree after a kill and checks every promise; returns the durable writes checked. */
async function reopenAndCheck(
  cfg: ChildConfig,
  oracle: Oracle,
  log: CycleLog,
  cycle: number,
  prng: Prng,
): Promise<void> {
  const tree = await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION,
    dir: cfg.dir,
    keyspace: KEYSPACES[cfg.layout],
    wal: cfg.wal,
    maintenance: "manual",
    ...tuningOf(cfg),
  });
  const errors: unknown[] = [];
  tree.events.on("error", (e) => errors.push(e));
  try {
    // Synchronously after open: recovery has removed what it removes, and nothing runs yet.
    checkDirectory(cfg.dir, cfg.layout);
    for (const e of errors) {
      expect((e as { code?: string }).code, String(e)).toBe("CORRUPTION");
      expect((e as Error).message, String(e)).toContain("torn");
      totals.torn++;
    }
    const openedAt = tree.lastOpIndex;
    totals.maxBottomSegments = Math.max(totals.maxBottomSegments, tree.stats().bottomSegmentsCount);
    expect(openedAt).toBeGreaterThanOrEqual(oracle.maxOpIndexEver);
    expect(openedAt).toBeGreaterThanOrEqual(log.openedAt);

    // deno-lint-ignore no-explicit-any
    const t = tree as ZoneTree<any, string, any, any>;
    const observed = new Map<number, number>();
    for (const [k, v] of t.range()) observed.set(numberOfKey(cfg.layout, k), widOfValue(v));
    const reverse = [...t.keys({ reverse: true })].map((k) => numberOfKey(cfg.layout, k));
    expect(reverse).toEqual([...observed.keys()].reverse());
    expect(t.count()).toBe(observed.size);
    for (const k of oracle.history.keys()) {
      const v = t.get(keyOf(cfg.layout, k));
      expect(v === undefined ? -1 : widOfValue(v), `get(${k})`).toBe(observed.get(k) ?? -1);
    }
    await checkChangeFeed(t, cfg, oracle, log, observed);
    totals.durableChecked += oracle.check(observed);

    // Numbering goes on above everything ever returned.
    const w = cycle * 1_000_000 + 999_999;
    const k = prng.int(300);
    const opIndex = t.upsert(keyOf(cfg.layout, k), valueOf(w));
    expect(opIndex).toBeGreaterThan(oracle.maxOpIndexEver);
    expect(opIndex).toBeGreaterThan(openedAt);
    oracle.maxOpIndexEver = opIndex;
    oracle.history.set(k, [{ wid: w, kind: "put", status: "durable" }]);

    // Sometimes persist the recovered segments here, so the next child starts from merged files.
    if (prng.int(3) === 0) {
      t.maintenance.moveMutableSegmentForward();
      await t.maintenance.merge();
    }
  } finally {
    await tree.close();
  }
  checkDirectory(cfg.dir, cfg.layout);
  const reopened = await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION,
    dir: cfg.dir,
    keyspace: KEYSPACES[cfg.layout],
    mode: "open",
    readOnly: true,
  });
  try {
    expect(reopened.lastOpIndex).toBe(oracle.maxOpIndexEver);
  } finally {
    await reopened.close();
  }
}

export async function crashCycles(run: Run, root: string, label: string): Promise<void> {
  const dir = `${root}/${run.name}`;
  const prng = new Prng(run.seed);
  const oracle = new Oracle();
  for (let cycle = 1; cycle <= run.cycles; cycle++) {
    const wal = run.wal === "alternate"
      ? (cycle % 2 ? "async-compressed" : "sync-compressed")
      : run.wal;
    const cfg: ChildConfig = {
      dir,
      wal,
      layout: run.layout,
      maintenance: cycle % 2 ? "auto" : "manual",
      seed: prng.u32(),
      widBase: cycle * 1_000_000,
      markerBase: cycle * 100_000,
      variant: run.variant,
      keySpace: run.keySpace,
      diskSegmentMaxItemCount: run.diskSegmentMaxItemCount,
    };
    const syncMode = wal !== "async-compressed";
    const kill: KillPolicy = run.variant === "merge"
      ? { afterMergeMs: prng.int(700) }
      : prng.int(2) === 0
      ? { afterLines: 20 + prng.int(syncMode ? 300 : 1000) }
      : { selfAtStep: 10 + prng.int(syncMode ? 200 : 700) };
    if ("selfAtStep" in kill) cfg.killAtStep = kill.selfAtStep;
    const where = `seed ${run.seed} (${label}) ${run.name} cycle ${cycle} ${JSON.stringify(kill)}`;
    try {
      const t0 = performance.now();
      const stdout = await runChild(cfg, kill);
      const t1 = performance.now();
      const log = oracle.absorb(stdout, syncMode);
      totals.cycles++;
      totals.issued += log.issued;
      totals.acked += log.acked;
      totals.merges += log.merges;
      totals.bottomMerges += log.bottomMerges;
      if (log.merges > log.mergesEnded) totals.killedInMerge++;
      if (run.variant === "merge") expect(log.bigMerge).toBe(true);
      await checkBackups(cfg, oracle, log);
      await reopenAndCheck(cfg, oracle, log, cycle, prng);
      if (process.env.CRASH_DEBUG) {
        console.log(
          where,
          Math.round(t1 - t0),
          Math.round(performance.now() - t1),
          JSON.stringify(log),
        );
      }
    } catch (e) {
      (e as Error).message = `${where}: ${(e as Error).message}`;
      throw e;
    }
  }
}
