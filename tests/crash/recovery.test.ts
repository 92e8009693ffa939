/**
 * Recovery behaviour that the crash tests depend on, each pinned by a small deterministic test on
 * a real directory (the bugs the crash campaign found get their regression test here).
 */
import { afterEach, beforeEach, expect, test } from "bun:test";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import { CorruptionError, defineKeyspace, ZoneTree } from "../../mod.ts";
import { checkDirectory, KEYSPACES } from "./crash_shared.ts";

/** These tests exercise the change feed across merges: keep 64 MiB of merged WALs for it. */
const FEED_RETENTION = 64 * 1024 * 1024;

const ks = defineKeyspace({ key: "k:<u32be>", value: "utf8" });
let dir: string;
beforeEach(() => (dir = nodeFs.mkdtempSync(`${os.tmpdir()}/zt-recovery-`)));
afterEach(() => {
  nodeFs.rmSync(dir, { recursive: true, force: true });
  const base = dir.split("/").at(-1)!;
  for (const n of nodeFs.readdirSync(os.tmpdir())) {
    if (n.startsWith(`${base}.`)) nodeFs.rmSync(`${os.tmpdir()}/${n}`, { force: true });
  }
});

test('maintenance "manual" does not merge recovered read-only segments on open', async () => {
  const first = await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION, dir, keyspace: ks, wal: "sync", maintenance: "manual" });
  for (let i = 0; i < 10; i++) first.upsert(i, `v${i}`);
  first.maintenance.moveMutableSegmentForward();
  first.upsert(100, "x");
  await first.close();

  const tree = await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION, dir, keyspace: ks, wal: "sync", maintenance: "manual" });
  const merges: unknown[] = [];
  tree.events.on("merge-started", (info) => merges.push(info));
  try {
    expect(tree.stats().readOnlySegmentsCount).toBe(1);
    await new Promise((r) => setTimeout(r, 30));
    expect(merges).toEqual([]);
    expect(tree.stats().readOnlySegmentsCount).toBe(1);
    expect(tree.stats().diskSegmentRecordCount).toBe(0);
    expect(await tree.maintenance.merge()).toBe("ok");
    expect(tree.get(3)).toBe("v3");
  } finally {
    await tree.close();
  }
});

// -----------------------------------------------------------------------------------------------
// Crash windows, set up directly: the directory a crash at that point leaves behind.

const u32 = KEYSPACES.u32;
type U32Tree = ZoneTree<number, string, number, number>;

/**
 * A tree with two merges behind it (a disk segment and merged WALs kept as `wal-<id>.old`), a
 * read-only segment still in its WAL and a mutable segment; later rounds overwrite earlier ones,
 * so replaying an old WAL over newer data would show. Returns the model.
 */
async function buildRounds(changeFeedRetentionBytes?: number): Promise<Map<number, string>> {
  const model = new Map<number, string>();
  const tree = (await ZoneTree.open({
    dir,
    keyspace: u32,
    wal: "sync-compressed",
    maintenance: "manual",
    changeFeedRetentionBytes: changeFeedRetentionBytes ?? FEED_RETENTION,
  })) as U32Tree;
  const round = (from: number, to: number, tag: string) => {
    for (let k = from; k < to; k++) {
      tree.upsert(k, `${tag}-${k}`);
      model.set(k, `${tag}-${k}`);
    }
  };
  round(0, 200, "r1");
  tree.maintenance.moveMutableSegmentForward();
  // What a crash between the merge's publish and its WAL delete would leave: a copy of the WAL.
  for (const name of walIds(".log")) nodeFs.copyFileSync(`${dir}/${name}`, `${dir}.${name}`);
  await tree.maintenance.merge();
  round(0, 100, "r2");
  tree.maintenance.moveMutableSegmentForward();
  await tree.maintenance.merge();
  round(50, 150, "r3");
  tree.maintenance.moveMutableSegmentForward();
  round(100, 120, "r4");
  await tree.close();
  return model;
}

/** Opens the directory, checks it against `model` and the on-disk rules, writes, reopens. */
async function expectRecovers(model: Map<number, string>, why: string): Promise<unknown[]> {
  const tree = (await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION,
    dir,
    keyspace: u32,
    wal: "sync-compressed",
    maintenance: "manual",
  })) as U32Tree;
  const errors: unknown[] = [];
  tree.events.on("error", (e) => errors.push(e));
  try {
    checkDirectory(dir, "u32");
    expect([...tree.range()], why).toEqual([...model].sort((a, b) => a[0] - b[0]));
    tree.upsert(1000, "after");
    tree.maintenance.moveMutableSegmentForward();
    await tree.maintenance.merge();
  } finally {
    await tree.close();
  }
  checkDirectory(dir, "u32");
  const again =
    (await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION, dir, keyspace: u32, mode: "open", readOnly: true })) as U32Tree;
  try {
    expect(again.get(1000), why).toBe("after");
    expect(again.count(), why).toBe(model.size + 1);
  } finally {
    await again.close();
  }
  return errors;
}

const walIds = (suffix: string) =>
  nodeFs.readdirSync(dir).filter((n) => n.startsWith("wal-") && n.endsWith(suffix)).sort();

test("an empty newest WAL (crash while a segment moved forward) opens with all else and takes writes", async () => {
  const model = await buildRounds();
  const newest = Number(walIds(".log").at(-1)!.slice(4, 14));
  const files = nodeFs.readdirSync(dir).map((n) => Number(n.slice(4, 14))).filter((n) => n > 0);
  const id = Math.max(newest, ...files) + 1;
  nodeFs.writeFileSync(`${dir}/wal-${String(id).padStart(10, "0")}.log`, new Uint8Array(0));
  const errors = await expectRecovers(model, "empty newest WAL");
  for (const e of errors) expect((e as Error).message).toContain("torn");
});

