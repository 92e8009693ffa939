/**
 * The long crash campaign: `npm run stress -- --minutes N --seed S`. Runs rounds of SIGKILL
 * crash cycles (`crash_cycles.ts`, the same child, oracle and checks as `tree_crash.test.ts`)
 * until the time is up, each round in a fresh directory, rotating through the kinds below: every
 * WAL mode, both key layouts, WAL modes alternating in one directory, and kills in the middle of
 * large merges. The child's op mix has every write kind, batches, transactions, flushes, moves,
 * merges in the background and awaited, bottom merges and backups.
 *
 * Prints a line per round and the totals: cycles, writes acknowledged, durable key writes checked
 * (the keys whose last durable write of a cycle was verified after the kill), lost (0, or the
 * run stops at the first loss and prints the command that reruns that round).
 *
 * Options: --minutes N (default 10), --seed S (default: the clock), --cycles C per round
 * (default 8), --jobs J rounds at once (default 1), --kind K (only that kind), --rounds R (stop
 * after R rounds). Round r runs kind r mod 7 with seed S + r.
 *
 * @module
 */
import * as nodeFs from "node:fs";
import * as os from "node:os";
import { parseArgs } from "node:util";
import { crashCycles, type Run, totals } from "./crash_cycles.ts";

const KINDS: Record<string, Omit<Run, "name" | "cycles" | "seed">> = {
  "sync": { wal: "sync", layout: "str", variant: "ops" },
  "sync-compressed": { wal: "sync-compressed", layout: "u32", variant: "ops" },
  "async-str": { wal: "async-compressed", layout: "str", variant: "ops" },
  "async-u32": { wal: "async-compressed", layout: "u32", variant: "ops" },
  "async-grp": { wal: "async-compressed", layout: "grp", variant: "ops" },
  "alternate": { wal: "alternate", layout: "str", variant: "ops" },
  "merge": {
    wal: "alternate",
    layout: "u32",
    variant: "merge",
    keySpace: 20_000,
    diskSegmentMaxItemCount: 15_000,
  },
};
const KIND_NAMES = Object.keys(KINDS);

const { values: args } = parseArgs({
  args: process.argv.slice(2),
  options: {
    minutes: { type: "string", default: "10" },
    seed: { type: "string", default: String(Date.now() % 1_000_000) },
    cycles: { type: "string", default: "8" },
    jobs: { type: "string", default: "1" },
    kind: { type: "string" },
    rounds: { type: "string" },
  },
});
const minutes = Number(args.minutes);
const seed = Number(args.seed);
const cycles = Number(args.cycles);
const jobs = Number(args.jobs);
const maxRounds = args.rounds === undefined ? Infinity : Number(args.rounds);
if (args.kind !== undefined && !(args.kind in KINDS)) {
  console.error(`unknown --kind ${args.kind}; one of ${KIND_NAMES.join(", ")}`);
  process.exit(2);
}
for (
  const [name, v] of [["minutes", minutes], ["seed", seed], ["cycles", cycles], [
    "jobs",
    jobs,
  ]] as const
) {
  if (!Number.isFinite(v) || v < 0) {
    console.error(`--${name} must be a non-negative number`);
    process.exit(2);
  }
}

const root = nodeFs.mkdtempSync(`${os.tmpdir()}/zt-stress-`);
const started = performance.now();
const deadline = started + minutes * 60_000;
const elapsed = () => `${((performance.now() - started) / 1000).toFixed(0)}s`;
console.log(
  `stress: seed ${seed}, ${minutes} min, ${cycles} cycles per round, ${jobs} job(s), in ${root}`,
);

let nextRound = 0;
let failed = false;

/** Runs rounds until the time or the round budget is used up, or a round fails. */
async function worker(): Promise<void> {
  while (!failed && nextRound < maxRounds && performance.now() < deadline) {
    const round = nextRound++;
    const kind = args.kind ?? KIND_NAMES[round % KIND_NAMES.length];
    const run: Run = { ...KINDS[kind], name: `r${round}-${kind}`, cycles, seed: seed + round };
    const before = { ...totals };
    try {
      await crashCycles(run, root, `stress seed ${seed} round ${round}`);
    } catch (e) {
      failed = true;
      console.error(`\nFAILED round ${round} (${kind}, seed ${run.seed}) after ${elapsed()}:`);
      console.error(e instanceof Error ? e.stack ?? e.message : e);
      console.error(
        `reproduce: npm run stress -- --seed ${run.seed} --kind ${kind} --rounds 1 --cycles ${cycles}`,
      );
      console.error(`the directory is kept: ${root}/${run.name}`);
      return;
    }
    nodeFs.rmSync(`${root}/${run.name}`, { recursive: true, force: true });
    console.log(
      `round ${round} ${kind} seed ${run.seed}: ${totals.cycles - before.cycles} cycles, ` +
        `${totals.acked - before.acked} acknowledged, ` +
        `${totals.durableChecked - before.durableChecked} durable key writes checked, lost 0 ` +
        `[${elapsed()}]`,
    );
  }
}

await Promise.all(Array.from({ length: Math.max(1, jobs) }, () => worker()));
console.log(`\nstress totals (seed ${seed}, ${elapsed()}): ${JSON.stringify(totals)}`);
console.log(
  `cycles ${totals.cycles}, writes issued ${totals.issued}, acknowledged ${totals.acked}, ` +
    `durable key writes checked ${totals.durableChecked} (a batch counts each key), lost ${
      failed ? "(stopped at the first)" : 0
    }`,
);
if (!failed) nodeFs.rmSync(root, { recursive: true, force: true });
process.exit(failed ? 1 : 0);
