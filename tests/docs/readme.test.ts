/**
 * Every TypeScript example in README.md runs as written: each ```ts block is extracted, its
 * `./mod.ts` import pointed at this checkout, and run with bun in a fresh temporary directory
 * (the examples use relative data directories).
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { spawnSync } from "node:child_process";

const root = resolve(import.meta.dir, "../..");
const readme = readFileSync(join(root, "README.md"), "utf8");
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
const work = mkdtempSync(join(tmpdir(), "zt-readme-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

test("README has TypeScript examples", () => {
  expect(blocks.length).toBeGreaterThan(0);
});

blocks.forEach((code, i) => {
  test(`README example ${i + 1} runs`, () => {
    const dir = mkdtempSync(join(work, `ex${i}-`));
    const file = join(dir, "example.ts");
    writeFileSync(file, code.replaceAll(`"./mod.ts"`, JSON.stringify(join(root, "mod.ts"))));
    const run = spawnSync(process.execPath, [file], { cwd: dir, encoding: "utf8", timeout: 60_000 });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
  }, 70_000);
});
