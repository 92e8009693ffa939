/**
 * A merge waits only for the logs of the segments it takes. A writer that moves segments forward
 * faster than their logs close must not hold merges off: before the fix, a merge waited until no
 * log close at all was pending, so a steady writer kept every merge waiting until it paused.
 * The file system here holds the background syncs of chosen WAL files until the test lets them
 * go, so "a newer segment's log is still closing" is a state the test controls.
 */
import { describe, expect, test } from "bun:test";
import { defineKeyspace, memoryFileSystem, ZoneTree } from "../../mod.ts";
import type { FileHandle, FileSystem } from "../../src/fs/file_system.ts";

const ks = defineKeyspace({ key: "<u32be>", value: "bytes" });
const value = (i: number) => new Uint8Array(20).fill(i & 0xff);

/** A memory file system whose WAL handles' `syncAsync` waits while `held(path)` is true. */
function gatedFs(held: (path: string) => boolean): { fs: FileSystem; release: () => void } {
  const inner = memoryFileSystem() as FileSystem;
  const waiting: { path: string; go: () => void }[] = [];
  const release = () => {
    for (let i = waiting.length - 1; i >= 0; i--) {
      if (!held(waiting[i].path)) waiting.splice(i, 1)[0].go();
    }
  };
  const fs = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop !== "openFile") return Reflect.get(target, prop, receiver);
      return (path: string, options?: unknown) => {
        const handle = target.openFile(path, options as never);
        if (!/wal-/.test(path)) return handle;
        return new Proxy(handle, {
          get(h, p, r) {
            if (p !== "syncAsync") return Reflect.get(h, p, r);
            return () => {
              if (!held(path)) return h.syncAsync();
              return new Promise<void>((resolve, reject) => {
                waiting.push({ path, go: () => h.syncAsync().then(resolve, reject) });
              });
            };
          },
        }) as FileHandle;
      };
    },
  });
  return { fs, release };
}

/** Lets the event loop run until `done()` or `turns` timer turns have passed. */
async function spin(done: () => boolean, turns = 200): Promise<void> {
  for (let i = 0; i < turns && !done(); i++) await new Promise((r) => setTimeout(r, 1));
}

describe("merge start", () => {
  test("a merge of the older segments publishes while a newer segment's log is still closing", async () => {
    const heldPaths = new Set<string>();
    let holdNew = true; // every WAL opened while this is true starts held
    const seen = new Set<string>();
    const { fs, release } = gatedFs((path) => {
      if (!seen.has(path)) {
        seen.add(path);
        if (holdNew) heldPaths.add(path);
      }
      return heldPaths.has(path);
    });
    const tree = await ZoneTree.open({ dir: "/db", keyspace: ks, fs, maintenance: "manual" });
    for (let i = 0; i < 100; i++) tree.upsert(i, value(i));
    tree.maintenance.moveMutableSegmentForward(); // segment 1's log starts closing (held)
    let settled: string | undefined;
    const merging = tree.maintenance.merge().then((r) => (settled = r));
    for (let i = 0; i < 5; i++) await null; // the merge starts (a microtask) and takes segment 1
    for (let i = 100; i < 200; i++) tree.upsert(i, value(i));
    tree.maintenance.moveMutableSegmentForward(); // segment 2's log starts closing (held)
    expect(tree.stats().readOnlySegmentsCount).toBe(2);

    // Let segment 1's log finish; keep segment 2's (the newest WAL paths) held.
    const [first] = [...seen].filter((p) => p.endsWith(".log")).sort();
    heldPaths.clear();
    for (const p of seen) if (p !== first) heldPaths.add(p);
    holdNew = false;
    release();
    await spin(() => settled !== undefined);
    expect(settled).toBe("ok");
    // Segment 1 went to disk; segment 2 waits for the next merge.
    expect(tree.stats().readOnlySegmentsCount).toBe(1);
    for (let i = 0; i < 200; i += 37) expect(tree.get(i)).toEqual(value(i));

    heldPaths.clear();
    release();
    await merging;
    expect(await tree.maintenance.merge()).toBe("ok");
    expect(tree.stats().readOnlySegmentsCount).toBe(0);
    await tree.close();

    const again = await ZoneTree.open({ dir: "/db", keyspace: ks, fs });
    let n = 0;
    for (const [k, v] of again.range()) {
      expect(v).toEqual(value(k as number));
      n++;
    }
    expect(n).toBe(200);
    await again.close();
  });
});
