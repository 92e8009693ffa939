#!/usr/bin/env node
// The `zonetree` bin for npx and other Node-launched package runners. Node cannot run the
// TypeScript entry point (cli.ts), so this re-executes it, with the same arguments, stdio and
// exit status, under Bun (node_modules/.bin/bun of this package or a parent, else `bun` on the
// PATH) or else Deno (`deno run -A`). Under Bun or Deno themselves (`bunx zonetree`) it runs
// the same way. Plain JavaScript on purpose: it must run on Node 20 without a build step.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const cli = join(root, "cli.ts");
const windows = process.platform === "win32";

/** `name` in node_modules/.bin of the package or of a directory above it (npm hoists). */
function localBin(name) {
  for (let dir = root;; dir = dirname(dir)) {
    for (const file of windows ? [`${name}.exe`, `${name}.cmd`] : [name]) {
      const candidate = join(dir, "node_modules", ".bin", file);
      if (existsSync(candidate)) return candidate;
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/** Runs `command args`; returns the spawn result, or undefined if the command does not exist. */
function tryRun(command, args) {
  const result = spawnSync(command, args, {
    stdio: "inherit",
    shell: windows && command.endsWith(".cmd"),
  });
  if (result.error && result.error.code === "ENOENT") return undefined;
  if (result.error) throw result.error;
  return result;
}

const argv = process.argv.slice(2);
const bun = localBin("bun");
const deno = localBin("deno");
const result = (bun && tryRun(bun, [cli, ...argv])) ??
  (deno && tryRun(deno, ["run", "-A", cli, ...argv])) ??
  tryRun("bun", [cli, ...argv]) ??
  tryRun("deno", ["run", "-A", cli, ...argv]);

if (result === undefined) {
  process.stderr.write(
    "zonetree: needs Bun or Deno to run (it is written in TypeScript): " +
      "install one (`npm i -D bun`, https://bun.sh, https://deno.com) and try again\n",
  );
  process.exit(1);
}
if (result.signal) process.kill(process.pid, result.signal);
process.exit(result.status ?? 1);
