/**
 * A sequential load in batches, as the peer harness's `seq-insert` does it, in a fresh process:
 * N (default 1,000,000) 16-byte big-endian counter keys with 100-byte values, ascending, in
 * batches of 1,000 built as `{ put, value }` ops just before each call, into a new tree with the
 * default WAL mode (`async-compressed`). Keys, values and ops arrays are made before the timer;
 * the load does not yield (as the harness). Prints records per second and the minor page faults
 * of the load (the whole process's and the main thread's).
 *
 * `PACE=0` turns off the young-generation pacing (`src/util/gc_pacer.ts`) for the run, so the
 * batch pacing can be compared in separate fresh processes (its effect is on first loads:
 * memory a process touched once is cheap to touch again):
 *
 *   bun bench/batch_load.ts            # paced (the default)
 *   PACE=0 bun bench/batch_load.ts     # unpaced
 *   N=300000 ROUNDS=2 bun bench/batch_load.ts
 *
 * Bun only for the page-fault split (it reads /proc); the pacing does nothing outside Bun.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defineKeyspace, ZoneTree } from "../mod.ts";
import { setGcPacing } from "../src/util/gc_pacer.ts";
import { fullGc, randomValues, sequentialKeys } from "./bench_common.ts";

const n = Number(process.env.N ?? 1_000_000);
const rounds = Number(process.env.ROUNDS ?? 1);
const BATCH = 1000;
if (process.env.PACE === "0") setGcPacing(false);

const keys = sequentialKeys(n);
const values = randomValues(n, 42);
const keyspace = defineKeyspace({ key: "<bytes:16>", value: "bytes" });

/** Minor faults of the main thread (Linux), or NaN. */
function mainThreadFaults(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[7]);
  } catch {
    return NaN;
  }
}

for (let round = 0; round < rounds; round++) {
  const dir = mkdtempSync(join(tmpdir(), "zt-batch-load-"));
  const tree = await ZoneTree.open({ dir, keyspace });
  fullGc();
  const faults0 = process.resourceUsage().minorPageFault;
  const main0 = mainThreadFaults();
  const start = performance.now();
  for (let b = 0; b < n; b += BATCH) {
    const end = Math.min(n, b + BATCH);
    const ops = new Array(end - b);
    for (let i = b; i < end; i++) ops[i - b] = { put: keys[i], value: values[i] };
    tree.batch(ops);
  }
  const ms = performance.now() - start;
  const faults = process.resourceUsage().minorPageFault - faults0;
  const main = mainThreadFaults() - main0;
  console.log(
    `round ${round + 1}: ${(n / ms * 1000 / 1e6).toFixed(2)}M records/s (${ms.toFixed(0)} ms), ` +
      `page faults ${faults} (main thread ${main}), pacing ${process.env.PACE === "0" ? "off" : "on"}`,
  );
  await tree.close();
  rmSync(dir, { recursive: true, force: true });
}
