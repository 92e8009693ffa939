/**
 * The consumer child of `replication_kill.test.ts`. It opens a source tree and a replica (target
 * tree + state tree) on real directories and runs `replicate(source, replica)`. With `write`, a
 * task in the same process also writes seeded random operations to the source (so the feed is
 * read while writes, moves, merges and WAL renames go on) until the parent SIGKILLs the process;
 * without it, the child catches up once (`follow: false`), closes everything and exits 0.
 *
 * Lines on stdout (synchronous write(2), so a kill only loses lines about unfinished calls):
 *   P                the last kill interrupted an apply; opening the replicator redid it
 *   R <position>     opened; the replica's stored position
 *   A <position>     an apply returned (data and position are durable)
 *   D <position>     caught up and closed (final run only)
 *   E <message>      something failed: the test fails
 *
 * Run: bun tests/systems/replication_child.ts '{"root":"/tmp/x","seed":1,"write":true}'
 */
import * as nodeFs from "node:fs";
import { replicaStateKeyspace, replicate, Replicator, ZoneTree } from "../../mod.ts";
import { Prng } from "../../src/util/prng.ts";
import { replicationKeyspace as ks } from "./replication_shared.ts";

/** These tests exercise the change feed across merges: keep 64 MiB of merged WALs for it. */
const FEED_RETENTION = 64 * 1024 * 1024;

const cfg = JSON.parse(process.argv[2]) as { root: string; seed: number; write: boolean };
const out = (line: string) => {
  const bytes = new TextEncoder().encode(line + "\n");
  for (let done = 0; done < bytes.length;) done += nodeFs.writeSync(1, bytes, done);
};

try {
  const source = await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION,
    dir: `${cfg.root}/source`,
    keyspace: ks,
    mutableSegmentMaxItemCount: 200,
    multipartMinItemCount: 100,
    multipartMaxItemCount: 400,
  });
  const target = await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION,
    dir: `${cfg.root}/replica`,
    keyspace: ks,
    mutableSegmentMaxItemCount: 500,
  });
  const state = await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION,
    dir: `${cfg.root}/replica-state`,
    keyspace: replicaStateKeyspace,
  });
  for (const t of [source, target, state]) {
    t.events.on("error", (e) => {
      if (!(e instanceof Error && /torn/.test(e.message))) {
        out(`E error event: ${String(e)}`.replaceAll("\n", " "));
      }
    });
  }
  // An apply the last kill cut between its state write and its data write: open finishes it.
  if (state.get([3, new Uint8Array(0), 0n]) !== undefined) out("P");
  const replica = await Replicator.open(target, state);
  out(`R ${replica.position}`);
  const prng = new Prng(cfg.seed);
  if (cfg.write) {
    void writeForever(source, prng).catch((e) =>
      out(`E writer: ${String(e)}`.replaceAll("\n", " "))
    );
    await replicate(source, replica, {
      batchSize: 1 + prng.int(100),
      pollMs: 1,
      onApply: (r) => out(`A ${r.position}`),
    });
  } else {
    const position = await replicate(source, replica, {
      follow: false,
      onApply: (r) => out(`A ${r.position}`),
    });
    for (const t of [source, target, state]) await t.close();
    out(`D ${position}`);
  }
} catch (e) {
  out(`E ${e instanceof Error ? `${e.name} ${e.message}` : String(e)}`.replaceAll("\n", " "));
  process.exit(1);
}

async function writeForever(
  source: ZoneTree<{ g: string; n: number }, string, unknown, unknown>,
  r: Prng,
) {
  for (let step = 0;; step++) {
    const g = `g${r.int(6)}`;
    const n = r.int(300);
    const value = `${cfg.seed}.${step}.${"v".repeat(r.int(40))}`;
    const choice = r.int(100);
    if (choice < 55) source.upsert({ g, n }, value);
    else if (choice < 70) source.forceDelete({ g, n });
    else if (choice < 82) {
      source.batch([{ put: { g, n }, value }, { del: { g, n: n + 1 } }, {
        put: { g, n: n + 2 },
        value: value + "b",
      }]);
    } else if (choice < 84) source.deleteRange({ gte: { g, n }, lt: { g, n: n + r.int(30) } });
    else if (choice < 92) {
      const tx = source.transaction();
      tx.upsert({ g, n }, `${tx.get({ g, n }) ?? ""}+`.slice(-60));
      tx.commit();
    } else if (choice < 94) source.maintenance.moveMutableSegmentForward();
    if (step % 20 === 19) await new Promise((resolve) => setTimeout(resolve, r.int(3)));
  }
}
