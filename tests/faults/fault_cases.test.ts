/**
 * One deterministic test per fault window, on `faultFileSystem(memoryFileSystem())`: what the
 * operation throws, whether the tree goes on taking writes, what a reopen (after a power loss or
 * with the files as they are) holds. The bugs the fault campaign (`tree_faults.test.ts`) found
 * each have their regression test here.
 */
import { expect, test } from "bun:test";
import { defineKeyspace, IOError, ReadOnlyError, ZoneTree } from "../../mod.ts";
import { faultFileSystem, type FaultPlan } from "../../src/fs/fault_file_system.ts";
import { type MemoryFileSystem, memoryFileSystem } from "../../src/fs/memory_file_system.ts";
import { checkDirectory } from "../crash/crash_shared.ts";

const ks = defineKeyspace({ name: "crash-u32", key: "k:<u32be>", value: "utf8" });
type Tree = ZoneTree<number, string, number, number>;
type Wal = "sync" | "sync-compressed" | "async-compressed";

/** A tree on a fault-injecting memory file system, with its "error" events collected. */
async function openTree(wal: Wal, extra: object = {}) {
  const mem = memoryFileSystem();
  const fs = faultFileSystem(mem);
  const tree = await ZoneTree.open({
    dir: "/db",
    keyspace: ks,
    fs,
    wal,
    maintenance: "manual",
    ...extra,
  }) as Tree;
  const events: unknown[] = [];
  tree.events.on("error", (e) => events.push(e));
  return { mem, fs, tree, events };
}

async function reopen(fs: MemoryFileSystem, extra: object = {}): Promise<Tree> {
  return await ZoneTree.open({
    dir: "/db",
    keyspace: ks,
    fs,
    maintenance: "manual",
    ...extra,
  }) as Tree;
}

function put(tree: Tree, from: number, to: number, tag: string): void {
  for (let i = from; i < to; i++) tree.upsert(i, `${tag}${i}`);
}

function expectHolds(tree: Tree, from: number, to: number, tag: string): void {
  for (let i = from; i < to; i++) expect(tree.get(i), `key ${i}`).toBe(`${tag}${i}`);
}

