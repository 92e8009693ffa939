/**
 * The in-process workload of the fault campaign (`tests/faults/`): a tree on an in-memory file
 * system wrapped in `faultFileSystem`, driven by seeded random operations of every kind (single
 * writes with and without TTL, update, addOrUpdate, tryAdd/tryDelete, deleteRange, batches and
 * transactions with a marker key, flushes, moves of the mutable segment, merges awaited and in
 * the background, bottom merges, backups). It speaks the line protocol of
 * `tests/crash/crash_shared.ts`, so the crash oracle (`Oracle`) judges what survives; a write
 * that threw has no "A" line, so it may or may not survive.
 *
 * While it runs it checks, after every operation:
 * - an operation that fails throws a typed error: `IOError` ("IO"), or `ReadOnlyError`
 *   ("READ_ONLY", with the I/O failure as `cause`) once the tree stopped accepting writes;
 * - once a write failed with an I/O error, every later write is refused (the fsync gate: nothing
 *   that may not be durable is acknowledged after a failed sync);
 * - the live tree shows exactly the acknowledged writes (a write that threw is invisible), and
 *   every value read back is one that a write stored (no garbage).
 *
 * `reopenAndCheck` then opens a copy of the file system (the process killed: `clone()`; a power
 * loss: `clone()` + `crash()`), with no faults, and checks every promise with the oracle.
 *
 * @module
 */
import { expect } from "bun:test";
import { ZoneTree, ZoneTreeError } from "../../mod.ts";
import type { FileSystem } from "../../src/fs/file_system.ts";
import { Prng } from "../../src/util/prng.ts";
import {
  checkDirectory,
  keyOf,
  KEYSPACES,
  type LayoutName,
  MARKER_BASE,
  numberOfKey,
  Oracle,
  TREE_TUNING,
  valueOf,
  widOfValue,
} from "../crash/crash_shared.ts";

/** Settings of one workload run. */
export interface WorkloadConfig {
  wal: "sync" | "sync-compressed" | "async-compressed";
  layout: LayoutName;
  maintenance: "auto" | "manual";
  seed: number;
  /** Record keys are 0 .. keySpace-1. */
  keySpace: number;
}

/** Open options of a workload's tree (the reopen uses the same). */
export function treeOptions(cfg: WorkloadConfig, fs: FileSystem, dir = "/db") {
  return {
    dir,
    fs,
    keyspace: KEYSPACES[cfg.layout],
    wal: cfg.wal,
    maintenance: cfg.maintenance,
    ...TREE_TUNING,
  } as const;
}

// deno-lint-ignore no-explicit-any
export type AnyTree = ZoneTree<any, string, any, any>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The code of a typed error, or a failure naming what was thrown instead. */
function typedCode(e: unknown, what: string): string {
  expect(e instanceof ZoneTreeError, `${what} threw an untyped error: ${(e as Error)?.stack ?? e}`)
    .toBe(true);
  return (e as ZoneTreeError).code;
}

/** A running workload over one open tree. */
export class Workload {
  readonly cfg: WorkloadConfig;
  readonly prng: Prng;
  tree: AnyTree;
  /** The protocol lines (see crash_shared.ts), as a child would print them. */
  readonly lines: string[] = [];
  /** Acknowledged live state: key number → write id. */
  readonly model = new Map<number, number>();
  /** Every error an operation threw, with the operation. */
  readonly thrown: { op: string; error: unknown }[] = [];
  /** Every "error" event. */
  readonly events: unknown[] = [];
  /** Names the run in failure messages. */
  label = "";
  /** Set once a write threw an I/O error: every later write must be refused. */
  writeFailed: unknown;
  /** Backups that completed: directory → write id they hold (every write up to it). */
  readonly backups: { dir: string; wid: number; clean: boolean }[] = [];
  #wid = 1;
  #marker = 0;
  #lastAckedWid = 0;
  #background: Promise<unknown> | undefined;
  #backupCount = 0;

