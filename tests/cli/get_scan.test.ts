// `zonetree get` and `zonetree scan`: field values parsed by the keyspace's types, values and
// keys printed as JSON, bounds, reverse, limit, and the exit codes for not found and bad input.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { defineKeyspace, ZoneTree } from "../../mod.ts";
import { cleanup, cli, makeReadingsTree, reading, tempDir } from "./helpers.ts";

let dir: string;
beforeEach(() => {
  dir = tempDir();
});
afterEach(() => cleanup(dir));

describe("zonetree get", () => {
  test("get prints the value as JSON for a key on disk and for one in the WAL", async () => {
    await makeReadingsTree(dir);
    const onDisk = await cli(["get", dir, "s-3", "17000"]);
    expect(onDisk).toEqual({ code: 0, stdout: JSON.stringify(reading(3, 17)) + "\n", stderr: "" });
    const inWal = await cli(["get", dir, "s-0", "601000"]);
    expect(inWal.stdout).toBe(JSON.stringify(reading(0, 601)) + "\n");
    const byDate = await cli(["get", dir, "s-3", "1970-01-01T00:00:17Z"]);
    expect(byDate.stdout).toBe(JSON.stringify(reading(3, 17)) + "\n");
  });

  test("get exits 1 and names the key when it is not found", async () => {
    await makeReadingsTree(dir);
    const r = await cli(["get", dir, "s-3", "17001"]);
    expect(r).toEqual({
      code: 1,
      stdout: "",
      stderr: 'zonetree: key not found: {"sensor":"s-3","ts":17001}\n',
    });
  });

  test("get exits 2 for a wrong number of fields or a value that does not parse", async () => {
    await makeReadingsTree(dir);
    const few = await cli(["get", dir, "s-3"]);
    expect(few.code).toBe(2);
    expect(few.stderr).toContain("get takes 2 field values (<sensor:str> <ts:u64be>), got 1");
    const bad = await cli(["get", dir, "s-3", "soon"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('key field "ts" (u64be): "soon" is not an integer');
    const negative = await cli(["get", dir, "s-3", "--", "-1"]);
    expect(negative.code).toBe(2);
    expect(negative.stderr).toContain('key field "ts"');
  });

  test("get parses every fixed field type and prints bigints exactly and bytes as hex", async () => {
    const ks = defineKeyspace({
      key: "a:<u32be>:b:<i64be>:c:<bool>:d:<uuid>:e:<bytes:2>:f:<f64>:g:<bytes>",
      value: { n: "u64be", id: "bytes:3" },
    });
    const key = [
      7,
      -5n,
      true,
      "0f8fad5b-d9cb-469f-a165-70867728950e",
      new Uint8Array([0xab, 0xcd]),
      -1.5,
      new Uint8Array([0, 1]),
    ] as const;
    const tree = await ZoneTree.open({ dir, keyspace: ks });
    tree.upsert([...key], { n: 18446744073709551615n, id: new Uint8Array([1, 2, 255]) });
    await tree.close();
    const r = await cli([
      "get",
      dir,
      "7",
      "-5",
      "true",
      "0f8fad5b-d9cb-469f-a165-70867728950e",
      "0xabcd",
      "-1.5",
      "0001",
    ]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe('{"n":18446744073709551615,"id":"0102ff"}\n');
    const odd = await cli([
      "get",
      dir,
      "7",
      "-5",
      "true",
      "0f8fad5b-d9cb-469f-a165-70867728950e",
      "abc",
      "-1.5",
      "00",
    ]);
    expect(odd.code).toBe(2);
    expect(odd.stderr).toContain('key field "e" (bytes:2): "abc" is not hex bytes');
  });

  test("get prints raw value bytes as hex for a custom value codec", async () => {
    const ks = defineKeyspace({
      key: "k:<str>",
      value: {
        id: "reversed",
        encode: (s: string) => new TextEncoder().encode([...s].reverse().join("")),
        decode: (b: Uint8Array) => [...new TextDecoder().decode(b)].reverse().join(""),
      },
    });
    const tree = await ZoneTree.open({ dir, keyspace: ks });
    tree.upsert("x", "ab");
    await tree.close();
    const r = await cli(["get", dir, "x"]);
    expect(r).toEqual({ code: 0, stdout: '"6261"\n', stderr: "" });
  });

  test("get exits 1 with DATABASE_LOCKED while another process has the tree open", async () => {
    await makeReadingsTree(dir);
    const tree = await ZoneTree.open({ dir, keyspace: (await import("./helpers.ts")).readings });
    try {
      const r = await cli(["get", dir, "s-3", "17000"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^zonetree: .*locked.* \[DATABASE_LOCKED\]\n$/);
    } finally {
      await tree.close();
    }
  });
});

describe("zonetree scan", () => {
  test("scan --prefix --reverse --limit prints the newest records first in aligned columns", async () => {
    await makeReadingsTree(dir);
    const r = await cli(["scan", dir, "--prefix", "s-0", "--reverse", "--limit", "3"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        "sensor  ts      value",
        `s-0     602000  ${JSON.stringify(reading(0, 602))}`,
        `s-0     601000  ${JSON.stringify(reading(0, 601))}`,
        `s-0     600000  ${JSON.stringify(reading(0, 600))}`,
        "(3 records)",
        "",
      ].join("\n"),
    );
  });

  test("scan --json prints one record per line, in key order, across disk and WAL", async () => {
    await makeReadingsTree(dir);
    const r = await cli(["scan", dir, "--json"]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
    expect(lines).toHaveLength(3003);
    expect(lines[0]).toEqual({ key: { sensor: "s-0", ts: 0 }, value: reading(0, 0) });
    expect(lines[602]).toEqual({ key: { sensor: "s-0", ts: 602000 }, value: reading(0, 602) });
    expect(lines[3002]).toEqual({ key: { sensor: "s-4", ts: 599000 }, value: reading(4, 599) });
  });

  test("scan --gte and --lt bound a time window inside one sensor", async () => {
    await makeReadingsTree(dir);
    const r = await cli(["scan", dir, "--gte", "s-2", "10000", "--lt", "s-2", "15000", "--json"]);
    const keys = r.stdout.trimEnd().split("\n").map((l) => JSON.parse(l).key.ts);
    expect(keys).toEqual([10000, 11000, 12000, 13000, 14000]);
  });

  test("scan prints nothing but the count when nothing matches, and exits 0", async () => {
    await makeReadingsTree(dir);
    const r = await cli(["scan", dir, "--prefix", "s-9"]);
    expect(r).toEqual({ code: 0, stdout: "sensor  ts  value\n(0 records)\n", stderr: "" });
  });

  test("scan exits 2 for a bad --limit or too many prefix fields", async () => {
    await makeReadingsTree(dir);
    const limit = await cli(["scan", dir, "--limit", "ten"]);
    expect(limit.code).toBe(2);
    expect(limit.stderr).toContain('option --limit: "ten" is not an integer');
    const many = await cli(["scan", dir, "--prefix", "s-1", "5", "6"]);
    expect(many.code).toBe(2);
    expect(many.stderr).toContain("--prefix takes at most 2 field values");
  });
});
