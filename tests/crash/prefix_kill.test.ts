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

const deno = new URL("../../node_modules/.bin/deno", import.meta.url).pathname;
/** The child's command line: Bun (this process's runtime), or Deno. */
const runtimes = {
  bun: (dir: string, seed: number) => [process.execPath, child, dir, String(seed)],
  // Segments of 24 MiB: each log then sees enough 1 MiB overflows for the helper to take most
  // of their syncs (the first one or two of each log stay on the writer's thread).
  deno: (dir: string, seed: number) => [deno, "run", "-A", "--quiet", child, dir, String(seed), "24"],
};

/**
 * Runs the child until `killAfterMs` after it is ready, SIGKILLs it; returns its last flush and
 * the WAL syncs it had started on the helper thread by then.
 */
function runAndKill(
  dir: string,
  seed: number,
  killAfterMs: number,
  runtime: keyof typeof runtimes = "bun",
): Promise<{ flushed: number; helperSyncs: number }> {
  return new Promise((resolve, reject) => {
    const [command, ...args] = runtimes[runtime](dir, seed);
    const p = spawn(command, args, {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let flushed = 0;
    let helperSyncs = 0;
    let out = "";
    let timer: ReturnType<typeof setTimeout> | undefined;
    p.stdout.on("data", (chunk) => {
      out += chunk;
      let nl;
      while ((nl = out.indexOf("\n")) >= 0) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        if (line === "READY") timer = setTimeout(() => p.kill("SIGKILL"), killAfterMs);
        else if (line.startsWith("FLUSHED ")) {
          const [n, syncs] = line.slice(8).split(" ").map(Number);
          flushed = n;
          helperSyncs = syncs;
        }
      }
    });
    p.on("error", reject);
    p.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (signal === "SIGKILL") resolve({ flushed, helperSyncs });
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
      const { flushed } = await runAndKill(dir, SEED * 10 + cycle, 300 + prng.int(1200));
      const m = await survivingPrefix(dir);
      expect(m).toBeGreaterThanOrEqual(flushed);
      totalKeys += m;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  expect(totalKeys).toBeGreaterThan(0);
}, 120_000);

// Under Deno the async WAL's syncs run on the helper through its own descriptor of each log,
// opened by path (util/helper_thread.ts): the same guarantee, across the same rotations.
test(`a SIGKILL of a Deno writer across WAL rotations leaves a prefix of the writes (seed ${SEED})`, async () => {
  const prng = new Prng(SEED + 1);
  let flushedTotal = 0;
  let helperSyncs = 0;
  for (let cycle = 0; cycle < 3; cycle++) {
    const dir = mkdtempSync(join(tmpdir(), "zt-prefix-deno-"));
    try {
      const run = await runAndKill(dir, SEED * 10 + 7 + cycle, 1500 + prng.int(1500), "deno");
      const m = await survivingPrefix(dir);
      expect(m).toBeGreaterThanOrEqual(run.flushed);
      flushedTotal += run.flushed;
      helperSyncs += run.helperSyncs;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  expect(flushedTotal).toBeGreaterThan(0);
  expect(helperSyncs).toBeGreaterThan(0); // the path under test was taken
}, 120_000);
