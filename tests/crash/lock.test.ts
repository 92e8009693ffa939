/**
 * The data directory's lock across real processes: a tree held open by a live process cannot be
 * opened (DatabaseLockedError, code "DATABASE_LOCKED", and nothing changes on disk), and the lock
 * file that a SIGKILLed process leaves behind does not block the next open.
 */
import { afterEach, beforeEach, expect, test } from "bun:test";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import { DatabaseLockedError, ZoneTree } from "../../mod.ts";
import {
  type ChildConfig,
  keyOf,
  KEYSPACES,
  Oracle,
  tuningOf,
  widOfValue,
} from "./crash_shared.ts";

let dir: string;
beforeEach(() => (dir = nodeFs.mkdtempSync(`${os.tmpdir()}/zt-crashlock-`)));
afterEach(() => nodeFs.rmSync(dir, { recursive: true, force: true }));

const childScript = new URL("./crash_child.ts", import.meta.url).pathname;

/** Starts the crash child on `dir` and resolves once it has acknowledged `acks` writes. */
async function startChild(cfg: ChildConfig, acks: number) {
  const child = Bun.spawn([process.execPath, childScript, JSON.stringify(cfg)], {
    stdout: "pipe",
    stderr: "pipe",
  });
  const reader = child.stdout.getReader();
  let text = "";
  const decoder = new TextDecoder();
  while ((text.match(/\nA /g) ?? []).length < acks) {
    const { value, done } = await reader.read();
    if (done) {
      throw new Error(
        `child ended early: ${text.slice(-300)} ${await new Response(child.stderr).text()}`,
      );
    }
    text += decoder.decode(value, { stream: true });
  }
  return {
    child,
    /** Kills the child and returns everything it printed. */
    async kill(): Promise<string> {
      child.kill(9);
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
      await child.exited;
      return text;
    },
  };
}

const cfgOf = (): ChildConfig => ({
  dir,
  wal: "sync",
  layout: "str",
  maintenance: "auto",
  seed: 42,
  widBase: 1_000_000,
  markerBase: 100_000,
  variant: "ops",
});

test(
  "a tree held open by a live process is DatabaseLockedError and is left untouched",
  async () => {
    const cfg = cfgOf();
    const running = await startChild(cfg, 5);
    try {
      const files = nodeFs.readdirSync(dir).sort();
      let error: unknown;
      try {
        const tree = await ZoneTree.open({ dir, keyspace: KEYSPACES.str, ...tuningOf(cfg) });
        await tree.close();
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(DatabaseLockedError);
      expect((error as DatabaseLockedError).code).toBe("DATABASE_LOCKED");
      expect((error as Error).message).toContain(dir);
      expect(nodeFs.readFileSync(`${dir}/lock`, "utf8")).toStartWith(`${running.child.pid} `);
      // The child is still writing; the failed open removed and truncated nothing.
      for (const f of files) expect(nodeFs.existsSync(`${dir}/${f}`)).toBe(true);
    } finally {
      await running.kill();
    }
  },
  30_000,
);

test(
  "the lock left by a SIGKILLed process does not block reopening, and its writes are there",
  async () => {
    const cfg = cfgOf();
    const running = await startChild(cfg, 20);
    const stdout = await running.kill();
    expect(running.child.signalCode).toBe("SIGKILL");
    expect(nodeFs.existsSync(`${dir}/lock`)).toBe(true); // stale, not cleaned up by the dead child
    const oracle = new Oracle();
    oracle.absorb(stdout, true);
    const tree = await ZoneTree.open({
      dir,
      keyspace: KEYSPACES.str,
      mode: "open",
      ...tuningOf(cfg),
    });
    try {
      expect(nodeFs.readFileSync(`${dir}/lock`, "utf8")).toStartWith(`${process.pid} `);
      const observed = new Map<number, number>();
      for (const [k, v] of tree.range()) observed.set(Number(String(k).slice(1)), widOfValue(v));
      expect(oracle.check(observed)).toBeGreaterThan(0);
      expect(tree.upsert(keyOf("str", 1), "after")).toBeGreaterThan(oracle.maxOpIndexEver);
    } finally {
      await tree.close();
    }
    expect(nodeFs.existsSync(`${dir}/lock`)).toBe(false);
  },
  30_000,
);
