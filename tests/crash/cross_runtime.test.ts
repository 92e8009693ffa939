/**
 * A tree written by Deno opens and reads identically under Bun: `deno run -A tree_writer.ts`
 * writes it and exits without closing (stale lock, a WAL to replay), then Bun opens it, compares
 * it with the seeded model, writes to it, and reopens it. (tests/deno/tree.deno.ts does the
 * other direction.)
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import { ZoneTree } from "../../mod.ts";
import { checkTree, readings } from "./tree_writer.ts";

const deno = new URL("../../node_modules/.bin/deno", import.meta.url).pathname;
const writer = new URL("./tree_writer.ts", import.meta.url).pathname;
let dir: string;
beforeAll(() => (dir = nodeFs.mkdtempSync(`${os.tmpdir()}/zt-cross-`)));
afterAll(() => nodeFs.rmSync(dir, { recursive: true, force: true }));

test(
  "a tree written by a Deno process (killed without close) opens and reads identically under Bun",
  async () => {
    const seed = 20240;
    const child = Bun.spawn([deno, "run", "-A", "--quiet", writer, `${dir}/t`, String(seed)], {
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, code] = await Promise.all([
      new Response(child.stdout).text(),
      new Response(child.stderr).text(),
      child.exited,
    ]);
    expect(code, stderr).toBe(0);
    const [ok, lastOpIndex, count] = stdout.trim().split(" ");
    expect(ok, stdout + stderr).toBe("OK");
    expect(nodeFs.existsSync(`${dir}/t/lock`)).toBe(true);

    const tree = await ZoneTree.open({ dir: `${dir}/t`, keyspace: readings, mode: "open" });
    const errors: unknown[] = [];
    tree.events.on("error", (e) => errors.push(e));
    try {
      expect(errors).toEqual([]);
      expect(tree.lastOpIndex).toBeGreaterThanOrEqual(Number(lastOpIndex));
      expect(checkTree(tree, seed)).toBe(Number(count));
      expect(tree.stats().bottomSegmentsCount).toBeGreaterThan(0);
      expect(tree.stats().readOnlySegmentsCount + tree.stats().mutableSegmentRecordCount)
        .toBeGreaterThan(0);
      tree.upsert(["bun", 1n], { temp: 1.5, count: 2 });
      await tree.maintenance.merge();
    } finally {
      await tree.close();
    }
    const again = await ZoneTree.open({
      dir: `${dir}/t`,
      keyspace: readings,
      mode: "open",
      readOnly: true,
    });
    try {
      expect(again.get(["bun", 1n])).toEqual({ temp: 1.5, count: 2 });
      expect(again.count()).toBe(Number(count) + 1);
    } finally {
      await again.close();
    }
  },
  60_000,
);
