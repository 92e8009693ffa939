/**
 * The README's Node recipe works as written: `bun build ./mod.ts --target=node` gives one ESM
 * file that Node (20 and up) runs, on local files, and a tree that Node writes opens and reads
 * identically here under Bun. Skipped when no `node` is on the PATH (the README's set-up needs
 * Node, so CI has one).
 */
import { afterAll, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { defineKeyspace, ZoneTree } from "../../mod.ts";

const root = resolve(import.meta.dir, "../..");
const work = mkdtempSync(join(tmpdir(), "zt-node-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const nodeVersion = spawnSync("node", ["--version"], { encoding: "utf8" });
const hasNode = nodeVersion.status === 0;

/** What the Node script does: write, merge, range, transaction, typed errors, reopen. */
const SCRIPT = `
import { defineKeyspace, KeyEncodingError, ZoneTree } from "./zonetree.js";
const dir = process.argv[2];
const readings = defineKeyspace({ key: "sensor:<str>:ts:<u64be>", value: { temp: "f64", humidity: "f32" } });
const tree = await ZoneTree.open({ dir, keyspace: readings, mutableSegmentMaxItemCount: 500 });
for (let i = 0; i < 2000; i++) tree.upsert({ sensor: "s-" + (i % 4), ts: BigInt(i) }, { temp: i / 10, humidity: 50 });
await tree.maintenance.merge();
const tx = tree.transaction();
tx.upsert(["s-9", 1n], { temp: 1, humidity: 2 });
tx.commit();
let code;
try { tree.upsert({ sensor: "s-1", ts: -1 }, { temp: 0, humidity: 0 }); } catch (e) { code = e instanceof KeyEncodingError && e.code; }
const latest = [...tree.range({ prefix: { sensor: "s-3" }, reverse: true, limit: 2 })].map(([k]) => String(k.ts));
await tree.close();
const again = await ZoneTree.open({ dir, keyspace: readings, mode: "open" });
console.log(JSON.stringify({ code, latest, count: again.count(), temp: again.get(["s-2", 1998n]).temp }));
await again.close();
`;

test.skipIf(!hasNode)("a bun build of mod.ts for Node runs under Node, and Bun reads what Node wrote", async () => {
  const out = join(work, "zonetree.js");
  const build = spawnSync(
    process.execPath,
    ["build", join(root, "mod.ts"), "--target=node", "--format=esm", `--outfile=${out}`],
    { cwd: root, encoding: "utf8" },
  );
  expect(build.stderr).toBe("");
  expect(build.status).toBe(0);
  writeFileSync(join(work, "script.mjs"), SCRIPT);
  const dir = join(work, "db");
  const run = spawnSync("node", [join(work, "script.mjs"), dir], { encoding: "utf8", timeout: 60_000 });
  expect(run.stderr).toBe("");
  expect(run.status).toBe(0);
  expect(JSON.parse(run.stdout)).toEqual({
    code: "KEY_ENCODING",
    latest: ["1999", "1995"],
    count: 2001,
    temp: 199.8,
  });

  const readings = defineKeyspace({
    key: "sensor:<str>:ts:<u64be>",
    value: { temp: "f64", humidity: "f32" },
  });
  await using tree = await ZoneTree.open({ dir, keyspace: readings, mode: "open", readOnly: true });
  expect(tree.count()).toBe(2001);
  expect(tree.get(["s-9", 1n])).toEqual({ temp: 1, humidity: 2 });
  expect([...tree.keys({ prefix: { sensor: "s-0" } })].length).toBe(500);
}, 90_000);
