// `zonetree inspect`: the human table and --json agree with what was written.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { cleanup, cli, makeReadingsTree, tempDir } from "./helpers.ts";

let dir: string;
beforeEach(() => {
  dir = tempDir();
});
afterEach(() => cleanup(dir));

describe("zonetree inspect", () => {
  test("inspect shows keyspace, layout, segments, parts and WAL when the tree is closed", async () => {
    await makeReadingsTree(dir);
    const r = await cli(["inspect", dir]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("sensor:<str>:ts:<u64be>");
    expect(r.stdout).toContain("sensor str, ts u64be");
    expect(r.stdout).toContain('{"temp":"f64","humidity":"f32"}');
    expect(r.stdout).toMatch(
      /layout\s+variable-key-fixed-value \(variable-width keys, 12-byte values\)/,
    );
    expect(r.stdout).toMatch(/disk segment\s+#\d+\s+multipart, \d+ parts\s+3,000 records/);
    expect(r.stdout).toMatch(
      /part\s+#\d+\s+\d+ blocks?\s+[\d,]+ records\s+[\d.]+ KiB\s+seg-\d{10}\.data/,
    );
    expect(r.stdout).toMatch(/WAL\s+mutable segment\s+\d+ B\s+wal-\d{10}\.log/);
    expect(r.stdout).toMatch(/opIndex\s+last 3,003/);
    expect(r.stdout).toContain("lock            none (not open)");
  });

  test("inspect --json gives counts, parts and sizes that add up", async () => {
    await makeReadingsTree(dir);
    const r = await cli(["inspect", dir, "--json"]);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.keyspace.template).toBe("sensor:<str>:ts:<u64be>");
    expect(report.keyspace.fields).toEqual([
      { name: "sensor", type: "str", desc: false },
      { name: "ts", type: "u64be", desc: false },
    ]);
    expect(report.layout).toBe("variable-key-fixed-value");
    expect(report.valueFixedWidth).toBe(12);
    expect(report.lastOpIndex).toBe(3003);
    expect(report.segments).toHaveLength(1);
    const seg = report.segments[0];
    expect(seg.layer).toBe("disk segment");
    expect(seg.kind).toBe("multipart");
    expect(seg.recordCount).toBe(3000);
    expect(seg.parts.length).toBeGreaterThan(1);
    expect(seg.parts.reduce((n: number, p: { recordCount: number }) => n + p.recordCount, 0)).toBe(
      3000,
    );
    const partBytes = seg.parts.reduce((n: number, p: { sizeBytes: number }) => n + p.sizeBytes, 0);
    expect(seg.sizeBytes).toBeGreaterThan(partBytes); // plus the descriptor
    expect(report.wal.filter((w: { role: string }) => w.role === "mutable segment")).toHaveLength(
      1,
    );
    expect(report.walBytes).toBeGreaterThan(20);
    expect(report.diskBytes).toBe(seg.sizeBytes);
  });

  test("inspect exits 1 with DATABASE_NOT_FOUND when the directory holds no database", async () => {
    const r = await cli(["inspect", `${dir}/missing`]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^zonetree: no database in .*missing.* \[DATABASE_NOT_FOUND\]\n$/);
  });
});