/** `fn` throws (or rejects with) an error with this code; returns it. */
async function codeOf(fn: () => unknown): Promise<string | undefined> {
  try {
    await fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

for (const wal of ["sync", "sync-compressed"] as const) {
  test(`${wal}: a failed WAL sync fails the write, and the tree takes no more writes (fsync gate)`, async () => {
    const { mem, fs, tree, events } = await openTree(wal);
    put(tree, 0, 20, "a");
    fs.arm({ rules: [{ op: "sync", path: "wal", nth: 1 }] }); // only this one sync fails
    const before = tree.lastOpIndex;
    let thrown: unknown;
    try {
      tree.upsert(20, "lost");
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(IOError);
    expect(tree.get(20)).toBeUndefined(); // not applied
    // Later syncs would succeed, but after a failed fsync the log cannot be trusted: refused.
    const refused = (() => {
      try {
        tree.upsert(21, "x");
      } catch (e) {
        return e;
      }
    })();
    expect(refused).toBeInstanceOf(ReadOnlyError);
    expect((refused as Error).cause).toBe(events[0]);
    expect(events[0]).toBeInstanceOf(IOError);
    expect(await codeOf(() => tree.batch([{ put: 22, value: "x" }]))).toBe("READ_ONLY");
    expect(await codeOf(() => tree.transaction())).toBe("READ_ONLY");
    expect(await codeOf(() => tree.deleteRange({ gte: 0 }))).toBe("READ_ONLY");
    expect(await codeOf(() => tree.maintenance.merge())).toBe("READ_ONLY");
    expect(await codeOf(() => tree.flush())).toBe("IO");
    expect(tree.lastOpIndex).toBeGreaterThanOrEqual(before);
    expectHolds(tree, 0, 20, "a"); // reads go on
    expect(await codeOf(() => tree.close())).toBe("IO"); // close says not everything is durable
    mem.crash();
    const again = await reopen(mem);
    expectHolds(again, 0, 20, "a");
    expect(again.get(21)).toBeUndefined();
    again.upsert(21, "ok");
    await again.close();
  });
}

test("async-compressed: a failed background sync rejects flush, goes to the error event and stops writes", async () => {
  const { mem, fs, tree, events } = await openTree("async-compressed");
  put(tree, 0, 20, "a");
  await tree.flush();
  fs.arm({ rules: [{ op: "sync", path: "wal", nth: 1 }] });
  put(tree, 20, 30, "b"); // acknowledged, not durable yet
  expect(await codeOf(() => tree.flush())).toBe("IO");
  expect(events.length).toBe(1);
  expect(events[0]).toBeInstanceOf(IOError);
  expect(await codeOf(() => tree.upsert(30, "x"))).toBe("READ_ONLY");
  expect(await codeOf(() => tree.close())).toBe("IO");
  mem.crash();
  const again = await reopen(mem);
  expectHolds(again, 0, 20, "a"); // flushed before the failure: kept
  await again.close();
});

/**
 * A merge fails at `plan`: the merge rejects with IOError, the tree keeps its data, leaves no
 * orphan file, and (unless `stops`) goes on taking writes and merges.
 */
async function mergeFault(plan: FaultPlan, stops: boolean): Promise<void> {
  const { mem, fs, tree } = await openTree("sync");
  put(tree, 0, 300, "a");
  tree.maintenance.moveMutableSegmentForward();
  await tree.maintenance.merge();
  put(tree, 100, 400, "b");
  tree.maintenance.moveMutableSegmentForward();
  fs.arm(plan);
  const merged = await codeOf(() => tree.maintenance.merge());
  expect(merged).toBe("IO");
  expect(fs.injectedCount).toBeGreaterThanOrEqual(1);
  fs.disarm();
  expectHolds(tree, 0, 100, "a");
  expectHolds(tree, 100, 400, "b");
  const killed = mem.clone(); // the process dies now: the files as they are
  const powerLost = mem.clone();
  powerLost.crash();
  if (stops) {
    expect(await codeOf(() => tree.upsert(1, "x"))).toBe("READ_ONLY");
    expect(await codeOf(() => tree.close())).toBe("IO");
  } else {
    // The failed merge's files are gone (a meta.tmp left by a failed rename is removed on open).
    if (mem.stat("/db/meta.tmp")) mem.remove("/db/meta.tmp");
    checkDirectory("/db", "u32", { fs: mem });
    tree.upsert(1, "c1");
    expect(await tree.maintenance.merge()).toBe("ok");
    await tree.close();
    const again = await reopen(mem);
    expect(again.get(1)).toBe("c1");
    expectHolds(again, 100, 400, "b");
    await again.close();
  }
  for (const copy of [killed, powerLost]) {
    const t = await reopen(copy);
    checkDirectory("/db", "u32", { fs: copy });
    expectHolds(t, 0, 100, "a");
    expectHolds(t, 100, 400, "b");
    expect(["ok", "nothing-to-merge"]).toContain(await t.maintenance.merge());
    await t.close();
  }
}

test("a merge whose new segment write fails rejects with IOError, removes its files, and the tree goes on", async () => {
  await mergeFault({ rules: [{ op: "write", path: "seg-", nth: 1 }] }, false);
});

test("a merge whose new segment sync fails rejects with IOError, and the tree goes on", async () => {
  await mergeFault({ rules: [{ op: "sync", path: "seg-", nth: 1 }] }, false);
});

test("a merge whose segment file removal (after a failed write) fails still reports the write failure", async () => {
  // Regression: the writer's cleanup threw the remove error (untyped) instead of the IOError.
  await mergeFault({
    rules: [{ op: "write", path: "seg-", nth: 1 }, { op: "remove", path: "seg-", nth: 1 }],
  }, false);
});

test("a merge whose metadata rename fails rejects with IOError; the old segment set stays in force", async () => {
  await mergeFault({ rules: [{ op: "rename", path: "meta", nth: 1 }] }, false);
});

test("a merge whose directory sync before the publish fails rejects with IOError, and the tree goes on", async () => {
  await mergeFault({ rules: [{ op: "syncDir", nth: 1 }] }, false);
});

test("a merge whose directory sync after the metadata rename fails stops writes and keeps both segment sets' files", async () => {
  // Regression: the merge removed its new files although the metadata naming them was in place,
  // so a process killed then (or a backup taken then) could not open.
  await mergeFault({ rules: [{ op: "syncDir", nth: 2 }] }, true);
});

test("a backup after a failed publish opens and holds everything", async () => {
  const { fs, tree } = await openTree("sync");
  put(tree, 0, 300, "a");
  tree.maintenance.moveMutableSegmentForward();
  fs.arm({ rules: [{ op: "syncDir", nth: 2 }] });
  expect(await codeOf(() => tree.maintenance.merge())).toBe("IO");
  fs.disarm();
  await tree.backup("/bk");
  const copy = await ZoneTree.open({
    dir: "/bk",
    keyspace: ks,
    fs,
    mode: "open",
    readOnly: true,
  }) as Tree;
  expectHolds(copy, 0, 300, "a");
  await copy.close();
  expect(await codeOf(() => tree.close())).toBe("IO");
});

test("a backup that fails is IOError naming the target, and leaves the tree writable", async () => {
  // Regression: the provider's error escaped untyped.
  const { fs, tree } = await openTree("sync");
  put(tree, 0, 50, "a");
  fs.arm({ rules: [{ op: "sync", path: "/bk", nth: 1 }] });
  let thrown: unknown;
  try {
    await tree.backup("/bk");
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(IOError);
  expect((thrown as Error).message).toContain("/bk");
  tree.upsert(50, "a50");
  await tree.close();
});

test("a failed WAL create while the mutable segment moves forward stops writes; the write that filled it is acknowledged", async () => {
  // Regression: the auto move ran inside the write, so the write threw although it was logged
  // and applied (and in a sync WAL durable): the caller saw a failure for a write that happened.
  const { mem, fs, tree } = await openTree("sync", {
    maintenance: "auto",
    mutableSegmentMaxItemCount: 10,
  });
  put(tree, 0, 5, "a");
  fs.arm({ rules: [{ op: "open", path: "wal", nth: 1 }] });
  put(tree, 5, 10, "a"); // the 10th write fills the segment: the move's new WAL fails
  expect(fs.injectedCount).toBe(1);
  expectHolds(tree, 0, 10, "a");
  expect(await codeOf(() => tree.upsert(10, "x"))).toBe("READ_ONLY");
  expect(await codeOf(() => tree.maintenance.moveMutableSegmentForward())).toBe("READ_ONLY");
  expect(await codeOf(() => tree.close())).toBe("IO");
  mem.crash();
  const again = await reopen(mem);
  expectHolds(again, 0, 10, "a");
  await again.close();
});

test("a failed open is IOError (not the provider's error), releases the lock, and a later open works", async () => {
  // Regression: a fault while recovery wrote the metadata escaped untyped.
  const mem = memoryFileSystem();
  const first = await reopen(mem, { wal: "sync" });
  put(first, 0, 30, "a");
  await first.close();
  for (const op of ["open", "write", "sync", "rename", "syncDir"] as const) {
    const fs = faultFileSystem(mem, {
      rules: [{ op, path: op === "syncDir" ? "/db" : "meta", nth: 1 }],
    });
    let thrown: unknown;
    try {
      await ZoneTree.open({ dir: "/db", keyspace: ks, fs });
    } catch (e) {
      thrown = e;
    }
    expect(thrown, op).toBeInstanceOf(IOError);
    expect((thrown as Error).cause, op).toBeDefined();
  }
  const again = await reopen(mem);
  expectHolds(again, 0, 30, "a");
  await again.close();
});

test("the disk filling up fails the write with IOError (ENOSPC as the cause) and stops writes", async () => {
  const { mem, fs, tree } = await openTree("sync-compressed");
  put(tree, 0, 20, "a");
  fs.arm({ enospcAfterBytes: 500 });
  let failedAt = -1;
  for (let i = 20; i < 200 && failedAt < 0; i++) {
    try {
      tree.upsert(i, `a${i}`);
    } catch (e) {
      expect(e).toBeInstanceOf(IOError);
      expect(((e as Error).cause as { code?: string }).code).toBe("ENOSPC");
      failedAt = i;
    }
  }
  expect(failedAt).toBeGreaterThan(20);
  expect(await codeOf(() => tree.upsert(1000, "x"))).toBe("READ_ONLY");
  expect(await codeOf(() => tree.close())).toBe("IO");
  fs.disarm();
  for (const keep of ["none", "random"] as const) {
    const copy = mem.clone();
    copy.crash({ keepUnsynced: keep, seed: 5 });
    const again = await reopen(copy);
    expectHolds(again, 0, failedAt, "a"); // the torn frame of the failed write is cut off
    expect(again.get(failedAt)).toBeUndefined();
    await again.close();
  }
});

test("close rejects with IOError when an older WAL lost acknowledged writes to a failed sync", async () => {
  // Regression: close resolved (the mutable WAL closed fine), although writes acknowledged into
  // the WAL of a segment that had moved forward were lost when that WAL's sync failed.
  const { mem, fs, tree, events } = await openTree("async-compressed");
  put(tree, 0, 20, "a"); // buffered in the first WAL
  fs.arm({ rules: [{ op: "sync", path: "wal-0000000001", nth: 1 }] });
  tree.maintenance.moveMutableSegmentForward(); // the first WAL closes in the background; its sync fails
  expect(await codeOf(() => tree.flush())).toBe("IO");
  expect(events[0]).toBeInstanceOf(IOError);
  expect(await codeOf(() => tree.upsert(20, "x"))).toBe("READ_ONLY");
  expect(await codeOf(() => tree.close())).toBe("IO");
  expect(tree.closed).toBe(true);
  fs.disarm();
  const again = await reopen(mem); // the lock was released
  await again.close();
});

test("a backup after the tree stopped holds every acknowledged write (async WAL: the buffer was never written)", async () => {
  // Regression: the backup copied the WAL files as they were; writes acknowledged into the
  // async buffer before the failure were in memory but in no file, so the backup lacked them.
  const { fs, tree } = await openTree("async-compressed");
  put(tree, 0, 20, "a");
  await tree.flush();
  put(tree, 20, 40, "a"); // acknowledged, still in the WAL buffer
  fs.arm({ rules: [{ op: "open", path: "wal", nth: 1 }] });
  // The next WAL is created off the event loop (async-compressed): the move returns, and the
  // failed create stops the tree as a failed background sync would.
  const stopped = new Promise((resolve) => tree.events.on("error", resolve));
  tree.maintenance.moveMutableSegmentForward();
  expect((await stopped as { code?: string }).code).toBe("IO");
  expect(await codeOf(() => tree.upsert(40, "x"))).toBe("READ_ONLY");
  fs.disarm();
  await tree.backup("/bk");
  const copy = await ZoneTree.open({ dir: "/bk", keyspace: ks, fs, mode: "open" }) as Tree;
  expectHolds(copy, 0, 40, "a");
  await copy.close();
  expect(await codeOf(() => tree.close())).toBe("IO");
});

test('a backup of a wal "none" tree keeps the range deletions not merged yet', async () => {
  // Regression (found while fixing the one above): in-memory segments were written out without
  // their range tombstones, so the backup showed keys the tree had deleted.
  const { fs, tree } = await openTree("sync", { wal: "none" });
  put(tree, 0, 10, "a");
  tree.maintenance.moveMutableSegmentForward();
  await tree.maintenance.merge();
  tree.deleteRange({ gte: 2, lt: 5 });
  tree.maintenance.moveMutableSegmentForward();
  tree.deleteRange({ gte: 7 });
  tree.upsert(8, "b8"); // after the deletion: visible
  expect(tree.count()).toBe(5);
  await tree.backup("/bk");
  const copy = await ZoneTree.open({
    dir: "/bk",
    keyspace: ks,
    fs,
    mode: "open",
    wal: "none",
  }) as Tree;
  expect([...copy.keys()]).toEqual([0, 1, 5, 6, 8]);
  await copy.close();
  await tree.close();
});
