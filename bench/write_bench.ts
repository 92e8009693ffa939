/**
 * Write benchmark (issue 3): `upsert` of N keys of `<bytes:16>` with 100-byte values (value codec
 * "bytes"), in ascending and in seeded random order, in each WAL mode, and `batch` of 1,000 ops.
 * Every sample opens a fresh tree in a new temporary directory (untimed) and times the writes
 * plus what durability needs:
 *
 * - async-compressed: the writes, then `await tree.flush()` (everything synced);
 * - sync, sync-compressed: the writes (each one is synced before it returns); a smaller count
 *   (`--sync-n`, default 10,000) because every write waits for an fdatasync;
 * - none: the writes (nothing is durable before a merge);
 * - "auto" rows run with `maintenance: "auto"` (default limits: the mutable segment moves forward
 *   at 64 MiB, about 212,000 of these records, and merges are scheduled); all others use
 *   `maintenance: "manual"`, so the whole load stays in the mutable segment.
 *
 *   bun bench/write_bench.ts [--n 1000000] [--sync-n 10000] [--samples 3] [--only regexp]
 *   deno run -A bench/write_bench.ts (same flags)
 *
 * @module
 */
import { defineKeyspace, ZoneTree } from "../mod.ts";
import {
  banner,
  flags,
  fullGc,
  measureManual,
  randomValues,
  removeDir,
  type Result,
  RUNTIME,
  sequentialKeys,
  shuffled,
  startTimer,
  tempDir,
} from "./bench_common.ts";

const args = flags({ n: "1000000", "sync-n": "10000", samples: "3", only: "" });
const N = Number(args.n);
const SYNC_N = Number(args["sync-n"]);
const SAMPLES = Number(args.samples);
const BATCH = 1000;

type WalMode = "async-compressed" | "sync-compressed" | "sync" | "none";
const keyspace = defineKeyspace({ name: "bench", key: "<bytes:16>", value: "bytes" });

// Record i is (key i, value i) in both orders; the random order is a seeded permutation.
const seqKeys = sequentialKeys(N);
const seqValues = randomValues(N, 2);
const order = shuffled(Array.from({ length: N }, (_, i) => i), 1);
const randKeys = order.map((i) => seqKeys[i]);
const randValues = order.map((i) => seqValues[i]);

interface Case {
  name: string;
  wal: WalMode;
  keys: Uint8Array[];
  values: Uint8Array[];
  count: number;
  batch: boolean;
  auto: boolean;
}

function cases(): Case[] {
  const out: Case[] = [];
  const modes: WalMode[] = ["async-compressed", "none", "sync-compressed", "sync"];
  for (const wal of modes) {
    const sync = wal === "sync" || wal === "sync-compressed";
    for (
      const [name, keys, values] of [["seq", seqKeys, seqValues], [
        "rand",
        randKeys,
        randValues,
      ]] as const
    ) {
      const count = sync ? Math.min(SYNC_N, N) : N;
      out.push({
        name: `upsert ${name} ${wal}`,
        wal,
        keys,
        values,
        count,
        batch: false,
        auto: false,
      });
      out.push({
        name: `batch(1000) ${name} ${wal}`,
        wal,
        keys,
        values,
        count: N,
        batch: true,
        auto: false,
      });
    }
  }
  out.push({
    name: "upsert seq async-compressed, auto",
    wal: "async-compressed",
    keys: seqKeys,
    values: seqValues,
    count: N,
    batch: false,
    auto: true,
  });
  out.push({
    name: "upsert rand async-compressed, auto",
    wal: "async-compressed",
    keys: randKeys,
    values: randValues,
    count: N,
    batch: false,
    auto: true,
  });
  const only = new RegExp(args.only); // --only: a regular expression matched against names
  return out.filter((c) => args.only === "" || only.test(c.name));
}

/** Writes `count` records of `keys` one upsert at a time. */
function upsertAll(
  tree: ZoneTree<Uint8Array, Uint8Array, Uint8Array>,
  keys: Uint8Array[],
  values: Uint8Array[],
  count: number,
): void {
  for (let i = 0; i < count; i++) tree.upsert(keys[i], values[i]);
}

/** Writes `count` records of `keys` in batches of BATCH. The op objects are built untimed. */
function batchOps(
  keys: Uint8Array[],
  values: Uint8Array[],
  count: number,
): { put: Uint8Array; value: Uint8Array }[][] {
  const batches = [];
  for (let i = 0; i < count; i += BATCH) {
    const ops = [];
    for (let j = i; j < Math.min(count, i + BATCH); j++) {
      ops.push({ put: keys[j], value: values[j] });
    }
    batches.push(ops);
  }
  return batches;
}

async function runCase(c: Case): Promise<Result> {
  const ops = c.batch ? batchOps(c.keys, c.values, c.count) : undefined;
  const note = c.auto ? "maintenance auto" : "maintenance manual";
  return await measureManual(c.name, c.count, SAMPLES, async () => {
    const dir = tempDir("write");
    fullGc();
    const tree = await ZoneTree.open({
      dir,
      keyspace,
      wal: c.wal,
      maintenance: c.auto ? "auto" : "manual",
      ...(c.auto ? {} : { mutableSegmentMaxItemCount: 1e9, mutableSegmentMaxBytes: 2 ** 40 }),
    });
    let elapsed = 0;
    try {
      const stop = startTimer();
      if (ops) { for (const b of ops) tree.batch(b); }
      else upsertAll(tree, c.keys, c.values, c.count);
      if (c.wal === "async-compressed") await tree.flush();
      elapsed = stop();
    } finally {
      // Close in "none" persists everything in a disk segment (a merge): not part of the writes.
      await tree.close();
      removeDir(dir);
    }
    return elapsed;
  }, note);
}

banner(
  `write_bench (${RUNTIME}): N=${N}, sync modes ${SYNC_N} single upserts, batches of ${BATCH}`,
);
for (const c of cases()) await runCase(c);
