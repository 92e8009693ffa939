/**
 * The change feed (`tree.changes(since)`): every write after `since`, in opIndex order, read from
 * the live WALs and the merged WALs kept as `wal-<id>.old` within changeFeedRetentionBytes; a
 * typed gap error below the retention floor; crash safety of the retain-and-rename step.
 *
 * ZT_SEED=<n> reproduces the randomized tests.
 */
import { describe, expect, test } from "bun:test";
import {
  ChangeFeedGapError,
  defineKeyspace,
  type MemoryFileSystem,
  memoryFileSystem,
  type OpenOptions,
  ZoneTree,
} from "../../mod.ts";
import { type ChangeFeedSource, planRetention, readChanges } from "../../src/engine/change_feed.ts";
import { walFileName } from "../../src/engine/file_names.ts";
import { readMetadata } from "../../src/engine/metadata.ts";
import { WalWriter } from "../../src/wal/wal_writer.ts";
import { Prng } from "../../src/util/prng.ts";

/** These tests exercise the change feed across merges: keep 64 MiB of merged WALs for it. */
const FEED_RETENTION = 64 * 1024 * 1024;

const SEED = Number(process.env.ZT_SEED ?? Date.now() % 100_000);
const ks = defineKeyspace({ key: "k:<u32be>", value: "utf8" });
type Tree = ZoneTree<number, string, number, number>;

/** A change as the test expects it (deleteRange: only opIndex and type are compared). */
interface Expected {
  opIndex: number;
  type: "put" | "delete" | "deleteRange";
  key?: number;
  value?: string;
}

function simplify(c: { opIndex: number; type: string; key?: unknown; value?: unknown }): Expected {
  const out: Expected = { opIndex: c.opIndex, type: c.type as Expected["type"] };
  if (c.type !== "deleteRange") out.key = c.key as number;
  if (c.type === "put") out.value = c.value as string;
  return out;
}

async function collect(tree: Tree, since: number): Promise<Expected[]> {
  const out: Expected[] = [];
  for await (const c of tree.changes(since)) out.push(simplify(c));
  return out;
}

function open(fs: MemoryFileSystem, extra: Partial<OpenOptions> = {}): Promise<Tree> {
  return ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION,
    dir: "/db",
    keyspace: ks,
    fs,
    mutableSegmentMaxItemCount: 40,
    multipartMinItemCount: 10,
    multipartMaxItemCount: 40,
    diskSegmentMaxItemCount: 150,
    ...extra,
  }) as Promise<Tree>;
}

/** One random write (or maintenance step); appends what it wrote to `log`. */
async function randomStep(tree: Tree, r: Prng, log: Expected[], step: number): Promise<void> {
  const key = r.int(120);
  const value = `v${step}`;
  const choice = r.int(100);
  if (choice < 40) log.push({ opIndex: tree.upsert(key, value), type: "put", key, value });
  else if (choice < 50) log.push({ opIndex: tree.forceDelete(key), type: "delete", key });
  else if (choice < 55) {
    const op = tree.tryDelete(key);
    if (op !== undefined) log.push({ opIndex: op, type: "delete", key });
  } else if (choice < 65) {
    const n = 1 + r.int(6);
    const ops = Array.from(
      { length: n },
      (_, i) =>
        r.int(4) === 0
          ? { del: (key + i) % 120 }
          : { put: (key + i) % 120, value: `${value}.${i}` },
    );
    const last = tree.batch(ops);
    ops.forEach((op, i) => {
      const opIndex = last - n + 1 + i;
      if ("del" in op) log.push({ opIndex, type: "delete", key: op.del });
      else log.push({ opIndex, type: "put", key: op.put, value: op.value });
    });
  } else if (choice < 68) {
    log.push({
      opIndex: tree.deleteRange({ gte: key, lt: key + 1 + r.int(10) }),
      type: "deleteRange",
    });
  } else if (choice < 75) {
    const tx = tree.transaction();
    const v = tx.get(key);
    tx.upsert(key, `${v ?? ""}+`);
    tx.delete((key + 1) % 120);
    const last = tx.commit();
    log.push({ opIndex: last - 1, type: "put", key, value: `${v ?? ""}+` });
    log.push({ opIndex: last, type: "delete", key: (key + 1) % 120 });
  } else if (choice < 80) tree.maintenance.moveMutableSegmentForward();
  else if (choice < 84) await tree.maintenance.merge();
  else if (choice < 86) await tree.maintenance.mergeBottomSegments();
}

function files(fs: MemoryFileSystem): string[] {
  return fs.list("/db");
}

