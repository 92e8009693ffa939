/**
 * Merges: a merge whose new records touch one part of a large multipart segment rewrites only
 * that part (bytes written are counted through the "disk-segment-created" event and the file
 * system); bottom segments; backups made while writes go on open as trees.
 */
import { describe, expect, test } from "bun:test";
import { defineKeyspace, memoryFileSystem, ZoneTree } from "../../mod.ts";

const ks = defineKeyspace({ key: "<u32be>", value: "bytes" });
const value = (i: number) => new Uint8Array(100).fill(i & 0xff);

describe("multipart carry-forward", () => {
  test("a merge touching one part of a 200,000-record segment rewrites only that part", async () => {
    const fs = memoryFileSystem();
    const tree = await ZoneTree.open({
      dir: "/db",
      keyspace: ks,
      fs,
      maintenance: "manual",
      multipartMinItemCount: 10_000,
      multipartMaxItemCount: 20_000,
    });
    const created: { bytesWritten: number; carriedParts: number }[] = [];
    tree.events.on("disk-segment-created", (e) => created.push(e as never));
    for (let i = 0; i < 200_000; i++) tree.upsert(i, value(i));
    tree.maintenance.moveMutableSegmentForward();
    await tree.maintenance.merge();
    const full = created[0];
    expect(full.carriedParts).toBe(0);
    const diskBytes = tree.stats().diskBytes;
    // Touch 50 keys inside one part's key range.
    for (let i = 100_000; i < 100_050; i++) tree.upsert(i, value(i + 1));
    tree.maintenance.moveMutableSegmentForward();
    const before = fs.totalBytes();
    await tree.maintenance.merge();
    const partial = created[1];
    expect(partial.carriedParts).toBe(9); // 10 parts of 20,000: one rewritten, nine carried
    expect(partial.bytesWritten).toBeLessThan(full.bytesWritten / 5);
    expect(partial.bytesWritten).toBeGreaterThan(0);
    // The data is all there and right.
    expect(tree.get(100_010)).toEqual(value(100_011));
    expect(tree.get(5)).toEqual(value(5));
    expect(tree.count()).toBe(200_000);
    expect(tree.stats().diskBytes).toBeLessThan(diskBytes * 1.2);
    expect(fs.totalBytes() - before).toBeLessThan(full.bytesWritten / 5 + 1_000_000);
    await tree.close();
  }, 60_000);
});

describe("bottom segments", () => {
  test("a disk segment past diskSegmentMaxItemCount moves to the bottom queue; bottom merges keep every record", async () => {
    const fs = memoryFileSystem();
    const tree = await ZoneTree.open({
      dir: "/db",
      keyspace: ks,
      fs,
      maintenance: "manual",
      diskSegmentMaxItemCount: 1000,
      multipartMinItemCount: 200,
      multipartMaxItemCount: 400,
    });
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 1000; i++) tree.upsert(round * 1000 + i, value(i));
      tree.maintenance.moveMutableSegmentForward();
      await tree.maintenance.merge();
    }
    expect(tree.stats().bottomSegmentsCount).toBe(4);
    expect(tree.stats().diskSegmentRecordCount).toBe(0);
    tree.forceDelete(10);
    tree.maintenance.moveMutableSegmentForward();
    await tree.maintenance.merge();
    await tree.maintenance.mergeBottomSegments(1, 3);
    expect(tree.stats().bottomSegmentsCount).toBe(2);
    await tree.maintenance.mergeBottomSegments();
    expect(tree.stats().bottomSegmentsCount).toBe(1);
    expect(tree.count()).toBe(3999);
    expect(tree.get(10)).toBeUndefined();
    await tree.close();
    const again = await ZoneTree.open({ dir: "/db", keyspace: ks, fs });
    expect(again.count()).toBe(3999);
    expect(again.get(3999)).toEqual(value(999));
    await again.close();
  }, 60_000);
});

