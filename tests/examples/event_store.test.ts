/**
 * The event-store example: it runs as a script; appends check the expected version, retried
 * request ids write nothing twice, streams and the global order read back; and a SIGKILL crash
 * test: a child appends until it is killed at a random moment, again and again in the same
 * directory; after every reopen per-stream versions are contiguous, the global order index
 * matches the streams one to one, no idempotency key points at a missing event, and every append
 * acknowledged before a resolved flush is there.
 *
 * ZT_SEED=<n> reproduces the child's appends; EVENT_STORE_KILLS=<n> sets the cycles (default 6).
 */
import { afterAll, expect, test } from "bun:test";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import { spawnSync } from "node:child_process";
import { EventStore, WrongExpectedVersionError } from "../../examples/event_store.ts";
import { Prng } from "../../src/util/prng.ts";

const SEED = Number(process.env.ZT_SEED ?? Date.now() % 100_000);
const KILLS = Number(process.env.EVENT_STORE_KILLS ?? 6);
const root = nodeFs.mkdtempSync(`${os.tmpdir()}/zt-event-store-`);
afterAll(() => nodeFs.rmSync(root, { recursive: true, force: true }));
const example = new URL("../../examples/event_store.ts", import.meta.url).pathname;
const childScript = new URL("./event_store_child.ts", import.meta.url).pathname;

test("examples/event_store.ts runs as a script", () => {
  const run = spawnSync(process.execPath, [example, `${root}/script`], {
    encoding: "utf8",
    timeout: 30_000,
  });
  expect(run.stderr).toBe("");
  expect(run.status).toBe(0);
  expect(run.stdout).toContain("retry of req-1: duplicate=true");
  expect(run.stdout).toContain("invariants hold");
}, 35_000);

test("appends check the expected version, dedupe request ids, and read back per stream and globally", async () => {
  const store = await EventStore.open(`${root}/unit`);
  expect(store.append("a", 0, [{ type: "x", data: 1 }, { type: "y", data: 2 }], "r1")).toEqual({
    firstVersion: 1,
    firstSeq: 1,
    duplicate: false,
  });
  expect(store.append("b", 0, [{ type: "z", data: 3 }])).toEqual({
    firstVersion: 1,
    firstSeq: 3,
    duplicate: false,
  });
  expect(store.append("a", 0, [{ type: "x", data: 1 }], "r1")).toEqual({
    firstVersion: 1,
    firstSeq: 1,
    duplicate: true,
  });
  expect(() => store.append("a", 1, [{ type: "late", data: 0 }])).toThrow(
    WrongExpectedVersionError,
  );
  store.append("a", 2, [{ type: "w", data: 4 }], "r2");
  expect([...store.readStream("a")].map((e) => [e.version, e.type, e.seq])).toEqual([[1, "x", 1], [
    2,
    "y",
    2,
  ], [3, "w", 4]]);
  expect([...store.readStream("a", 3)].map((e) => e.type)).toEqual(["w"]);
  expect([...store.readAll()].map((e) => `${e.seq}:${e.streamId}@${e.version}`)).toEqual([
    "1:a@1",
    "2:a@2",
    "3:b@1",
    "4:a@3",
  ]);
  expect([...store.readAll(4)].length).toBe(1);
  expect(store.verify()).toEqual([]);
  await store.close();
});

interface Append {
  requestId: string;
  stream: string;
  version: number;
  count: number;
}

/** Runs the child until a random moment after it opened, SIGKILLs it, returns its lines. */
async function runChild(dir: string, seed: number, killAfterMs: number): Promise<string[]> {
  const child = Bun.spawn([process.execPath, childScript, JSON.stringify({ dir, seed })], {
    stdout: "pipe",
    stderr: "pipe",
  });
  let text = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hardStop = setTimeout(() => child.kill(9), 30_000);
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    text += decoder.decode(chunk, { stream: true });
    if (timer === undefined && /(^|\n)R\n/.test(text)) {
      timer = setTimeout(() => child.kill(9), killAfterMs);
    }
    if (/(^|\n)E /.test(text)) child.kill(9);
  }
  await child.exited;
  clearTimeout(timer);
  clearTimeout(hardStop);
  const lines = text.split("\n").filter((l) => l.length > 0);
  const errors = lines.filter((l) => l.startsWith("E "));
  if (errors.length > 0) {
    throw new Error(
      `child failed: ${errors.join("; ")}; ${await new Response(child.stderr).text()}`,
    );
  }
  expect(child.signalCode).toBe("SIGKILL");
  return lines;
}

test(`the event store keeps its invariants across ${KILLS} SIGKILLs (seed ${SEED})`, async () => {
  const dir = `${root}/crash`;
  const prng = new Prng(SEED);
  const totals = { appends: 0, durableChecked: 0, events: 0, streams: 0, globals: 0 };
  for (let cycle = 0; cycle < KILLS; cycle++) {
    const lines = await runChild(dir, SEED * 100 + cycle, 200 + prng.int(800));
    const appends: Append[] = [];
    let durable = 0;
    for (const line of lines) {
      const parts = line.split(" ");
      if (parts[0] === "A") {
        appends.push({
          requestId: parts[1],
          stream: parts[2],
          version: Number(parts[3]),
          count: Number(parts[4]),
        });
      }
      if (parts[0] === "F") durable = Number(parts[1]);
    }
    totals.appends += appends.length;
    const store = await EventStore.open(dir);
    try {
      expect(store.verify(), `cycle ${cycle}`).toEqual([]);
      // Every append acknowledged before a resolved flush survived, under its request id.
      for (const a of appends.slice(0, durable)) {
        if (a.count === 0) continue; // a retried request: the child names the stream it tried
        const event = [...store.readStream(a.stream, a.version)][0];
        expect(event?.requestId, `cycle ${cycle}: ${a.requestId} at ${a.stream}@${a.version}`).toBe(
          a.requestId,
        );
        totals.durableChecked++;
      }
      if (cycle === KILLS - 1) {
        totals.streams = [...store.streams()].length;
        totals.events = [...store.readAll()].length;
        totals.globals = totals.events;
      }
    } finally {
      await store.close();
    }
  }
  expect(totals.appends).toBeGreaterThan(0);
  expect(totals.events).toBeGreaterThan(0);
  console.log(`event store crash test (seed ${SEED}): ${JSON.stringify(totals)}`);
}, 120_000);