test("a leftover meta.tmp and orphan segment files (a merge that never published) are removed", async () => {
  const model = await buildRounds();
  nodeFs.writeFileSync(`${dir}/meta.tmp`, "half a metadata file");
  nodeFs.writeFileSync(`${dir}/seg-0000000900.data`, new Uint8Array(100).fill(7));
  nodeFs.writeFileSync(`${dir}/seg-0000000901.multi`, new Uint8Array(10));
  await expectRecovers(model, "leftovers");
  for (const f of ["meta.tmp", "seg-0000000900.data", "seg-0000000901.multi"]) {
    expect(nodeFs.existsSync(`${dir}/${f}`), f).toBe(false);
  }
});

test("a merged WAL still named .log (crash between publish and rename) is not replayed over newer data", async () => {
  const model = await buildRounds();
  const old = walIds(".old");
  expect(old.length).toBeGreaterThanOrEqual(2);
  for (const name of old) {
    nodeFs.renameSync(`${dir}/${name}`, `${dir}/${name.replace(".old", ".log")}`);
  }
  await expectRecovers(model, "merged WALs named .log");
});

test("an unlisted wal-<id>.old (crash between a publish and its delete) is removed", async () => {
  const model = await buildRounds();
  const old = walIds(".old");
  nodeFs.copyFileSync(`${dir}/${old[0]}`, `${dir}/wal-0000000800.old`);
  await expectRecovers(model, "unlisted .old");
  expect(nodeFs.existsSync(`${dir}/wal-0000000800.old`)).toBe(false);
});

test("a merged WAL that is not kept (crash between publish and delete) is removed, not replayed", async () => {
  const model = await buildRounds(0);
  expect(walIds(".old")).toEqual([]);
  const saved = nodeFs.readdirSync(`${dir}/..`).filter((n) =>
    n.startsWith(`${dir.split("/").at(-1)}.wal-`)
  );
  expect(saved.length).toBeGreaterThan(0);
  for (const s of saved) {
    nodeFs.renameSync(`${dir}/../${s}`, `${dir}/${s.slice(s.indexOf(".wal-") + 1)}`);
  }
  await expectRecovers(model, "merged WAL left behind");
});

// -----------------------------------------------------------------------------------------------
// The change feed over damaged or torn WALs: never a silently shorter feed.

/** Writes keys 0..9 (opIndexes 1..10), merges them (their WAL is kept as wal-<id>.old), writes 100. */
async function feedTree(): Promise<string> {
  const tree =
    (await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION, dir, keyspace: u32, wal: "sync", maintenance: "manual" })) as U32Tree;
  for (let i = 0; i < 10; i++) tree.upsert(i, `v${i}`);
  tree.maintenance.moveMutableSegmentForward();
  await tree.maintenance.merge();
  tree.upsert(100, "x");
  await tree.close();
  const old = walIds(".old");
  expect(old.length).toBe(1);
  return old[0];
}

async function feedOf(tree: U32Tree): Promise<number[]> {
  const out: number[] = [];
  for await (const c of tree.changes(0)) out.push(c.opIndex);
  return out;
}

test("a flipped byte in the last frame of a kept merged WAL fails changes() with CorruptionError naming it", async () => {
  const old = await feedTree();
  const path = `${dir}/${old}`;
  const bytes = nodeFs.readFileSync(path);
  bytes[bytes.length - 2] ^= 1; // inside the frame of opIndex 10
  nodeFs.writeFileSync(path, bytes);
  const tree =
    (await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION, dir, keyspace: u32, wal: "sync", maintenance: "manual" })) as U32Tree;
  try {
    expect(tree.get(9)).toBe("v9"); // the tree has the write; the feed must not silently skip it
    let error: unknown;
    let feed: number[] = [];
    try {
      feed = await feedOf(tree);
    } catch (e) {
      error = e;
    }
    expect(error, `feed gave ${feed}`).toBeInstanceOf(CorruptionError);
    expect((error as CorruptionError).file.endsWith(`/${old}`)).toBe(true);
  } finally {
    await tree.close();
  }
});

test("a torn tail in an older WAL (crash while it closed) is cut at recovery, so its kept copy reads whole", async () => {
  const tree =
    (await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION, dir, keyspace: u32, wal: "sync", maintenance: "manual" })) as U32Tree;
  for (let i = 0; i < 10; i++) tree.upsert(i, `v${i}`);
  tree.maintenance.moveMutableSegmentForward();
  tree.upsert(100, "x");
  await tree.close();
  // The older WAL loses half of its last frame (opIndex 10), as if the process died mid-write.
  const older = walIds(".log")[0];
  const size = nodeFs.statSync(`${dir}/${older}`).size;
  nodeFs.truncateSync(`${dir}/${older}`, size - 5);
  const again =
    (await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION, dir, keyspace: u32, wal: "sync", maintenance: "manual" })) as U32Tree;
  const errors: unknown[] = [];
  again.events.on("error", (e) => errors.push(e));
  try {
    expect(errors.length).toBe(1);
    expect((errors[0] as CorruptionError).file.endsWith(`/${older}`)).toBe(true);
    expect(again.get(9)).toBeUndefined();
    await again.maintenance.merge(); // the older WAL is now kept as wal-<id>.old
    expect(walIds(".old")).toEqual([older.replace(".log", ".old")]);
    const feed = await feedOf(again);
    expect(feed.slice(0, 9)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(feed.length).toBe(10); // 1..9 and the write of key 100
  } finally {
    await again.close();
  }
});
