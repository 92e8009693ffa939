/**
 * The work-queue example: it runs as a script; racing async workers (claims that span an await)
 * process every job exactly once; claims are oldest first, the peek latest first; an expired
 * lease puts the job back at its place; the queue survives a reopen.
 */
import { afterAll, expect, test } from "bun:test";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import { spawnSync } from "node:child_process";
import { WorkQueue } from "../../examples/work_queue.ts";
import { Prng } from "../../src/util/prng.ts";

const SEED = Number(process.env.ZT_SEED ?? Date.now() % 100_000);
const root = nodeFs.mkdtempSync(`${os.tmpdir()}/zt-work-queue-`);
afterAll(() => nodeFs.rmSync(root, { recursive: true, force: true }));

test("examples/work_queue.ts runs as a script", () => {
  const run = spawnSync(process.execPath, [
    new URL("../../examples/work_queue.ts", import.meta.url).pathname,
    `${root}/script`,
  ], { encoding: "utf8", timeout: 30_000 });
  expect(run.stderr).toBe("");
  expect(run.status).toBe(0);
  expect(run.stdout).toContain("done 10 jobs, each once: true");
}, 35_000);

test(`8 racing async workers process 200 jobs exactly once (seed ${SEED})`, async () => {
  const r = new Prng(SEED);
  const queue = await WorkQueue.open<number>(`${root}/race`);
  for (let i = 0; i < 200; i++) queue.enqueue(i);
  const done = new Map<number, string>();
  let commits = 0;
  await Promise.all(Array.from({ length: 8 }, async (_, w) => {
    const worker = `w${w}`;
    for (;;) {
      const job = await queue.claim(worker, 60_000, async () => {
        commits++;
        await new Promise((resolve) => setTimeout(resolve, r.int(4)));
      });
      if (!job) return;
      expect(done.has(job.payload)).toBe(false);
      expect(queue.ack(job.seq, worker)).toBe(true);
      done.set(job.payload, worker);
    }
  }));
  expect(done.size).toBe(200);
  expect(commits).toBeGreaterThan(200); // some claims lost a race and were retried
  expect(queue.counts()).toEqual({ ready: 0, claimed: 0 });
  const perWorker = [...new Set(done.values())].map((w) =>
    [...done.values()].filter((x) => x === w).length
  );
  console.log(
    `work queue: 200 jobs by ${perWorker.length} workers (${perWorker.join("/")}), ${
      commits - 200
    } claim conflicts retried`,
  );
  await queue.close();
});

test("claims go oldest first, the peek latest first, expired leases requeue, and the queue survives a reopen", async () => {
  const dir = `${root}/order`;
  let queue = await WorkQueue.open<string>(dir);
  for (const p of ["a", "b", "c", "d"]) queue.enqueue(p);
  expect(queue.peekLatest(2).map((j) => j.payload)).toEqual(["d", "c"]);
  const a = (await queue.claim("w1", 0))!;
  expect(a.payload).toBe("a");
  expect(queue.ack(a.seq, "w2")).toBe(false); // not w2's job
  expect((await queue.claim("w1"))!.payload).toBe("b");
  expect(queue.counts()).toEqual({ ready: 2, claimed: 2 });
  expect(queue.requeueExpired(Date.now() + 1)).toBe(1); // a's lease (0 ms) ran out
  expect(queue.peekLatest(10).map((j) => j.payload)).toEqual(["d", "c", "a"]);
  await queue.close();
  queue = await WorkQueue.open<string>(dir);
  expect(queue.counts()).toEqual({ ready: 3, claimed: 1 });
  expect((await queue.claim("w3"))!.payload).toBe("a");
  expect(queue.enqueue("e")).toBe(5); // the counter survived
  await queue.close();
});
