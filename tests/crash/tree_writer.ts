/**
 * A deterministic tree for cross-runtime checks: `writeTree(dir, seed)` writes it (merges into
 * multipart disk segments and a bottom segment, read-only segments left in their WALs, a mutable
 * segment written in "sync" mode), `expectedTree(seed)` says what it must hold, and
 * `checkTree(tree, seed)` compares a reopened tree with it. Runtime-neutral (node: modules only).
 *
 * Run as a script, it writes the tree and exits without closing it, like a crash (the lock file
 * stays behind and the newest WAL is replayed by whoever opens it next):
 *   bun tests/crash/tree_writer.ts <dir> <seed>
 *   deno run -A tests/crash/tree_writer.ts <dir> <seed>
 * It prints `OK <lastOpIndex> <liveRecords>` when everything is durable.
 */
import process from "node:process";
import { defineKeyspace, ZoneTree } from "../../mod.ts";
import { Prng } from "../../src/util/prng.ts";

/** These tests exercise the change feed across merges: keep 64 MiB of merged WALs for it. */
const FEED_RETENTION = 64 * 1024 * 1024;

/** Composite key with a desc field, struct value: exercises codecs beyond the crash tests'. */
export const readings = defineKeyspace({
  name: "readings",
  key: "sensor:<str>:ts:<u64be:desc>",
  value: { temp: "f64", count: "u32be" },
});

export type Reading = { temp: number; count: number };
type Op =
  | { put: [string, bigint]; value: Reading }
  | { del: [string, bigint] }
  | { batch: ({ put: [string, bigint]; value: Reading } | { del: [string, bigint] })[] }
  | { move: true }
  | { merge: true }
  | { wal: "async-compressed" | "sync" };

const SENSORS = ["s-1", "s-10", "s-2", "é", "s\u0000x", ""];

/** The seeded op list (the same in every runtime). */
function opsOf(seed: number): Op[] {
  const prng = new Prng(seed);
  const key = (): [
    string,
    bigint,
  ] => [SENSORS[prng.int(SENSORS.length)], BigInt(1_700_000_000_000 + prng.int(600) * 1000)];
  const value = (): Reading => ({ temp: (prng.int(20_000) - 10_000) / 7, count: prng.u32() });
  const ops: Op[] = [];
  for (let phase = 0; phase < 3; phase++) {
    for (let i = 0; i < 1200; i++) {
      const x = prng.int(10);
      if (x < 7) ops.push({ put: key(), value: value() });
      else if (x < 8) ops.push({ del: key() });
      else {
        const batch: ({ put: [string, bigint]; value: Reading } | { del: [string, bigint] })[] = [];
        for (let j = 1 + prng.int(10); j > 0; j--) {
          batch.push(prng.int(4) ? { put: key(), value: value() } : { del: key() });
        }
        ops.push({ batch });
      }
      if (i % 300 === 299) ops.push({ move: true });
    }
    if (phase < 2) ops.push({ move: true }, { merge: true });
  }
  // The tail goes to a WAL in "sync" mode: durable without close.
  ops.push({ wal: "sync" });
  for (let i = 0; i < 40; i++) ops.push({ put: key(), value: value() });
  return ops;
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/** What the tree holds after `writeTree(dir, seed)`: encoded key (hex) → [key, value], in key order. */
export function expectedTree(seed: number): [string, [string, bigint], Reading][] {
  const model = new Map<string, [[string, bigint], Reading]>();
  const apply = (op: { put: [string, bigint]; value: Reading } | { del: [string, bigint] }) => {
    if ("put" in op) model.set(hex(readings.key.encode(op.put)), [op.put, op.value]);
    else model.delete(hex(readings.key.encode(op.del)));
  };
  for (const op of opsOf(seed)) {
    if ("put" in op || "del" in op) apply(op);
    else if ("batch" in op) op.batch.forEach(apply);
  }
  return [...model].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map((
    [h, [k, v]],
  ) => [h, k, v]);
}

/** Writes the tree; returns its lastOpIndex. Leaves it open (the caller exits or closes it). */
export async function writeTree(dir: string, seed: number): Promise<ZoneTree> {
  const options = {
    dir,
    keyspace: readings,
    maintenance: "manual",
    mutableSegmentMaxItemCount: 300,
    diskSegmentMaxItemCount: 1000,
    multipartMinItemCount: 100,
    multipartMaxItemCount: 300,
    blockSizeBytes: 1024,
  } as const;
  let tree = await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION, ...options, wal: "async-compressed" });
  for (const op of opsOf(seed)) {
    if ("put" in op) tree.upsert(op.put, op.value);
    else if ("del" in op) tree.forceDelete(op.del);
    else if ("batch" in op) tree.batch(op.batch);
    else if ("move" in op) tree.maintenance.moveMutableSegmentForward();
    else if ("merge" in op) await tree.maintenance.merge();
    else {
      await tree.close();
      tree = await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION, ...options, wal: op.wal });
    }
  }
  return tree;
}

/** Compares a tree (opened on what `writeTree` wrote) with `expectedTree(seed)`; throws on a difference. */
export function checkTree(tree: ZoneTree, seed: number): number {
  const want = expectedTree(seed);
  // deno-lint-ignore no-explicit-any
  const t = tree as ZoneTree<any, Reading, any, any>;
  const got = [...t.range()];
  const fail = (what: string) => {
    throw new Error(`tree differs from seed ${seed}: ${what}`);
  };
  if (got.length !== want.length) fail(`${got.length} records, expected ${want.length}`);
  for (let i = 0; i < want.length; i++) {
    const [, [sensor, ts], value] = want[i];
    const [k, v] = got[i];
    if (k.sensor !== sensor || k.ts !== ts || v.temp !== value.temp || v.count !== value.count) {
      fail(
        `record ${i}: ${JSON.stringify([k, v], big)} instead of ${
          JSON.stringify([sensor, ts, value], big)
        }`,
      );
    }
    if (i % 5 === 0 && JSON.stringify(t.get([sensor, ts])) !== JSON.stringify(value)) {
      fail(`get(${sensor}, ${ts})`);
    }
  }
  const reverse = [...t.keys({ reverse: true })];
  if (
    reverse.length !== want.length ||
    reverse.some((k, i) => k.ts !== want[want.length - 1 - i][1][1])
  ) fail("reverse order");
  // Latest-first inside a prefix (the ts field is desc).
  const s2 = [...t.range({ prefix: ["s-2"], limit: 5 })].map(([k]) => k.ts);
  const s2Want = want.filter(([, [s]]) => s === "s-2").slice(0, 5).map(([, [, ts]]) => ts);
  if (JSON.stringify(s2, big) !== JSON.stringify(s2Want, big)) {
    fail(`prefix s-2: ${JSON.stringify(s2, big)}`);
  }
  return want.length;
}

function big(_k: string, v: unknown) {
  return typeof v === "bigint" ? `${v}n` : v;
}

// deno-lint-ignore no-explicit-any
if ((import.meta as any).main) {
  const [dir, seed] = process.argv.slice(2);
  const tree = await writeTree(dir, Number(seed));
  console.log(`OK ${tree.lastOpIndex} ${tree.count()}`);
  process.exit(0); // no close: the next opener replays the WAL and takes over the stale lock
}
