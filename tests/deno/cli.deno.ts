// The `zonetree` CLI under Deno: `deno run -A cli.ts demo` ingests, queries and prints its
// report; `inspect`, `get`, `scan --json` and `verify` read the tree it kept.
// Run: deno test -A tests/deno/cli.deno.ts
import assert from "node:assert/strict";
import * as nodeFs from "node:fs";
import * as os from "node:os";

const ROOT = new URL("../../", import.meta.url).pathname;

async function zonetree(
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "cli.ts", ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

Deno.test("deno run -A cli.ts demo ingests, queries and removes its temp dir", async () => {
  const r = await zonetree("demo", "--sensors", "20", "--readings", "50");
  assert.equal(r.stderr, "");
  assert.equal(r.code, 0);
  assert.match(r.stdout, /ZoneTree demo: 20 sensors × 50 readings = 1,000 records/);
  assert.match(r.stdout, /runtime\s+Deno \d+\.\d+/);
  assert.match(r.stdout, /ingested 1,000 records in .*: [\d,]+ records\/s/);
  assert.match(r.stdout, /latest-first\s+1,000\s+10,000/);
  assert.match(r.stdout, /one-hour window\s+1,000\s+50,000/);
  assert.match(r.stdout, /segment layout:/);
  const tmp = /data directory\s+(\S+)/.exec(r.stdout)![1];
  assert.equal(nodeFs.existsSync(tmp), false);
});

Deno.test("deno run -A cli.ts inspect, get, scan and verify read a tree the demo kept", async () => {
  const dir = nodeFs.mkdtempSync(`${os.tmpdir()}/zt-deno-cli-`);
  try {
    const data = `${dir}/demo`;
    assert.equal(
      (await zonetree("demo", "--dir", data, "--sensors", "4", "--readings", "30")).code,
      0,
    );
    const inspect = JSON.parse((await zonetree("inspect", data, "--json")).stdout);
    assert.equal(inspect.keyspace.template, "sensor:<str>:ts:<u64be>");
    assert.equal(inspect.lastOpIndex, 120);
    const scan = await zonetree(
      "scan",
      data,
      "--prefix",
      "s-0003",
      "--reverse",
      "--limit",
      "2",
      "--json",
    );
    const lines = scan.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
    assert.equal(lines.length, 2);
    assert.ok(lines[0].key.ts > lines[1].key.ts);
    const got = await zonetree("get", data, "s-0003", String(lines[0].key.ts));
    assert.deepEqual(JSON.parse(got.stdout), lines[0].value);
    const missing = await zonetree("get", data, "s-0003", "1");
    assert.equal(missing.code, 1);
    const verify = await zonetree("verify", data);
    assert.equal(verify.code, 0);
    assert.match(verify.stdout, /no corruption found/);
  } finally {
    nodeFs.rmSync(dir, { recursive: true, force: true });
  }
});
