/**
 * Crash tests of the whole tree with real processes and real files: a child (`crash_child.ts`)
 * writes seeded random operations and is SIGKILLed at a seeded moment; the parent reopens the
 * directory and checks, against the oracle built from the child's stdout, that
 * - every durable acknowledged write is present, or superseded by a write issued after it
 *   ("sync", "sync-compressed": every acknowledged write; "async-compressed": every write
 *   acknowledged before a resolved flush());
 * - what survives is a prefix of the writes: every write acknowledged before the newest one
 *   whose value is seen is present too, or superseded;
 * - a batch is all or nothing (its marker key decides which);
 * - no value appears that no write to that key stored; range, reverse range and get agree;
 * - lastOpIndex after reopen is at least every opIndex ever returned, and a new write gets a
 *   larger one;
 * - no orphan file is left, every file the metadata names exists, every WAL replays and every
 *   disk segment verifies (before and after the parent closes it again).
 * Cycles continue in the same directory, so recovery of a recovered tree is exercised; the
 * parent sometimes merges after recovery. A variant kills the child in the middle of large merges.
 *
 * ZT_SEED=<n> reproduces a run (the op sequence and the kill points, counted in output lines);
 * CRASH_CYCLES=<n> runs more cycles (default 10 per mode); CRASH_DEBUG=1 prints every cycle.
 */
import { afterAll, beforeAll, test } from "bun:test";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import { crashCycles, type Run, totals } from "./crash_cycles.ts";

const SEED = Number(process.env.ZT_SEED ?? Date.now() % 1_000_000);
const CYCLES = Number(process.env.CRASH_CYCLES ?? 10);

let root: string;
beforeAll(() => (root = nodeFs.mkdtempSync(`${os.tmpdir()}/zt-crash-`)));
afterAll(() => nodeFs.rmSync(root, { recursive: true, force: true }));

afterAll(() => console.log(`crash totals (seed ${SEED}): ${JSON.stringify(totals)}`));

const RUNS: Run[] = [
  { name: "sync", wal: "sync", layout: "str", variant: "ops", cycles: CYCLES, seed: SEED + 1 },
  {
    name: "sync-compressed",
    wal: "sync-compressed",
    layout: "u32",
    variant: "ops",
    cycles: CYCLES,
    seed: SEED + 2,
  },
  {
    name: "async-compressed",
    wal: "async-compressed",
    layout: "str",
    variant: "ops",
    cycles: CYCLES,
    seed: SEED + 3,
  },
  {
    name: "merge",
    wal: "alternate",
    layout: "u32",
    variant: "merge",
    cycles: Math.max(4, CYCLES >> 1),
    seed: SEED + 4,
    keySpace: 20_000,
    diskSegmentMaxItemCount: 15_000,
  },
];

for (const run of RUNS) {
  test.concurrent(
    `${run.name}: SIGKILL at random moments loses no durable write (seed ${run.seed})`,
    async () => {
      await crashCycles(run, root, `file seed ${SEED}`);
    },
    120_000 + CYCLES * 10_000,
  );
}