  constructor(tree: AnyTree, cfg: WorkloadConfig) {
    this.cfg = cfg;
    this.prng = new Prng(cfg.seed);
    this.tree = tree;
    this.lines.push(`R ${tree.lastOpIndex}`);
    tree.events.on("error", (e) => this.events.push(e));
  }

  /** The protocol text, as `Oracle.absorb` reads it. */
  text(extra: string[] = []): string {
    return [...this.lines, ...extra].join("\n") + "\n";
  }

  /** A line that says every acknowledged write so far is durable (a flush or close resolved). */
  flushedLine(): string {
    return `F ${this.#lastAckedWid}`;
  }

  #key(n: number): string | number {
    return keyOf(this.cfg.layout, n);
  }

  #pickKey(): number {
    return this.prng.int(2) === 0 ? this.prng.int(40) : this.prng.int(this.cfg.keySpace);
  }

  /** Runs a write: logs "I", calls it, logs "A" and applies `effect` to the model, or checks the error. */
  #write(wid: number, issue: string, call: () => number | undefined, effect: () => void): void {
    this.lines.push(`I ${wid} ${issue}`);
    let opIndex: number | undefined;
    try {
      opIndex = call();
    } catch (e) {
      this.#writeThrew(issue, e);
      return;
    }
    expect(this.writeFailed, `write ${wid} (${issue}) acknowledged after a failed write`)
      .toBeUndefined();
    this.lines.push(`A ${wid} ${opIndex === undefined ? "-" : opIndex}`);
    this.#lastAckedWid = wid;
    if (opIndex !== undefined) effect();
  }

  #writeThrew(op: string, e: unknown): void {
    this.thrown.push({ op, error: e });
    const code = typedCode(e, op);
    if (code === "IO") this.writeFailed ??= e;
    else {
      expect(code, `${op}: ${e}`).toBe("READ_ONLY");
      expect((e as Error).cause, `${op}: ReadOnlyError without the failure as cause`).toBeDefined();
      this.writeFailed ??= e;
    }
  }

  /** One seeded operation. */
  async step(): Promise<void> {
    const x = this.prng.int(1000);
    if (x < 550) this.#single();
    else if (x < 740) this.#batch(1 + this.prng.int(12));
    else if (x < 800) await this.#flush();
    else if (x < 830) {
      this.#maintenance("move", () => this.tree.maintenance.moveMutableSegmentForward());
    } else if (x < 850) {
      if (!this.#background) {
        this.#background = this.tree.maintenance.merge()
          .catch((e) => this.#maintenanceThrew("background merge", e))
          .finally(() => (this.#background = undefined));
      }
    } else if (x < 880) await this.#maintenanceAsync("merge", () => this.tree.maintenance.merge());
    else if (x < 895) {
      const n = this.#stats()?.bottomSegmentsCount ?? 0;
      if (n >= 2) {
        const from = this.prng.int(n - 1);
        const to = from + 1 + this.prng.int(n - 1 - from);
        await this.#maintenanceAsync(
          "mergeBottomSegments",
          () => this.tree.maintenance.mergeBottomSegments(from, to),
        );
      }
    } else if (x < 910) this.#deleteRange();
    else if (x < 918) await this.#backup();
    else if (x < 960) await sleep(this.prng.int(2));
    else this.checkLive();
  }

  #stats() {
    return this.tree.stats();
  }

  #maintenance(op: string, call: () => void): void {
    try {
      call();
    } catch (e) {
      this.#maintenanceThrew(op, e);
    }
  }

  async #maintenanceAsync(op: string, call: () => Promise<unknown>): Promise<void> {
    try {
      await call();
    } catch (e) {
      this.#maintenanceThrew(op, e);
    }
  }

  #maintenanceThrew(op: string, e: unknown): void {
    this.thrown.push({ op, error: e });
    const code = typedCode(e, op);
    expect(["IO", "READ_ONLY"], `${op}: ${e}`).toContain(code);
  }

  #single(): void {
    const w = this.#wid++;
    const k = this.#pickKey();
    const t = this.tree;
    const key = this.#key(k);
    const x = this.prng.int(34);
    const put = () => this.model.set(k, w);
    const del = () => this.model.delete(k);
    if (x < 11) this.#write(w, `U ${k}`, () => t.upsert(key, valueOf(w)), put);
    else if (x < 13) {
      const present = this.model.has(k);
      this.#write(w, `U ${k}`, () => {
        const r = t.update(key, () => valueOf(w));
        expect(r !== undefined, `update(${k}): the tree and the model disagree on presence`).toBe(
          present,
        );
        return r;
      }, put);
    } else if (x < 14) {
      this.#write(w, `U ${k}`, () => t.addOrUpdate(key, valueOf(w), () => valueOf(w)).opIndex, put);
    } else if (x < 16) {
      this.#write(w, `L ${k}`, () => t.upsert(key, valueOf(w), { ttlMs: 3_600_000 }), put);
    } else if (x < 18) {
      this.#write(
        w,
        `P ${k}`,
        () => t.upsert(key, valueOf(w), { expiresAt: Date.now() - 1000 }),
        del,
      );
    } else if (x < 23) {
      const present = this.model.has(k);
      this.#write(w, `A ${k}`, () => {
        const r = t.tryAdd(key, valueOf(w));
        expect(r === undefined, `tryAdd(${k}): the tree and the model disagree on presence`).toBe(
          present,
        );
        return r;
      }, put);
    } else if (x < 28) this.#write(w, `D ${k}`, () => t.forceDelete(key), del);
    else {
      const present = this.model.has(k);
      this.#write(w, `T ${k}`, () => {
        const r = t.tryDelete(key);
        expect(r !== undefined, `tryDelete(${k}): the tree and the model disagree on presence`)
          .toBe(present);
        return r;
      }, del);
    }
  }

  #batch(size: number): void {
    const w = this.#wid++;
    const m = MARKER_BASE + this.#marker++;
    const keys = new Set<number>();
    while (keys.size < size) keys.add(this.#pickKey());
    const asTransaction = this.prng.int(4) === 0;
    const ops: ({ put: unknown; value: string } | { del: unknown })[] = [];
    const desc: string[] = [];
    const puts = new Map<number, boolean>();
    for (const k of keys) {
      const put = this.prng.int(5) !== 0;
      puts.set(k, put);
      ops.push(put ? { put: this.#key(k), value: valueOf(w) } : { del: this.#key(k) });
      desc.push(`${k}:${put ? "p" : "d"}`);
    }
    ops.push({ put: this.#key(m), value: valueOf(w) });
    puts.set(m, true);
    const effect = () => {
      for (const [k, put] of puts) put ? this.model.set(k, w) : this.model.delete(k);
    };
    const t = this.tree;
    this.#write(w, `${asTransaction ? "X" : "B"} ${m} ${desc.join(",")}`, () => {
      if (!asTransaction) return t.batch(ops);
      const tx = t.transaction();
      for (const op of ops) {
        if ("put" in op) {
          tx.get(op.put);
          tx.upsert(op.put, op.value);
        } else tx.delete(op.del);
      }
      return tx.commit();
    }, effect);
  }

  /** deleteRange over record keys (u32 only: with str keys a range would cover marker keys). */
  #deleteRange(): void {
    if (this.cfg.layout !== "u32") return;
    const w = this.#wid++;
    const lo = this.prng.int(this.cfg.keySpace);
    const hi = lo + 1 + this.prng.int(30);
    this.#write(w, `R ${lo} ${hi}`, () => this.tree.deleteRange({ gte: lo, lt: hi }), () => {
      for (const k of [...this.model.keys()]) if (k >= lo && k < hi) this.model.delete(k);
    });
  }

  async #flush(): Promise<void> {
    const covered = this.#lastAckedWid;
    try {
      await this.tree.flush();
    } catch (e) {
      this.#maintenanceThrew("flush", e);
      return;
    }
    this.lines.push(`F ${covered}`);
  }

  async #backup(): Promise<void> {
    const dir = `/bk-${this.cfg.seed}-${this.#backupCount++}`;
    const wid = this.#wid - 1;
    const clean = this.writeFailed === undefined;
    try {
      await this.tree.backup(dir);
    } catch (e) {
      this.#maintenanceThrew("backup", e);
      return;
    }
    this.backups.push({ dir, wid, clean });
  }

  /** The live tree holds exactly the acknowledged writes; every value is one a write stored. */
  checkLive(why = "live tree"): void {
    const seen = new Map<number, number>();
    for (const [k, v] of this.tree.range()) {
      seen.set(numberOfKey(this.cfg.layout, k), widOfValue(v));
    }
    const diffs = [...new Set([...seen.keys(), ...this.model.keys()])]
      .filter((k) => seen.get(k) !== this.model.get(k))
      .slice(0, 5)
      .map((k) => `key ${k}: tree ${seen.get(k)}, acknowledged ${this.model.get(k)}`);
    expect(diffs, `${this.label} ${why} (workload seed ${this.cfg.seed})`).toEqual([]);
  }

  /** Runs `steps` operations, then waits for a background merge. */
  async run(steps: number): Promise<void> {
    for (let i = 0; i < steps; i++) await this.step();
    await this.settle();
  }

  /** Waits for the background merge this workload started. */
  async settle(): Promise<void> {
    while (this.#background) await this.#background;
  }
}

