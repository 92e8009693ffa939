// `zonetree verify` (clean, a flipped byte in a segment, a damaged WAL) and `zonetree compact`
// (layers and sizes before and after; every record still readable).
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import * as nodeFs from "node:fs";
import { defineKeyspace, ZoneTree } from "../../mod.ts";
import { cleanup, cli, filesMatching, flipByte, makeReadingsTree, tempDir } from "./helpers.ts";

let dir: string;
beforeEach(() => {
  dir = tempDir();
});
afterEach(() => cleanup(dir));

describe("zonetree verify", () => {
  test("verify exits 0 and lists every file as ok when nothing is damaged", async () => {
    await makeReadingsTree(dir);
    const r = await cli(["verify", dir]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/ok\s+meta\s+format 1/);
    expect(r.stdout).toMatch(/ok\s+seg-\d{10}\.multi\s+disk segment #\d+: 3 parts, 3,000 records/);
    expect(r.stdout).toMatch(/ok\s+wal-\d{10}\.log\s+3 ops/);
    expect(r.stdout).toContain("no corruption found, 0 warnings");
  });

  test("verify exits 1 and names the file and offset when a byte of a segment file is flipped", async () => {
    await makeReadingsTree(dir);
    const part = filesMatching(dir, /^seg-\d+\.data$/)[1];
    flipByte(`${dir}/${part}`, 100); // inside the first block
    const r = await cli(["verify", dir]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      new RegExp(`FAIL\\s+${part.replace(".", "\\.")}\\s+offset \\d+: .*checksum`),
    );
    expect(r.stdout).toContain("CORRUPT: 1 problem");
    const json = await cli(["verify", dir, "--json"]);
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout);
    expect(report.ok).toBe(false);
    expect(report.checks.filter((c: { status: string }) => c.status === "FAIL")).toEqual([
      expect.objectContaining({ status: "FAIL", file: part, offset: expect.any(Number) }),
    ]);
  });

  test("verify fails on a flipped byte in the footer of a part and in the metadata", async () => {
    await makeReadingsTree(dir);
    const part = filesMatching(dir, /^seg-\d+\.data$/)[0];
    const size = nodeFs.statSync(`${dir}/${part}`).size;
    flipByte(`${dir}/${part}`, size - 10);
    const seg = await cli(["verify", dir]);
    expect(seg.code).toBe(1);
    expect(seg.stdout).toMatch(new RegExp(`FAIL\\s+${part.replace(".", "\\.")}\\s+offset`));
    flipByte(`${dir}/meta`, 40);
    const meta = await cli(["verify", dir]);
    expect(meta.code).toBe(1);
    expect(meta.stdout).toMatch(/FAIL\s+meta\s+offset 16: checksum mismatch/);
  });

  test("verify warns about a torn WAL tail (exit 0) but fails on damage in the middle of a WAL", async () => {
    const ks = defineKeyspace({ key: "<u32be>", value: "utf8" });
    const tree = await ZoneTree.open({ dir, keyspace: ks, wal: "sync" });
    for (let i = 0; i < 20; i++) tree.upsert(i, `value ${i}`);
    await tree.close();
    const [wal] = filesMatching(dir, /^wal-/);
    const path = `${dir}/${wal}`;
    const size = nodeFs.statSync(path).size;
    nodeFs.truncateSync(path, size - 3);
    const torn = await cli(["verify", dir]);
    expect(torn.code).toBe(0);
    expect(torn.stdout).toMatch(
      new RegExp(`WARN\\s+${wal.replace(".", "\\.")}\\s+19 ops, then a torn record at offset \\d+`),
    );
    flipByte(path, 30);
    const middle = await cli(["verify", dir]);
    expect(middle.code).toBe(1);
    expect(middle.stdout).toMatch(new RegExp(`FAIL\\s+${wal.replace(".", "\\.")}\\s+offset 20:`));
  });

  test("verify warns about segment files the metadata does not reference", async () => {
    await makeReadingsTree(dir);
    nodeFs.writeFileSync(`${dir}/seg-0000000999.data`, "left by a merge that did not publish");
    const r = await cli(["verify", dir]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/WARN\s+seg-0000000999\.data\s+not referenced by meta/);
  });
});

describe("zonetree compact", () => {
  test("compact merges the WAL and the bottom segments into one and keeps every record", async () => {
    const ks = defineKeyspace({ key: "user:<u32be>", value: "json" });
    const tree = await ZoneTree.open({
      dir,
      keyspace: ks,
      maintenance: "manual",
      diskSegmentMaxItemCount: 100,
    });
    for (let round = 0; round < 3; round++) {
      tree.batch(
        Array.from({ length: 150 }, (_, i) => ({ put: i * 3 + round, value: { round, i } })),
      );
      tree.maintenance.moveMutableSegmentForward();
      await tree.maintenance.merge();
    }
    tree.upsert(1000, { late: true });
    await tree.close();
    const before = JSON.parse((await cli(["inspect", dir, "--json"])).stdout);
    expect(before.segments.filter((s: { layer: string }) => s.layer.startsWith("bottom")))
      .toHaveLength(3);

    const r = await cli(["compact", dir]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/in-memory records \(WAL\)\s+1\s+0/);
    expect(r.stdout).toMatch(/bottom segments\s+3 \(450 records\)\s+1 \(450 records\)/);
    expect(r.stdout).toMatch(/segment bytes\s+[\d.]+ KiB\s+[\d.]+ (KiB|B)/);
    expect(r.stdout).toMatch(/done in .*: .* -> .* on disk/);

    const after = JSON.parse((await cli(["inspect", dir, "--json"])).stdout);
    expect(after.segments.map((s: { layer: string }) => s.layer)).toEqual([
      "disk segment",
      "bottom segment 0",
    ]);
    const scan = await cli(["scan", dir, "--json"]);
    const keys = scan.stdout.trimEnd().split("\n").map((l) => JSON.parse(l).key);
    expect(keys).toEqual([...Array.from({ length: 450 }, (_, i) => i), 1000]);
    expect((await cli(["verify", dir])).code).toBe(0);
  });
});
