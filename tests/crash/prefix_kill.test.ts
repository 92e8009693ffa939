/**
 * SIGKILL during ascending writes in "async-compressed" mode, across frequent WAL rotations
 * (`prefix_child.ts`): the reopened tree must hold exactly keys 0..m-1 for some m (a prefix of
 * the writes: a crash may lose the newest, never an earlier write while keeping a later one),
 * with m at least every count the child reported as flushed, and the right values.
 * ZT_SEED=<n> reproduces a run.
 */
import { expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Prng } from "../../src/util/prng.ts";
import { survivingPrefix } from "./prefix_child.ts";

const SEED = Number(process.env.ZT_SEED ?? Date.now() % 1_000_000);
const child = new URL("./prefix_child.ts", import.meta.url).pathname;

/** Runs the child until `killAfterMs` after it is ready, SIGKILLs it; returns its last flush. */
function runAndKill(dir: string, seed: number, killAfterMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, dir, String(seed)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let flushed = 0;
    let out = "";
    let timer: ReturnType<typeof setTimeout> | undefined;
    p.stdout.on("data", (chunk) => {
      out += chunk;
      let nl;
      while ((nl = out.indexOf("\n")) >= 0) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        if (line === "READY") timer = setTimeout(() => p.kill("SIGKILL"), killAfterMs);
        else if (line.startsWith("FLUSHED ")) flushed = Number(line.slice(8));
      }
    });
    p.on("error", reject);
    p.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (signal === "SIGKILL") resolve(flushed);
      else reject(new Error(`child exited with ${code} ${signal} before the kill`));
    });
  });
}

test(`a SIGKILL across WAL rotations leaves a prefix of the writes (seed ${SEED})`, async () => {
  const prng = new Prng(SEED);
  let totalKeys = 0;
  for (let cycle = 0; cycle < 6; cycle++) {
    const dir = mkdtempSync(join(tmpdir(), "zt-prefix-"));
    try {
      const flushed = await runAndKill(dir, SEED * 10 + cycle, 300 + prng.int(1200));
      const m = await survivingPrefix(dir);
      expect(m).toBeGreaterThanOrEqual(flushed);
      totalKeys += m;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  expect(totalKeys).toBeGreaterThan(0);
}, 120_000);
