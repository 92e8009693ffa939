/**
 * Recovery behaviour that the crash tests depend on, each pinned by a small deterministic test on
 * a real directory (the bugs the crash campaign found get their regression test here).
 */
import { afterEach, beforeEach, expect, test } from "bun:test";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import { defineKeyspace, ZoneTree } from "../../mod.ts";

const ks = defineKeyspace({ key: "k:<u32be>", value: "utf8" });
let dir: string;
beforeEach(() => (dir = nodeFs.mkdtempSync(`${os.tmpdir()}/zt-recovery-`)));
afterEach(() => nodeFs.rmSync(dir, { recursive: true, force: true }));

test('maintenance "manual" does not merge recovered read-only segments on open', async () => {
  const first = await ZoneTree.open({ dir, keyspace: ks, wal: "sync", maintenance: "manual" });
  for (let i = 0; i < 10; i++) first.upsert(i, `v${i}`);
  first.maintenance.moveMutableSegmentForward();
  first.upsert(100, "x");
  await first.close();

  const tree = await ZoneTree.open({ dir, keyspace: ks, wal: "sync", maintenance: "manual" });
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