describe("backup", () => {
  test("a backup made while writes go on opens as a tree holding everything written before the call", async () => {
    const fs = memoryFileSystem();
    const tree = await ZoneTree.open({ dir: "/db", keyspace: ks, fs, mutableSegmentMaxItemCount: 500 });
    for (let i = 0; i < 3000; i++) tree.upsert(i, value(i));
    tree.deleteRange({ gte: 100, lt: 200 });
    const backup = tree.backup("/backup");
    // Writes continue while the backup runs.
    for (let i = 3000; i < 3500; i++) tree.upsert(i, value(i));
    await backup;
    await tree.close();
    const copy = await ZoneTree.open({ dir: "/backup", keyspace: ks, fs, mode: "open" });
    expect(copy.get(2999)).toEqual(value(2999));
    expect(copy.get(150)).toBeUndefined();
    const n = copy.count();
    expect(n).toBeGreaterThanOrEqual(2900);
    expect(n).toBeLessThanOrEqual(3400);
    // What it holds is a prefix of the writes: no key above a missing one.
    const keys = [...copy.keys()];
    expect(keys.filter((k) => k >= 3000)).toEqual(Array.from({ length: n - 2900 }, (_, i) => 3000 + i));
    await copy.close();
  }, 60_000);

  test("a backup into a non-empty directory is refused", async () => {
    const fs = memoryFileSystem();
    const tree = await ZoneTree.open({ dir: "/db", keyspace: ks, fs });
    tree.upsert(1, value(1));
    await tree.backup("/b1");
    await expect(tree.backup("/b1")).rejects.toMatchObject({ code: "INVALID_OPTION" });
    await tree.close();
  });
});

describe("multipart appends", () => {
  test("records appended above the last part leave it as it is: only the new records are written", async () => {
    const fs = memoryFileSystem();
    const tree = await ZoneTree.open({
      dir: "/db",
      keyspace: ks,
      fs,
      maintenance: "manual",
      multipartMinItemCount: 10_000,
      multipartMaxItemCount: 20_000,
    });
    const created: { bytesWritten: number; carriedParts: number }[] = [];
    tree.events.on("disk-segment-created", (e) => created.push(e as never));
    // Three rounds of ascending keys: each round's records all lie above the disk segment.
    for (let round = 0; round < 3; round++) {
      for (let i = round * 50_000; i < (round + 1) * 50_000; i++) tree.upsert(i, value(i));
      tree.maintenance.moveMutableSegmentForward();
      await tree.maintenance.merge();
    }
    // Round 0 wrote 3 parts (20k, 20k, 10k). Rounds 1 and 2 carried every existing part and
    // wrote only their own 50,000 records.
    expect(created.map((c) => c.carriedParts)).toEqual([0, 3, 6]);
    expect(created[1].bytesWritten).toBeLessThan(created[0].bytesWritten * 1.1);
    expect(created[2].bytesWritten).toBeLessThan(created[0].bytesWritten * 1.1);
    expect(tree.count()).toBe(150_000);
    expect(tree.get(0)).toEqual(value(0));
    expect(tree.get(149_999)).toEqual(value(149_999));
    expect([...tree.keys({ gte: 49_990, lt: 50_010 })]).toEqual(Array.from({ length: 20 }, (_, i) => 49_990 + i));
    // A last part below multipartMinItemCount is rewritten with the appended records instead.
    for (let i = 150_000; i < 150_100; i++) tree.upsert(i, value(i));
    tree.maintenance.moveMutableSegmentForward();
    await tree.maintenance.merge();
    for (let i = 150_100; i < 150_200; i++) tree.upsert(i, value(i));
    tree.maintenance.moveMutableSegmentForward();
    await tree.maintenance.merge();
    expect(created[4].carriedParts).toBe(9); // the 100-record part was rewritten, not kept
    expect(tree.count()).toBe(150_200);
    await tree.close();
  }, 60_000);
});