describe("tree.changes", () => {
  test(`changes yields every write after since, in opIndex order, across moves, merges and reopens (seed ${SEED})`, async () => {
    const r = new Prng(SEED);
    const fs = memoryFileSystem();
    let tree = await open(fs);
    const log: Expected[] = [];
    for (let round = 0; round < 4; round++) {
      for (let step = 0; step < 600; step++) await randomStep(tree, r, log, round * 1000 + step);
      // Some writes wait in memory, some in read-only segments, most were merged already.
      expect(files(fs).some((n) => n.endsWith(".old"))).toBe(true);
      for (const since of [0, log[r.int(log.length)].opIndex, log[log.length - 1].opIndex]) {
        expect(await collect(tree, since)).toEqual(log.filter((c) => c.opIndex > since));
      }
      await tree.close();
      tree = await open(fs);
    }
    expect((await collect(tree, 0)).length).toBe(log.length);
    console.log(
      `change feed: ${log.length} writes compared, ${
        files(fs).filter((n) => n.endsWith(".old")).length
      } retained WALs`,
    );
    await tree.close();
  });

  test("changes stops at the lastOpIndex of its call and sees merges that run while the consumer awaits", async () => {
    const fs = memoryFileSystem();
    const tree = await open(fs);
    const log: Expected[] = [];
    for (let i = 0; i < 200; i++) {
      log.push({ opIndex: tree.upsert(i, `a${i}`), type: "put", key: i, value: `a${i}` });
    }
    const seen: Expected[] = [];
    for await (const c of tree.changes(0)) {
      seen.push(simplify(c));
      if (seen.length % 25 === 0) {
        // Writes, moves and merges rename WAL files under the reader.
        for (let i = 0; i < 30; i++) tree.upsert(1000 + i, "later");
        tree.maintenance.moveMutableSegmentForward();
        await tree.maintenance.merge();
      }
    }
    expect(seen).toEqual(log);
    await tree.close();
  });

  test("the feed keeps merged WALs within changeFeedRetentionBytes and throws ChangeFeedGapError below its floor", async () => {
    const fs = memoryFileSystem();
    const limit = 6000;
    const tree = await open(fs, { changeFeedRetentionBytes: limit, wal: "sync" });
    const log: Expected[] = [];
    for (let i = 0; i < 2000; i++) {
      log.push({
        opIndex: tree.upsert(i % 300, `value-${i}`),
        type: "put",
        key: i % 300,
        value: `value-${i}`,
      });
      if (i % 100 === 99) await tree.maintenance.merge();
    }
    await tree.flush();
    const meta = readMetadata(fs, "/db")!;
    const retained = meta.changeFeedFiles!;
    const bytes = retained.reduce((n, f) => n + f.bytes, 0);
    expect(bytes).toBeLessThanOrEqual(limit);
    expect(retained.length).toBeGreaterThan(0);
    // Exactly the listed files are on disk, under their retained names.
    const old = files(fs).filter((n) => n.endsWith(".old"));
    expect(old).toEqual(retained.map((f) => `wal-${String(f.id).padStart(10, "0")}.old`));
    for (const f of retained) {
      expect(fs.stat(`/db/wal-${String(f.id).padStart(10, "0")}.old`)!.size).toBe(f.bytes);
    }
    const floor = meta.changeFeedFloor!;
    expect(floor).toBeGreaterThan(0);
    expect(await collect(tree, floor)).toEqual(log.filter((c) => c.opIndex > floor));
    let error: unknown;
    try {
      await collect(tree, floor - 1);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ChangeFeedGapError);
    expect((error as ChangeFeedGapError).code).toBe("CHANGE_FEED_GAP");
    expect((error as ChangeFeedGapError).floor).toBe(floor);
    await tree.close();
  });

  test("a consumer that falls behind the retention while it awaits gets ChangeFeedGapError", async () => {
    const fs = memoryFileSystem();
    const tree = await open(fs, { changeFeedRetentionBytes: 3000, wal: "sync" });
    for (let i = 0; i < 300; i++) tree.upsert(i, `first-${i}`);
    const feed = tree.changes(0);
    expect((await feed.next()).value!.opIndex).toBe(1);
    for (let i = 0; i < 3000; i++) {
      tree.upsert(i % 300, `second-${i}`);
      if (i % 100 === 99) await tree.maintenance.merge();
    }
    await expect(async () => {
      for (let c = await feed.next(); !c.done; c = await feed.next());
    }).toThrow(ChangeFeedGapError);
    await tree.close();
  });

  test("changeFeedRetentionBytes 0 keeps no merged WAL; the feed still covers unmerged writes", async () => {
    const fs = memoryFileSystem();
    const tree = await open(fs, { changeFeedRetentionBytes: 0 });
    for (let i = 0; i < 100; i++) tree.upsert(i, "x");
    await tree.maintenance.merge();
    tree.maintenance.moveMutableSegmentForward();
    await tree.maintenance.merge();
    expect(files(fs).filter((n) => n.includes("wal")).every((n) => n.endsWith(".log"))).toBe(true);
    const floor = readMetadata(fs, "/db")!.changeFeedFloor!;
    expect(floor).toBe(100);
    const opIndex = tree.upsert(5, "after");
    expect(await collect(tree, floor)).toEqual([{ opIndex, type: "put", key: 5, value: "after" }]);
    await expect(collect(tree, 0)).rejects.toBeInstanceOf(ChangeFeedGapError);
    await tree.close();
  });

  test('wal "none" has no change feed: InvalidOptionError naming "wal"', async () => {
    const tree = await open(memoryFileSystem(), { wal: "none" });
    tree.upsert(1, "a");
    let error: unknown;
    try {
      await tree.changes(0).next();
    } catch (e) {
      error = e;
    }
    expect((error as { code: string }).code).toBe("INVALID_OPTION");
    expect((error as { option: string }).option).toBe("wal");
    await tree.close();
  });

  test("changeFeedRetentionBytes is validated", async () => {
    for (const bad of [-1, 1.5, "64"]) {
      await expect(open(memoryFileSystem(), { changeFeedRetentionBytes: bad as number })).rejects
        .toMatchObject({
          code: "INVALID_OPTION",
          option: "changeFeedRetentionBytes",
        });
    }
  });
});

