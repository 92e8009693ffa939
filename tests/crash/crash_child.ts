/**
 * The crash child: opens a tree on a real directory and performs seeded random operations until
 * it is killed, telling the parent on stdout what it is about to write and what was acknowledged
 * (protocol in `crash_shared.ts`). Every line is written with a synchronous write(2) before the
 * next call, so a SIGKILL loses only lines about calls that had not returned.
 *
 * Run: bun tests/crash/crash_child.ts '<ChildConfig as JSON>'
 *
 * Variants:
 * - "ops": upsert, tryAdd, forceDelete, tryDelete, batches of 1–20 ops with a marker key, flushes,
 *   yields, moves of the mutable segment, merges awaited and running in the background, bottom
 *   segment merges.
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

const tree = await ZoneTree.open({
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

function batch(size: number): void {
  const w = wid++;
  const m = MARKER_BASE + marker++;
  const keys = new Set<number>();
  while (keys.size < size) keys.add(pickKey());
  const ops: ({ put: unknown; value: string } | { del: unknown })[] = [];
  const desc: string[] = [];
  for (const k of keys) {
    const put = prng.int(5) !== 0;
    ops.push(put ? { put: key(k), value: valueOf(w) } : { del: key(k) });
    desc.push(`${k}:${put ? "p" : "d"}`);
  }
  ops.push({ put: key(m), value: valueOf(w) });
  out(`I ${w} B ${m} ${desc.join(",")}`);
  ack(w, t.batch(ops));
}

function single(): void {
  const w = wid++;
  const k = pickKey();
  const x = prng.int(30);
  if (x < 16) {
    out(`I ${w} U ${k}`);
    ack(w, t.upsert(key(k), valueOf(w)));
  } else if (x < 21) {
    out(`I ${w} A ${k}`);
    ack(w, t.tryAdd(key(k), valueOf(w)));
  } else if (x < 26) {
    out(`I ${w} D ${k}`);
    ack(w, t.forceDelete(key(k)));
  } else {
    out(`I ${w} T ${k}`);
    ack(w, t.tryDelete(key(k)));
  }
}

let background: Promise<unknown> | undefined;

async function step(): Promise<void> {
  const x = prng.int(100);
  if (x < 60) single();
  else if (x < 80) batch(1 + prng.int(20));
  else if (x < 86) {
    const covered = lastWid;
    await t.flush();
    out(`F ${covered}`);
  } else if (x < 92) await sleep(prng.int(3));
  else if (x < 95) t.maintenance.moveMutableSegmentForward();
  else if (x < 97) {
    if (!background) {
      background = t.maintenance.merge().catch((e) => fail("merge", e)).finally(
        () => (background = undefined),
      );
    }
  } else if (x < 98) await t.maintenance.merge();
  else if (x < 99) {
    const n = t.stats().bottomSegmentsCount;
    if (n >= 2) {
      const from = prng.int(n - 1);
      await t.maintenance.mergeBottomSegments(from, from + 1 + prng.int(n - 1 - from));
    }
  } else await sleep(0);
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
  for (let i = 0; i < 1_000_000; i++) await step();
  out("E the child ran out of steps before it was killed");
} catch (e) {
  fail("operation", e);
}
process.exit(1);