/** What a reopen found. */
export interface ReopenResult {
  durableChecked: number;
  torn: number;
}

/**
 * Opens the tree in `fs` (no faults), checks the directory (no orphan, every file verifies), that
 * every durable write survived and nothing else appeared (the oracle over `text`), that numbering
 * goes on above every opIndex returned, and that the tree takes a write and reopens.
 */
export async function reopenAndCheck(
  fs: FileSystem,
  cfg: WorkloadConfig,
  text: string,
  syncMode: boolean,
  why: string,
): Promise<ReopenResult> {
  const oracle = new Oracle();
  const log = oracle.absorb(text, syncMode);
  let tree: AnyTree;
  try {
    tree = await ZoneTree.open(treeOptions({ ...cfg, maintenance: "manual" }, fs)) as AnyTree;
  } catch (e) {
    throw new Error(`${why}: the reopen failed: ${e} (cause ${(e as Error).cause})`);
  }
  const errors: unknown[] = [];
  tree.events.on("error", (e) => errors.push(e));
  let torn = 0;
  let checked = 0;
  try {
    checkDirectory("/db", cfg.layout, { fs });
    for (const e of errors) {
      expect((e as ZoneTreeError).code, `${why}: ${e}`).toBe("CORRUPTION");
      expect((e as Error).message, `${why}: ${e}`).toContain("torn");
      torn++;
    }
    expect(tree.lastOpIndex, why).toBeGreaterThanOrEqual(log.maxAckedOpIndex);
    const observed = new Map<number, number>();
    for (const [k, v] of tree.range()) observed.set(numberOfKey(cfg.layout, k), widOfValue(v));
    expect(tree.count(), why).toBe(observed.size);
    for (const k of oracle.history.keys()) {
      const v = tree.get(keyOf(cfg.layout, k));
      expect(v === undefined ? -1 : widOfValue(v), `${why}: get(${k})`).toBe(observed.get(k) ?? -1);
    }
    try {
      checked = oracle.check(observed);
    } catch (e) {
      throw new Error(`${why}: ${(e as Error).message}`);
    }
    const opIndex = tree.upsert(keyOf(cfg.layout, 0), valueOf(999_999));
    expect(opIndex, why).toBeGreaterThan(log.maxAckedOpIndex);
    tree.maintenance.moveMutableSegmentForward();
    await tree.maintenance.merge();
  } finally {
    await tree.close();
  }
  const again = await ZoneTree.open(treeOptions({ ...cfg, maintenance: "manual" }, fs)) as AnyTree;
  try {
    expect(widOfValue(again.get(keyOf(cfg.layout, 0))), why).toBe(999_999);
    checkDirectory("/db", cfg.layout, { fs });
  } finally {
    await again.close();
  }
  return { durableChecked: checked, torn };
}