describe("change feed crash safety", () => {
  test("a crash between the metadata publish and the rename neither loses nor replays the merged WAL", async () => {
    for (let trial = 0; trial < 20; trial++) {
      const fs = memoryFileSystem();
      let tree = await open(fs, { wal: "sync", maintenance: "manual" });
      const log: Expected[] = [];
      // Key 7 is written in every segment: a replayed old WAL would bring back an old value.
      for (let seg = 0; seg < 3 + (trial % 4); seg++) {
        for (let i = 0; i < 20; i++) {
          const key = i === 0 ? 7 : seg * 100 + i;
          log.push({ opIndex: tree.upsert(key, `s${seg}`), type: "put", key, value: `s${seg}` });
        }
        tree.maintenance.moveMutableSegmentForward();
        await tree.maintenance.merge();
      }
      // The renames to .old were never made durable (no directory sync since): the crash undoes
      // them, and the metadata lists files that are named .log again.
      fs.crash();
      const listed = readMetadata(fs, "/db")!.changeFeedFiles!.map((f) => f.id);
      expect(listed.length).toBeGreaterThan(0);
      const names = fs.list("/db");
      expect(listed.some((id) => names.includes(`wal-${String(id).padStart(10, "0")}.log`))).toBe(
        true,
      );
      tree = await open(fs, { wal: "sync", maintenance: "manual" });
      expect(tree.get(7)).toBe(log.findLast((c) => c.key === 7)!.value!);
      expect(tree.stats().readOnlySegmentsCount).toBe(0); // nothing replayed
      for (const id of listed) {
        expect(fs.stat(`/db/wal-${String(id).padStart(10, "0")}.old`)).toBeDefined();
      }
      expect(await collect(tree, 0)).toEqual(log);
      await tree.close();
    }
  });

  test("open removes a retained WAL the metadata no longer lists, and raises the floor over a listed one that is gone", async () => {
    const fs = memoryFileSystem();
    let tree = await open(fs, { wal: "sync" });
    for (let seg = 0; seg < 4; seg++) {
      for (let i = 0; i < 10; i++) tree.upsert(seg * 10 + i, "v");
      tree.maintenance.moveMutableSegmentForward();
      await tree.maintenance.merge();
    }
    await tree.close();
    const meta = readMetadata(fs, "/db")!;
    expect(meta.changeFeedFiles!.length).toBe(4);
    const name = (id: number) => `/db/wal-${String(id).padStart(10, "0")}.old`;
    // An unlisted .old (a crash between a publish and its delete) ...
    const stray = fs.openFile("/db/wal-0000000999.old", { create: true });
    stray.close();
    // ... and a listed file that is gone (the second oldest).
    fs.remove(name(meta.changeFeedFiles![1].id));
    tree = await open(fs, { wal: "sync" });
    expect(fs.stat("/db/wal-0000000999.old")).toBeUndefined();
    expect(fs.stat(name(meta.changeFeedFiles![0].id))).toBeUndefined(); // older than the gap: useless
    const after = readMetadata(fs, "/db")!;
    expect(after.changeFeedFloor).toBe(meta.changeFeedFiles![1].lastOpIndex);
    expect(after.changeFeedFiles!.map((f) => f.id)).toEqual(
      meta.changeFeedFiles!.slice(2).map((f) => f.id),
    );
    await expect(collect(tree, 0)).rejects.toBeInstanceOf(ChangeFeedGapError);
    expect((await collect(tree, after.changeFeedFloor!)).length).toBe(20);
    expect(tree.count()).toBe(40);
    await tree.close();
  });
});

