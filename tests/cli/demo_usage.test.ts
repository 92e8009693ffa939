// `zonetree demo` with a small data set (plain progress lines when stdout is not a terminal,
// results checked, temp dir removed or --dir kept), the node launcher, and usage errors (exit 2).
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import * as nodeFs from "node:fs";
import { cleanup, cli, ROOT, tempDir } from "./helpers.ts";

let dir: string;
beforeEach(() => {
  dir = tempDir();
});
afterEach(() => cleanup(dir));

describe("zonetree demo", () => {
  test("demo ingests, queries, prints throughput and layout, and removes its temp dir", async () => {
    const r = await cli([
      "demo",
      ...["--sensors", "20", "--readings", "150", "--batch", "500", "--mutable-max", "1000"],
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const out = r.stdout;
    expect(out).toContain("ZoneTree demo: 20 sensors × 150 readings = 3,000 records");
    expect(out).not.toContain("\r"); // no progress bar when stdout is a pipe
    expect(out).toMatch(/ {2}100% {2}3,000 \/ 3,000 {2}[\d,]+ records\/s {2}ETA 0 s/);
    expect(out).toMatch(/ingested 3,000 records in .*: [\d,]+ records\/s/);
    expect(out).toMatch(/latest-first\s+1,000\s+10,000\s+[\d.]+ m?s\s+[\d,]+\s+[\d,]+/);
    expect(out).toMatch(/one-hour window\s+1,000\s+[\d,]+\s+[\d.]+ m?s/);
    expect(out).toMatch(
      /e\.g\. the latest readings of s-\d{4}:\n {4}2024-01-01T02:2\d:\d\d\.\d{3}Z {2}temp/,
    );
    expect(out).toMatch(/disk bytes\s+[\d.]+ KiB in segments for [\d,]+ records/);
    expect(out).toMatch(/disk segment\s+#\d+\s+multipart, 1 part\s+[\d,]+ records/);
    expect(out).toContain("segment layout:");
    expect(out).toContain("temporary data directory removed");
    const tmp = /data directory\s+(\S+)/.exec(out)![1];
    expect(nodeFs.existsSync(tmp)).toBe(false);
  });

  test("demo --dir keeps a tree that get, scan and verify read", async () => {
    const data = `${dir}/demo`;
    const r = await cli(["demo", "--dir", data, "--sensors", "3", "--readings", "70"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`data kept in ${data}`);
    const latest = await cli([
      "scan",
      data,
      "--prefix",
      "s-0002",
      "--reverse",
      "--limit",
      "1",
      "--json",
    ]);
    const [line] = latest.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
    expect(line.key.sensor).toBe("s-0002");
    const got = await cli(["get", data, "s-0002", String(line.key.ts)]);
    expect(JSON.parse(got.stdout)).toEqual(line.value);
    expect((await cli(["verify", data])).code).toBe(0);
    const again = await cli(["demo", "--dir", data, "--sensors", "3", "--readings", "70"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("[DATABASE_ALREADY_EXISTS]");
  });
});

describe("zonetree command line", () => {
  test("every command prints its --help and exits 0", async () => {
    for (const command of ["inspect", "get", "scan", "verify", "compact", "demo"]) {
      const r = await cli([command, "--help"]);
      expect(r.code).toBe(0);
      expect(r.stdout).toStartWith(`Usage: zonetree ${command}`);
      expect(r.stdout).toContain("Exit codes:");
    }
    const main = await cli(["--help"]);
    expect(main.code).toBe(0);
    expect(main.stdout).toContain("2  usage error");
  });

  test("usage errors exit 2 with a message and a hint on stderr", async () => {
    const cases: [string[], string][] = [
      [[], "Usage: zonetree <command>"],
      [["frobnicate"], 'zonetree: unknown command "frobnicate"'],
      [["inspect"], "zonetree: missing <dir>"],
      [["inspect", dir, "extra"], 'zonetree: unexpected argument "extra"'],
      [["scan", dir, "--bogus"], "zonetree: unknown option --bogus"],
      [["scan", dir, "--limit"], "zonetree: option --limit needs a value"],
      [
        ["demo", "--sensors", "0"],
        'zonetree: option --sensors: "0" is not an integer in 1..1,000,000',
      ],
      [["verify", dir, "--json=yes"], "zonetree: option --json takes no value"],
    ];
    for (const [args, message] of cases) {
      const r = await cli(args);
      expect({ args, code: r.code, stdout: r.stdout }).toEqual({ args, code: 2, stdout: "" });
      expect(r.stderr).toContain(message);
    }
  });

  test("bin/zonetree.js runs the CLI under node with the same arguments and exit code", async () => {
    const node = Bun.which("node");
    if (node === null) return; // no node on this machine: nothing to launch from
    const r = await cli(["inspect", `${dir}/none`], [node, `${ROOT}/bin/zonetree.js`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("[DATABASE_NOT_FOUND]");
    const usage = await cli(["scan"], [node, `${ROOT}/bin/zonetree.js`]);
    expect(usage.code).toBe(2);
  });
});
