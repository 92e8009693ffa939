/**
 * Replication through the change feed survives random kills of the consumer: a real child
 * process (`replication_child.ts`) writes to a source tree and replicates it into a second tree
 * (`replicate` + `Replicator`) at the same time, and is SIGKILLed at a random moment, again and
 * again; each restart continues from the position stored in the replica. A last run catches up,
 * and the replica's full scan must then equal the source's, byte for byte (encoded keys and
 * values), with the replica's position at the source's last write.
 *
 * ZT_SEED=<n> reproduces the kill points (counted in applies) and the child's writes.
 * REPLICATION_KILLS=<n> sets the number of kill cycles (default 8).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import { replicaStateKeyspace, Replicator, ZoneTree } from "../../mod.ts";
import { Prng } from "../../src/util/prng.ts";
import { replicationKeyspace as ks } from "./replication_shared.ts";

/** These tests exercise the change feed across merges: keep 64 MiB of merged WALs for it. */
const FEED_RETENTION = 64 * 1024 * 1024;

const SEED = Number(process.env.ZT_SEED ?? Date.now() % 100_000);
const KILLS = Number(process.env.REPLICATION_KILLS ?? 8);
const childScript = new URL("./replication_child.ts", import.meta.url).pathname;

let root: string;
beforeAll(() => (root = nodeFs.mkdtempSync(`${os.tmpdir()}/zt-replication-`)));
afterAll(() => {
  if (process.env.ZT_KEEP) console.log(`kept ${root}`);
  else nodeFs.rmSync(root, { recursive: true, force: true });
});

interface ChildResult {
  lines: string[];
  killed: boolean;
}

/**
 * Runs the child; SIGKILLs it once `killAfterApplies` applies were reported or `killAfterMs` after
 * it opened, whichever comes first.
 */
async function runChild(
  seed: number,
  write: boolean,
  killAfterApplies?: number,
  killAfterMs?: number,
): Promise<ChildResult> {
  const child = Bun.spawn([process.execPath, childScript, JSON.stringify({ root, seed, write })], {
    stdout: "pipe",
    stderr: "pipe",
  });
  let text = "";
  let applies = 0;
  let killed = false;
  const kill = () => {
    if (!killed) child.kill(9);
    killed = true;
  };
  const hardStop = setTimeout(kill, 30_000);
  let timed: ReturnType<typeof setTimeout> | undefined;
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    const s = decoder.decode(chunk, { stream: true });
    text += s;
    // The time to the kill counts from the open, so that every cycle replicates something.
    if (killAfterMs !== undefined && timed === undefined && /(^|\n)R /.test(text)) {
      timed = setTimeout(kill, killAfterMs);
    }
    applies += s.split("\n").filter((l) => l.startsWith("A ")).length;
    if (killAfterApplies !== undefined && applies >= killAfterApplies) kill();
    if (/(^|\n)E /.test(text)) kill();
  }
  await child.exited;
  clearTimeout(hardStop);
  clearTimeout(timed);
  const lines = text.split("\n").filter((l) => l.length > 0);
  const errors = lines.filter((l) => l.startsWith("E "));
  const stderr = await new Response(child.stderr).text();
  if (errors.length > 0) throw new Error(`child failed: ${errors.join("; ")}; stderr: ${stderr}`);
  if (!write && child.exitCode !== 0) {
    throw new Error(`final child exited ${child.exitCode}: ${stderr}`);
  }
  return { lines, killed };
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

function rawScan(tree: ZoneTree<unknown, string, unknown, unknown>): string[] {
  const out: string[] = [];
  for (const [k, v] of tree.range()) {
    out.push(`${hex(ks.key.encode(k as never))}=${hex(ks.value.encode(v))}`);
  }
  return out;
}

test(
  `replication into a second tree ends byte-identical after ${KILLS} SIGKILLs of the consumer (seed ${SEED})`,
  async () => {
    const prng = new Prng(SEED);
    const positions: number[] = [];
    let applies = 0;
    let killsMidApply = 0;
    let redone = 0;
    for (let cycle = 0; cycle < KILLS; cycle++) {
      // Kill after 1–40 applies, or after a random time, whichever comes first.
      const result = await runChild(
        SEED * 100 + cycle,
        true,
        1 + prng.int(40),
        150 + prng.int(600),
      );
      expect(result.killed).toBe(true);
      const ready = result.lines.find((l) => l.startsWith("R "));
      expect(ready).toBeDefined();
      const acked = result.lines.filter((l) => l.startsWith("A ")).map((l) => Number(l.slice(2)));
      const start = Number(ready!.slice(2));
      // The restart continued from the durable position: never behind what the last run acknowledged.
      if (positions.length > 0) {
        expect(start).toBeGreaterThanOrEqual(positions[positions.length - 1]);
      }
      if (acked.length > 0) positions.push(acked[acked.length - 1]);
      else positions.push(start);
      applies += acked.length;
      if (result.lines.includes("P")) redone++;
      if (acked.length > 0) killsMidApply++;
    }
    const final = await runChild(SEED * 100 + KILLS, false);
    if (final.lines.includes("P")) redone++;
    const done = final.lines.find((l) => l.startsWith("D "));
    expect(done).toBeDefined();

    const source = await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION, dir: `${root}/source`, keyspace: ks, readOnly: true });
    const target = await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION, dir: `${root}/replica`, keyspace: ks, readOnly: true });
    const state = await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION,
      dir: `${root}/replica-state`,
      keyspace: replicaStateKeyspace,
      readOnly: true,
    });
    try {
      const expected = rawScan(source);
      const actual = rawScan(target);
      expect(actual.length).toBe(expected.length);
      expect(actual).toEqual(expected);
      expect(expected.length).toBeGreaterThan(100);
      // Every write of the source was replicated: the position is its last write.
      let last = 0;
      for await (const c of source.changes(0)) last = c.opIndex;
      const position = Number(done!.slice(2));
      expect(position).toBe(last);
      // The stored position agrees, and no apply is left half done (no PENDING record).
      const replica = await Replicator.open(target, state);
      expect(replica.position).toBe(last);
      expect(state.count({ prefix: [3] })).toBe(0);
      console.log(
        `replication kill test (seed ${SEED}): ${KILLS} kills (${killsMidApply} after applies), ${applies} applies acknowledged, ` +
          `${redone} interrupted applies redone on open, ` +
          `${expected.length} records compared byte for byte, final position ${position}`,
      );
    } finally {
      for (const t of [source, target, state]) await t.close();
    }
  },
  120_000,
);