describe("change feed retention with WALs that hold no op", () => {
  test("planRetention keeps the files above the floor when the newest holds no op (lastOpIndex below theirs)", () => {
    const files = [{ id: 1, lastOpIndex: 100, bytes: 10 }, { id: 2, lastOpIndex: 200, bytes: 10 }];
    const empty = { id: 3, lastOpIndex: 0, bytes: 20 };
    const plan = planRetention(files, [empty], 50, 1 << 20);
    expect(plan.files.map((f) => f.id)).toEqual([1, 2, 3]);
    expect(plan.dropped).toEqual([]);
    expect(plan.floor).toBe(50);
    // Over the byte bound the oldest go, and the floor is the highest opIndex dropped.
    const tight = planRetention(files, [empty], 0, 30);
    expect(tight.files.map((f) => f.id)).toEqual([2, 3]);
    expect(tight.floor).toBe(100);
  });

  test("a WAL replayed without ops, then merged, leaves the feed of every older write (SIGKILL left it empty)", async () => {
    const fs = memoryFileSystem();
    let tree = await open(fs, { wal: "sync", maintenance: "manual" });
    const log: Expected[] = [];
    for (let seg = 0; seg < 3; seg++) {
      for (let i = 0; i < 5; i++) {
        const key = seg * 10 + i;
        log.push({ opIndex: tree.upsert(key, "v"), type: "put", key, value: "v" });
      }
      tree.maintenance.moveMutableSegmentForward();
      await tree.maintenance.merge();
    }
    await tree.close();
    // What a kill can leave: the WAL of a segment whose buffered writes never reached it (only
    // its header), and a newer one that holds writes.
    const meta = readMetadata(fs, "/db")!;
    const next = meta.nextSegmentId;
    WalWriter.create(fs, "/db/" + walFileName(next), next, "sync").closeSync();
    const newer = WalWriter.create(fs, "/db/" + walFileName(next + 1), next + 1, "sync");
    const op = meta.opIndexReserved + 1;
    newer.appendOne(op, 0, ks.key.encode(99), new TextEncoder().encode("w"), 0);
    newer.closeSync();
    log.push({ opIndex: op, type: "put", key: 99, value: "w" });
    tree = await open(fs, { wal: "sync", maintenance: "manual" });
    expect(tree.stats().readOnlySegmentsCount).toBeGreaterThanOrEqual(1); // empty WALs replayed
    await tree.maintenance.merge();
    expect(readMetadata(fs, "/db")!.changeFeedFloor).toBe(0);
    expect(await collect(tree, 0)).toEqual(log);
    await tree.close();
  });
});

test("a live WAL still being created (moved forward while the consumer read) ends the feed, not a gap", async () => {
  // The source's lastOpIndex is past its last logged op (a lease after a crash), so the feed
  // looks past the files it read; the newest, live WAL does not exist yet.
  const fs = memoryFileSystem();
  fs.mkdirp("/src");
  const wal = WalWriter.create(fs, "/src/" + walFileName(1), 1, "sync");
  for (let i = 1; i <= 3; i++) wal.appendOne(i, 0, Uint8Array.of(i), Uint8Array.of(i), 0);
  wal.closeSync();
  const source: ChangeFeedSource = {
    fs,
    dir: "/src",
    options: { wal: "async-compressed", readOnly: false },
    lastOpIndex: 10,
    flush: () => Promise.resolve(),
    changeFeedView: () => ({ floor: 0, files: [{ id: 1, lastOpIndex: 3 }, { id: 2, lastOpIndex: Infinity }] }),
  };
  const seen: number[] = [];
  for await (const c of readChanges(source, 0)) seen.push(c.opIndex);
  expect(seen).toEqual([1, 2, 3]);
  // A missing file that is not the live one is still a gap.
  source.changeFeedView = () => ({ floor: 0, files: [{ id: 1, lastOpIndex: 3 }, { id: 2, lastOpIndex: 9 }] });
  const again: number[] = [];
  await expect((async () => {
    for await (const c of readChanges(source, 0)) again.push(c.opIndex);
  })()).rejects.toBeInstanceOf(ChangeFeedGapError);
});
