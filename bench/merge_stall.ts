/**
 * Merge stall benchmark (issue 4: "measure the longest stall while a merge of 1,000,000 records
 * runs; target: under 50 ms"). A `setInterval(..., 1)` ticker records the gaps between its
 * callbacks; the longest gap is the longest time the event loop was blocked.
 *
 * 1. Background merge: N records (default 1,000,000; `<bytes:16>` keys, 100-byte random values)
 *    are loaded with `maintenance: "manual"`; then, with the ticker running,
 *    `moveMutableSegmentForward()` and a `maintenance.merge()` that is not awaited until the
 *    ticker has watched it finish. Done twice: into an empty disk segment, then N more records
 *    (new keys between the old ones) into the N-record disk segment.
 * 2. Ingestion with `maintenance: "auto"`: 2N upserts in seeded random order, 1,000 per event-loop
 *    turn (then `setTimeout(0)`), so moves forward and merges happen in the background. Records
 *    the longest single `upsert` call and the ticker's longest gap.
 *
 *   bun bench/merge_stall.ts [--n 1000000] [--only merge|ingest]
 *   deno run -A bench/merge_stall.ts (same flags)
 *
 * The machine's other load shows up as gaps too (the OS deschedules the process): the load
 * average is printed with the results.
 *
 * @module
 */
import * as os from "node:os";
import process from "node:process";
import { defineKeyspace, ZoneTree } from "../mod.ts";
import {
  banner,
  flags,
  fmtNs,
  missingKey,
  nowNs,
  presentKey,
  randomValues,
  removeDir,
  RUNTIME,
  shuffled,
  tempDir,
} from "./bench_common.ts";

const args = flags({ n: "1000000", only: "" });
const N = Number(args.n);
const keyspace = defineKeyspace({ name: "bench", key: "<bytes:16>", value: "bytes" });
type Tree = ZoneTree<Uint8Array, Uint8Array, Uint8Array>;

/** Main-thread CPU time in ms, or NaN where the runtime does not offer it with useful resolution. */
function threadCpuMs(): number {
  const p = process as { threadCpuUsage?: () => { user: number; system: number } };
  if (RUNTIME !== "bun" || typeof p.threadCpuUsage !== "function") return NaN; // Deno's ticks are 10 ms
  const u = p.threadCpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * Records the gaps between the callbacks of a 1 ms interval, in wall time and in main-thread CPU
 * time. On a loaded machine the wall gaps include time the OS gave to other processes; the CPU
 * gap (Bun only) is the work this thread did between two ticks, i.e. the blocking itself.
 */
class Ticker {
  private last = performance.now();
  private lastCpu = threadCpuMs();
  private timer: ReturnType<typeof setInterval>;
  readonly gaps: number[] = [];
  readonly cpuGaps: number[] = [];
  constructor() {
    this.timer = setInterval(() => {
      const t = performance.now();
      const c = threadCpuMs();
      this.gaps.push(t - this.last);
      this.cpuGaps.push(c - this.lastCpu);
      this.last = t;
      this.lastCpu = c;
    }, 1);
  }
  stop(): string {
    clearInterval(this.timer);
    const g = this.gaps.slice().sort((a, b) => a - b);
    const q = (p: number) => g[Math.min(g.length - 1, Math.floor(p * g.length))] ?? 0;
    const over = (ms: number) => g.filter((x) => x > ms).length;
    const cpuMax = Math.max(...this.cpuGaps);
    return `longest gap ${q(1).toFixed(1)} ms (main-thread CPU in the longest CPU gap: ` +
      `${Number.isNaN(cpuMax) ? "n/a" : `${cpuMax.toFixed(1)} ms`}); p99 ${
        q(0.99).toFixed(1)
      } ms; ` +
      `p50 ${q(0.5).toFixed(2)} ms; ${g.length} ticks, ${over(16)} over 16 ms, ${
        over(50)
      } over 50 ms; ` +
      `load ${os.loadavg()[0].toFixed(2)}`;
  }
}

function turn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

async function backgroundMerge(): Promise<void> {
  const dir = tempDir("stall");
  try {
    const tree: Tree = await ZoneTree.open({
      dir,
      keyspace,
      maintenance: "manual",
      mutableSegmentMaxItemCount: 1e9,
      mutableSegmentMaxBytes: 2 ** 40,
    });
    const values = randomValues(N, 2);
    for (const round of [1, 2]) {
      const order = shuffled(Array.from({ length: N }, (_, i) => i), round);
      for (let i = 0; i < N; i++) {
        const r = order[i];
        tree.upsert(round === 1 ? presentKey(r) : missingKey(r), values[r]);
      }
      await tree.flush();
      await turn();
      const ticker = new Ticker();
      const t0 = nowNs();
      tree.maintenance.moveMutableSegmentForward();
      const moveNs = nowNs() - t0;
      const merging = tree.maintenance.merge();
      let done = false;
      merging.finally(() => (done = true));
      while (!done) await new Promise((r) => setTimeout(r, 5));
      await merging;
      const mergeNs = nowNs() - t0;
      const what = round === 1
        ? `${N} records into an empty disk segment`
        : `${N} records into a ${N}-record disk segment`;
      console.log(
        `| background merge, ${what} | ${fmtNs(mergeNs)} (move forward ${
          fmtNs(moveNs)
        }) | ${ticker.stop()} |`,
      );
    }
    await tree.close();
  } finally {
    removeDir(dir);
  }
}

async function ingestAuto(): Promise<void> {
  const dir = tempDir("stall-ingest");
  const total = 2 * N;
  try {
    const tree: Tree = await ZoneTree.open({ dir, keyspace, maintenance: "auto" });
    let moves = 0;
    let merges = 0;
    tree.events.on("segment-moved", () => moves++);
    tree.events.on("merge-ended", () => merges++);
    const values = randomValues(1 << 16, 2);
    const order = shuffled(Array.from({ length: total }, (_, i) => i), 7);
    const keys = order.map((i) => presentKey(i));
    const ticker = new Ticker();
    let longest = 0;
    let longestAt = -1;
    const slow: number[] = [];
    const t0 = nowNs();
    for (let i = 0; i < total; i++) {
      const s = performance.now();
      tree.upsert(keys[i], values[i & 0xffff]);
      const d = performance.now() - s;
      if (d > longest) {
        longest = d;
        longestAt = i;
      }
      if (d > 16) slow.push(d);
      if ((i + 1) % 1000 === 0) await turn();
    }
    const ingestNs = nowNs() - t0;
    while (tree.stats().isMerging || tree.stats().readOnlySegmentsCount > 0) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const allNs = nowNs() - t0;
    console.log(
      `| ingest ${total} upserts, auto maintenance | ${fmtNs(ingestNs)} (until merged: ${
        fmtNs(allNs)
      }; ` +
        `${moves} moves, ${merges} merges) | longest upsert ${
          longest.toFixed(1)
        } ms (upsert #${longestAt}), ` +
        `${slow.length} upserts over 16 ms; ${ticker.stop()} |`,
    );
    await tree.close();
  } finally {
    removeDir(dir);
  }
}

banner(`merge_stall (${RUNTIME}): N=${N}`);
console.log("| scenario | duration | event loop |");
console.log("|---|---|---|");
if (args.only === "" || args.only === "merge") await backgroundMerge();
if (args.only === "" || args.only === "ingest") await ingestAuto();
