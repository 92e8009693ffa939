/**
 * The replicator: idempotent, order-independent application of source changes (newest source
 * opIndex per key wins), all-or-nothing across a crash between its two trees, the `replicate`
 * loop that stops and restarts from its stored position, and `resync` after a change-feed gap.
 *
 * ZT_SEED=<n> reproduces the randomized tests.
 */
import { describe, expect, test } from "bun:test";
import {
  type Change,
  ChangeFeedGapError,
  defineKeyspace,
  type MemoryFileSystem,
  memoryFileSystem,
  replicaStateKeyspace,
  replicate,
  Replicator,
  ZoneTree,
} from "../../mod.ts";
import { Prng } from "../../src/util/prng.ts";

/** These tests exercise the change feed across merges: keep 64 MiB of merged WALs for it. */
const FEED_RETENTION = 64 * 1024 * 1024;

const SEED = Number(process.env.ZT_SEED ?? Date.now() % 100_000);
const ks = defineKeyspace({ key: "item:<str>:<n:u32be>", value: "json" });
type Key = { item: string; n: number };
type Tree = ZoneTree<Key, unknown, Key | [string, number], unknown>;

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/** Every live record as encoded key and value bytes (hex), in key order. */
export function rawScan(tree: Tree): string[] {
  const out: string[] = [];
  for (const [k, v] of tree.range()) {
    out.push(`${hex(ks.key.encode(k))}=${hex(ks.value.encode(v))}`);
  }
  return out;
}

async function openTree(
  fs: MemoryFileSystem,
  dir: string,
  extra: Record<string, unknown> = {},
): Promise<Tree> {
  return await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION,
    dir,
    keyspace: ks,
    fs,
    mutableSegmentMaxItemCount: 50,
    ...extra,
  }) as Tree;
}

async function openReplica(fs: MemoryFileSystem) {
  const target = await openTree(fs, "/replica");
  const state = await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION, dir: "/replica-state", keyspace: replicaStateKeyspace, fs });
  return { target, state, replica: await Replicator.open(target, state) };
}

/** Random writes of every kind to `source`. */
async function randomWrites(source: Tree, r: Prng, steps: number, tag: string): Promise<void> {
  for (let step = 0; step < steps; step++) {
    const key: Key = { item: `i${r.int(8)}`, n: r.int(40) };
    const choice = r.int(100);
    if (choice < 50) source.upsert(key, { tag, step, data: "x".repeat(r.int(30)) });
    else if (choice < 55) source.upsert(key, { tag, step }, { expiresAt: Date.now() + 3_600_000 });
    else if (choice < 68) source.forceDelete(key);
    else if (choice < 78) {
      source.batch([
        { put: key, value: { tag, step, b: 1 } },
        { del: { item: key.item, n: (key.n + 1) % 40 } },
        { put: { item: key.item, n: (key.n + 2) % 40 }, value: { tag, step, b: 2 } },
      ]);
    } else if (choice < 82) {
      if (r.int(2) === 0) source.deleteRange({ prefix: { item: key.item } });
      else source.deleteRange({ gte: key, lt: { item: key.item, n: key.n + r.int(10) } });
    } else if (choice < 88) {
      const tx = source.transaction();
      const v = tx.get(key) as { step?: number } | undefined;
      tx.upsert(key, { tag, step, prev: v?.step ?? null });
      tx.commit();
    } else if (choice < 92) source.maintenance.moveMutableSegmentForward();
    else if (choice < 94) await source.maintenance.merge();
  }
}

async function collect(source: Tree, since = 0): Promise<Change<Key, unknown>[]> {
  const out: Change<Key, unknown>[] = [];
  for await (const c of source.changes(since)) out.push(c);
  return out;
}

