/**
 * The crash child: opens a tree on a real directory and performs seeded random operations until
 * it is killed, telling the parent on stdout what it is about to write and what was acknowledged
 * (protocol in `crash_shared.ts`). Every line is written with a synchronous write(2) before the
 * next call, so a SIGKILL loses only lines about calls that had not returned.
 *
 * Run: bun tests/crash/crash_child.ts '<ChildConfig as JSON>'
 *
 * Variants:
 * - "ops": upsert (some with a TTL, some already expired), update, addOrUpdate, tryAdd,
 *   forceDelete, tryDelete, deleteRange, batches and transactions of 1–20 ops (one in ten of
 *   128–191) with a marker key, flushes, yields, moves of the mutable segment, merges awaited
 *   and running in the background, bottom segment merges, backups.
 * - "merge": loads a few thousand records in batches, then starts a large merge in the background
 *   and goes on with the "ops" mix while it runs (the parent kills it some time after "M").
 */
import * as nodeFs from "node:fs";
import { ZoneTree } from "../../mod.ts";
import { Prng } from "../../src/util/prng.ts";
import {
  type ChildConfig,
  KEY_SPACE,
  keyOf,
  KEYSPACES,
  MARKER_BASE,
  tuningOf,
  valueOf,
} from "./crash_shared.ts";

/** These tests exercise the change feed across merges: keep 64 MiB of merged WALs for it. */
const FEED_RETENTION = 64 * 1024 * 1024;

const cfg = JSON.parse(process.argv[2]) as ChildConfig;
const prng = new Prng(cfg.seed);
const out = (line: string) => {
  const bytes = new TextEncoder().encode(line + "\n");
  for (let done = 0; done < bytes.length;) done += nodeFs.writeSync(1, bytes, done);
};
const fail = (what: string, e: unknown) => {
  out(
    `E ${what}: ${
      e instanceof Error
        ? `${e.name} ${(e as { code?: string }).code ?? ""} ${e.message}`
        : String(e)
    }`.replaceAll("\n", " "),
  );
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const tree = await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION,
  dir: cfg.dir,
  keyspace: KEYSPACES[cfg.layout],
  wal: cfg.wal,
  maintenance: cfg.maintenance,
  ...tuningOf(cfg),
});
tree.events.on("error", (e) => {
  const torn = e instanceof Error && (e as { code?: string }).code === "CORRUPTION" &&
    /torn/.test(e.message);
  if (torn) out(`T ${(e as Error).message.replaceAll("\n", " ")}`);
  else fail("error event", e);
});
tree.events.on("merge-started", (info) => out(`M ${JSON.stringify(info)}`));
tree.events.on(
  "merge-ended",
  (info) => out(`N ${Math.round((info as { durationMs: number }).durationMs)}`),
);
out(`R ${tree.lastOpIndex}`);

// deno-lint-ignore no-explicit-any
const t = tree as ZoneTree<any, string, any, any>;
const key = (n: number) => keyOf(cfg.layout, n);
let wid = cfg.widBase;
let marker = cfg.markerBase;
let lastWid = wid - 1;
const keySpace = cfg.keySpace ?? KEY_SPACE;

/** A record key: half the time from a hot set, so keys are overwritten and deleted often. */
function pickKey(): number {
  return prng.int(2) === 0 ? prng.int(300) : prng.int(keySpace);
}

function ack(w: number, opIndex: number | undefined): void {
  out(`A ${w} ${opIndex === undefined ? "-" : opIndex}`);
  lastWid = w;
}

/** A batch, or a transaction (also one WAL record), of distinct keys, with its marker key last. */
function batch(size: number): void {
  const w = wid++;
  const m = MARKER_BASE + marker++;
  const keys = new Set<number>();
  while (keys.size < size) keys.add(pickKey());
  const asTransaction = prng.int(4) === 0;
  const ops: ({ put: unknown; value: string } | { del: unknown })[] = [];
  const desc: string[] = [];
  for (const k of keys) {
    const put = prng.int(5) !== 0;
    ops.push(put ? { put: key(k), value: valueOf(w) } : { del: key(k) });
    desc.push(`${k}:${put ? "p" : "d"}`);
  }
  ops.push({ put: key(m), value: valueOf(w) });
  out(`I ${w} ${asTransaction ? "X" : "B"} ${m} ${desc.join(",")}`);
  if (!asTransaction) return ack(w, t.batch(ops));
  const tx = t.transaction();
  for (const op of ops) {
    if ("put" in op) {
      tx.get(op.put); // a read makes the commit check it
      tx.upsert(op.put, op.value);
    } else tx.delete(op.del);
  }
  ack(w, tx.commit());
}

