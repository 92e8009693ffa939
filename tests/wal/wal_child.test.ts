// Real processes killed with SIGKILL at random moments while appending: every op the child
// acknowledged is in the log after replay, the log is a prefix of the op stream, batches are
// all or nothing, and the opIndex never goes backwards across restarts.
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import { localFileSystem } from "../../src/fs/local_file_system.ts";
import { Prng } from "../../src/util/prng.ts";
import type { WalMode } from "../../src/wal/wal_format.ts";
import { replayWal } from "../../src/wal/wal_reader.ts";
import { batchSizeAt, opAt } from "./child_ops.ts";

let dir: string;
beforeAll(() => (dir = nodeFs.mkdtempSync(`${os.tmpdir()}/zt-walchild-`)));
afterAll(() => nodeFs.rmSync(dir, { recursive: true, force: true }));

const childScript = new URL("./child_writer.ts", import.meta.url).pathname;

/** Runs the child until `ms` after its first acknowledgement, then SIGKILLs it. */
async function runAndKill(path: string, mode: WalMode, ms: number) {
  const child = Bun.spawn([process.execPath, childScript, path, mode], {
    stdout: "pipe",
    stderr: "pipe",
  });
  let text = "";
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  // Kill on a timer, not between reads, so a stalled child cannot stall the test.
  const hardStop = setTimeout(() => child.kill(9), 15_000);
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    text += decoder.decode(chunk);
    if (killTimer === undefined && /\nA \d+\n/.test(text)) {
      killTimer = setTimeout(() => child.kill(9), ms);
    }
  }
  await child.exited;
  clearTimeout(hardStop);
  clearTimeout(killTimer);
  const lines = text.split("\n");
  if (lines[lines.length - 1] !== "") lines.pop(); // a line cut by the kill is not an acknowledgement
  const recovered = Number(lines.find((l) => l.startsWith("R "))?.slice(2));
  const acked = lines.filter((l) => l.startsWith("A ")).map((l) => Number(l.slice(2)));
  if (Number.isNaN(recovered)) {
    throw new Error(`child did not start: ${await new Response(child.stderr).text()}`);
  }
  return { recovered, acked: acked.length ? Math.max(...acked) : recovered };
}

const seed = Number(process.env.ZT_SEED ?? Date.now() % 100_000);
for (const mode of ["sync", "sync-compressed", "async-compressed"] as WalMode[]) {
  test(`${mode}: SIGKILL at random moments loses no acknowledged op (seed ${seed})`, async () => {
    const prng = new Prng(seed + mode.length);
    const path = `${dir}/${mode}.wal`;
    let lastReplayed = 0;
    for (let cycle = 0; cycle < 4; cycle++) {
      const { recovered, acked } = await runAndKill(path, mode, 20 + prng.int(150));
      const why = `seed ${seed} ${mode} cycle ${cycle}`;
      expect(recovered, why).toBe(lastReplayed); // the child saw what we saw: no going back
      let expected = 1;
      let nextBatch = 1;
      const r = replayWal(localFileSystem(), path, (opIndex, kind, key, value) => {
        if (opIndex !== expected) {
          throw new Error(`${why}: opIndex ${opIndex}, expected ${expected}`);
        }
        const want = opAt(opIndex);
        if (
          kind !== want.kind || !Bun.deepEquals(key, want.key) || !Bun.deepEquals(value, want.value)
        ) {
          throw new Error(`${why}: op ${opIndex} differs`);
        }
        if (opIndex === nextBatch) nextBatch += batchSizeAt(opIndex);
        expected++;
      });
      expect(r.lastOpIndex, why).toBeGreaterThanOrEqual(acked);
      expect(r.lastOpIndex + 1, why).toBe(nextBatch); // ended on a batch boundary
      lastReplayed = r.lastOpIndex;
    }
  }, 30_000);
}