describe("Replicator.apply", () => {
  test(`shuffled, repeated deliveries end equal to the source (seed ${SEED})`, async () => {
    for (let trial = 0; trial < 4; trial++) {
      const r = new Prng(SEED * 10 + trial);
      const fs = memoryFileSystem();
      const source = await openTree(fs, "/source");
      await randomWrites(source, r, 400, `t${trial}`);
      const changes = await collect(source);
      // Every change delivered 1–3 times, in a shuffled order, in batches of random sizes.
      const deliveries: Change<Key, unknown>[] = [];
      for (const c of changes) for (let i = 1 + r.int(3); i > 0; i--) deliveries.push(c);
      for (let i = deliveries.length - 1; i > 0; i--) {
        const j = r.int(i + 1);
        [deliveries[i], deliveries[j]] = [deliveries[j], deliveries[i]];
      }
      const { target, state, replica } = await openReplica(fs);
      let applied = 0;
      for (let i = 0; i < deliveries.length;) {
        const n = 1 + r.int(50);
        applied += (await replica.apply(deliveries.slice(i, i + n))).applied;
        i += n;
      }
      expect(rawScan(target), `seed ${SEED * 10 + trial}`).toEqual(rawScan(source));
      expect(rawScan(target).length).toBeGreaterThan(0);
      expect(applied).toBeLessThanOrEqual(changes.length);
      // Delivering everything again in order changes nothing.
      expect((await replica.apply(changes)).applied).toBe(0);
      expect(rawScan(target)).toEqual(rawScan(source));
      for (const t of [source, target, state]) await t.close();
    }
  }, 60_000);

  test("a late older put loses to a newer delete and to a newer range deletion", async () => {
    const fs = memoryFileSystem();
    const { target, state, replica } = await openReplica(fs);
    const k = { item: "a", n: 1 };
    const start = ks.key.encodePrefix({ item: "a" });
    const end = ks.key.encodePrefix({ item: "b" });
    await replica.apply([{ opIndex: 10, type: "delete", key: k }]);
    expect((await replica.apply([{ opIndex: 5, type: "put", key: k, value: 1 }])).skipped).toBe(1);
    expect(target.get(k)).toBeUndefined();
    await replica.apply([
      { opIndex: 20, type: "put", key: { item: "a", n: 2 }, value: "kept" }, // newer than the range
      { opIndex: 15, type: "deleteRange", range: { start, end } },
      { opIndex: 12, type: "put", key: { item: "a", n: 3 }, value: "hidden" }, // older than the range
    ]);
    expect(target.get({ item: "a", n: 2 })).toBe("kept");
    expect(target.get({ item: "a", n: 3 })).toBeUndefined();
    expect(replica.sourceOpIndexOf(["a", 3])).toBe(15);
    expect(replica.sourceOpIndexOf(["a", 2])).toBe(20);
    await target.close();
    await state.close();
    // The state is durable: a reopened replicator still rejects the older writes.
    const again = await openReplica(fs);
    expect(
      (await again.replica.apply([{ opIndex: 14, type: "put", key: ["a", 9] as never, value: 1 }]))
        .skipped,
    ).toBe(1);
    expect(again.replica.sourceOpIndexOf({ item: "a", n: 1 })).toBe(15); // the range covers it
    expect(again.replica.sourceOpIndexOf({ item: "c", n: 1 })).toBe(0);
    await again.target.close();
    await again.state.close();
  });

  test("an apply cut short between the state write and the data write is finished on open", async () => {
    const fs = memoryFileSystem();
    const { target, state, replica } = await openReplica(fs);
    await replica.apply([{ opIndex: 1, type: "put", key: { item: "a", n: 1 }, value: "one" }], 1);
    // The process "dies" after the state batch was made durable and before the target batch.
    (target as unknown as { batch: () => never }).batch = () => {
      throw new Error("killed");
    };
    await expect(replica.apply([
      { opIndex: 2, type: "put", key: { item: "a", n: 1 }, value: "two" },
      { opIndex: 3, type: "put", key: { item: "b", n: 1 }, value: "three" },
    ], 3)).rejects.toThrow("killed");
    fs.crash();
    const again = await openReplica(fs);
    expect(again.target.get({ item: "a", n: 1 })).toBe("two");
    expect(again.target.get({ item: "b", n: 1 })).toBe("three");
    expect(again.replica.position).toBe(3);
    expect(again.state.count({ prefix: [3] })).toBe(0); // no PENDING record left
    await again.target.close();
    await again.state.close();
    void state;
  });
});

describe("replicate", () => {
  test(
    "a loop stopped and restarted many times while the source is written catches up exactly",
    async () => {
      const r = new Prng(SEED);
      const fs = memoryFileSystem();
      const source = await openTree(fs, "/source", { mutableSegmentMaxItemCount: 30 });
      let { target, state, replica } = await openReplica(fs);
      for (let round = 0; round < 8; round++) {
        const controller = new AbortController();
        const loop = replicate(source, replica, {
          signal: controller.signal,
          batchSize: 1 + r.int(40),
          pollMs: 1,
        });
        await randomWrites(source, r, 150, `r${round}`);
        await new Promise((resolve) => setTimeout(resolve, r.int(5)));
        controller.abort();
        await loop;
        if (round % 2 === 1) {
          await target.close();
          await state.close();
          ({ target, state, replica } = await openReplica(fs));
        }
      }
      const position = await replicate(source, replica, { follow: false });
      expect(position).toBe(replica.position);
      expect(rawScan(target)).toEqual(rawScan(source));
      for (const t of [source, target, state]) await t.close();
    },
    30_000,
  );

  test(
    "a replica the feed left behind gets ChangeFeedGapError, resyncs and follows again",
    async () => {
      const r = new Prng(SEED + 1);
      const fs = memoryFileSystem();
      const source = await openTree(fs, "/source", { changeFeedRetentionBytes: 2000, wal: "sync" });
      const { target, state, replica } = await openReplica(fs);
      for (let i = 0; i < 30; i++) source.upsert({ item: "first", n: i }, i);
      await replicate(source, replica, { follow: false });
      expect(rawScan(target)).toEqual(rawScan(source));
      for (let i = 0; i < 5; i++) {
        await randomWrites(source, r, 200, `b${i}`);
        source.maintenance.moveMutableSegmentForward();
        await source.maintenance.merge();
      }
      await expect(replicate(source, replica, { follow: false })).rejects.toBeInstanceOf(
        ChangeFeedGapError,
      );
      const at = await replica.resync(source);
      expect(at).toBe(source.lastOpIndex);
      expect(rawScan(target)).toEqual(rawScan(source));
      for (let i = 0; i < 30; i++) source.upsert({ item: "after", n: i }, i); // within the retention
      source.deleteRange({ prefix: { item: "first" } });
      await replicate(source, replica, { follow: false });
      expect(rawScan(target)).toEqual(rawScan(source));
      for (const t of [source, target, state]) await t.close();
    },
    30_000,
  );
});