function single(): void {
  const w = wid++;
  const k = pickKey();
  const x = prng.int(34);
  if (x < 11) {
    out(`I ${w} U ${k}`);
    ack(w, t.upsert(key(k), valueOf(w)));
  } else if (x < 13) {
    out(`I ${w} U ${k}`); // update: writes only when the key is present ("-" otherwise)
    ack(w, t.update(key(k), () => valueOf(w)));
  } else if (x < 14) {
    out(`I ${w} U ${k}`); // addOrUpdate: adds or updates, so always writes
    ack(w, t.addOrUpdate(key(k), valueOf(w), () => valueOf(w)).opIndex);
  } else if (x < 16) {
    out(`I ${w} L ${k}`); // expires in an hour: present
    ack(w, t.upsert(key(k), valueOf(w), { ttlMs: 3_600_000 }));
  } else if (x < 18) {
    out(`I ${w} P ${k}`); // expired already: reads as absent
    ack(w, t.upsert(key(k), valueOf(w), { expiresAt: Date.now() - 1000 }));
  } else if (x < 23) {
    out(`I ${w} A ${k}`);
    ack(w, t.tryAdd(key(k), valueOf(w)));
  } else if (x < 28) {
    out(`I ${w} D ${k}`);
    ack(w, t.forceDelete(key(k)));
  } else {
    out(`I ${w} T ${k}`);
    ack(w, t.tryDelete(key(k)));
  }
}

/** deleteRange over record keys (u32 keys only: with str keys a range would cover marker keys). */
function deleteRange(): void {
  if (cfg.layout !== "u32") return;
  const w = wid++;
  const lo = prng.int(keySpace);
  const hi = lo + 1 + prng.int(100);
  out(`I ${w} R ${lo} ${hi}`);
  ack(w, t.deleteRange({ gte: key(lo), lt: key(hi) }));
}

let backups = 0;
/** A backup of the tree as of now (every issued write has returned): the parent checks it exactly. */
async function backup(): Promise<void> {
  const path = `${cfg.dir}.bk-${cfg.widBase}-${backups++}`;
  out(`k ${path} ${wid - 1}`);
  await t.backup(path);
  out(`K ${path} ${wid - 1}`);
}

let background: Promise<unknown> | undefined;

async function step(): Promise<void> {
  const x = prng.int(1000);
  if (x < 590) single();
  // One batch in ten is large enough that the sync modes apply it while its log syncs on the
  // helper thread (tree_engine.ts, OVERLAP_MIN_OPS).
  else if (x < 790) batch(prng.int(10) === 0 ? 128 + prng.int(64) : 1 + prng.int(20));
  else if (x < 850) {
    const covered = lastWid;
    await t.flush();
    out(`F ${covered}`);
  } else if (x < 910) await sleep(prng.int(3));
  else if (x < 940) t.maintenance.moveMutableSegmentForward();
  else if (x < 960) {
    if (!background) {
      background = t.maintenance.merge().catch((e) => fail("merge", e)).finally(
        () => (background = undefined),
      );
    }
  } else if (x < 970) await t.maintenance.merge();
  else if (x < 980) {
    const n = t.stats().bottomSegmentsCount;
    if (n >= 2) {
      const from = prng.int(n - 1);
      await t.maintenance.mergeBottomSegments(from, from + 1 + prng.int(n - 1 - from));
    }
  } else if (x < 988) deleteRange();
  else if (x < 991) await backup();
  else await sleep(0);
}

async function loadThenMerge(): Promise<void> {
  const batches = cfg.wal === "async-compressed" ? 150 + prng.int(150) : 50 + prng.int(50);
  for (let i = 0; i < batches; i++) {
    batch(20);
    if (i % 10 === 9) t.maintenance.moveMutableSegmentForward();
    if (i % 50 === 49) await sleep(0);
  }
  const covered = lastWid;
  await t.flush();
  out(`F ${covered}`);
  t.maintenance.moveMutableSegmentForward();
  background = t.maintenance.merge().catch((e) => fail("merge", e)).finally(
    () => (background = undefined),
  );
  out(`G ${JSON.stringify(t.stats())}`);
}

try {
  if (cfg.variant === "merge") await loadThenMerge();
  for (let i = 0; i < 1_000_000; i++) {
    if (i === cfg.killAtStep) process.kill(process.pid, "SIGKILL");
    await step();
  }
  out("E the child ran out of steps before it was killed");
} catch (e) {
  fail("operation", e);
}
process.exit(1);
