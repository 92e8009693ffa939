// Shared helpers of the CLI tests: a fresh temp directory per test, trees made in-process with
// the public API, and `bun cli.ts ...` run as a child process (exit code, stdout, stderr).
import * as nodeFs from "node:fs";
import * as os from "node:os";
import * as nodePath from "node:path";
import { defineKeyspace, ZoneTree } from "../../mod.ts";

/** The repository root (where cli.ts is). */
export const ROOT = nodePath.resolve(import.meta.dir, "../..");

/** What a CLI run printed and returned. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `bun cli.ts ...args` (or another entry, e.g. the node launcher) and waits for it. */
export async function cli(
  args: string[],
  entry: string[] = [process.execPath, "cli.ts"],
): Promise<CliResult> {
  const child = Bun.spawn([...entry, ...args], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, NO_COLOR: "1" },
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { code, stdout, stderr };
}

/** A fresh temp directory; remove it with `cleanup`. */
export function tempDir(): string {
  return nodeFs.mkdtempSync(nodePath.join(os.tmpdir(), "zt-cli-test-"));
}

/** Removes a temp directory. */
export function cleanup(dir: string): void {
  nodeFs.rmSync(dir, { recursive: true, force: true });
}

/** The sensor keyspace of the README and the demo. */
export const readings = defineKeyspace({
  name: "readings",
  key: "sensor:<str>:ts:<u64be>",
  value: { temp: "f64", humidity: "f32" },
});

/** Expected value of reading `i` of sensor `s`. */
export function reading(s: number, i: number): { temp: number; humidity: number } {
  return { temp: s * 100 + i / 4, humidity: 40 + (i % 8) / 4 };
}

/**
 * A readings tree in `dir`: `sensors` × `perSensor` records, ts = 1000 * i. Written in three
 * merged rounds (several multipart parts), then `walRecords` more reading(s, perSensor + k)
 * that stay in the WAL. Closed when it returns.
 */
export async function makeReadingsTree(
  dir: string,
  sensors = 5,
  perSensor = 600,
  walRecords = 3,
): Promise<void> {
  const tree = await ZoneTree.open({
    dir,
    keyspace: readings,
    maintenance: "manual",
    multipartMinItemCount: 500,
    multipartMaxItemCount: 1000,
  });
  const rounds = 3;
  for (let round = 0; round < rounds; round++) {
    const ops = [];
    for (let s = 0; s < sensors; s++) {
      for (let i = round; i < perSensor; i += rounds) {
        ops.push({ put: [`s-${s}`, 1000 * i] as [string, number], value: reading(s, i) });
      }
    }
    tree.batch(ops);
    tree.maintenance.moveMutableSegmentForward();
    await tree.maintenance.merge();
  }
  for (let k = 0; k < walRecords; k++) {
    tree.upsert([`s-0`, 1000 * (perSensor + k)], reading(0, perSensor + k));
  }
  await tree.close();
}

/** Names of the files in `dir` whose name matches `re`. */
export function filesMatching(dir: string, re: RegExp): string[] {
  return nodeFs.readdirSync(dir).filter((n) => re.test(n)).sort();
}

/** Flips every bit of the byte at `offset` of `path`. */
export function flipByte(path: string, offset: number): void {
  const fd = nodeFs.openSync(path, "r+");
  try {
    const b = Buffer.alloc(1);
    nodeFs.readSync(fd, b, 0, 1, offset);
    b[0] ^= 0xff;
    nodeFs.writeSync(fd, b, 0, 1, offset);
  } finally {
    nodeFs.closeSync(fd);
  }
}
