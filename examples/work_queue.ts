/**
 * A durable work queue on one ZoneTree: enqueue, claim (with a lease), ack, requeue of expired
 * leases, and a latest-first peek. Jobs are ordered keys, so "oldest ready job" is the first key
 * of a prefix and "newest jobs" a reverse range; every state change is one transaction, so a job
 * is never both ready and claimed, and two workers never both claim it (the loser of a race gets
 * a `TransactionConflictError` and tries the next job).
 *
 * Key layout:
 *
 *   q:ready:<seq>     -> { payload, enqueuedAt }                      waiting, oldest first
 *   q:claimed:<seq>   -> { payload, enqueuedAt, worker, leaseUntil }  being worked on
 *   q:counter:0       -> last seq (an atomic counter, allocated in the enqueue transaction)
 *
 * Run: bun examples/work_queue.ts [dataDir]
 */
import { defineKeyspace, TransactionConflictError, ZoneTree } from "../mod.ts";

/** The keyspace of the queue. */
export const queueKeyspace = defineKeyspace({
  name: "work-queue",
  key: "q:<state:str>:<seq:u64be>",
  value: "json",
});

/** A job as stored. */
export interface Job<P = unknown> {
  seq: number;
  payload: P;
  enqueuedAt: number;
  worker?: string;
  leaseUntil?: number;
}

type Tree = ZoneTree<{ state: string; seq: bigint }, unknown, [string, number | bigint], unknown>;

/** A durable work queue over one tree. */
export class WorkQueue<P = unknown> {
  private constructor(readonly tree: Tree) {}

  /** Opens (or creates) the queue in `dir`. */
  static async open<P = unknown>(dir: string): Promise<WorkQueue<P>> {
    return new WorkQueue<P>(
      await ZoneTree.open({ dir, keyspace: queueKeyspace }) as unknown as Tree,
    );
  }

  /** Adds a job; returns its seq (jobs are claimed in seq order). */
  enqueue(payload: P, now = Date.now()): number {
    for (;;) {
      const tx = this.tree.transaction();
      const seq = ((tx.get(["counter", 0]) as number | undefined) ?? 0) + 1;
      tx.upsert(["counter", 0], seq);
      tx.upsert(["ready", seq], { payload, enqueuedAt: now });
      try {
        tx.commit();
        return seq;
      } catch (e) {
        if (!(e instanceof TransactionConflictError)) throw e;
      }
    }
  }

  /**
   * Claims the oldest ready job for `worker` until `now + leaseMs`, or returns undefined when
   * none is ready. `beforeCommit` (awaited between reading the job and committing the claim)
   * stands for whatever a real worker does there; racing workers conflict and move on.
   */
  async claim(
    worker: string,
    leaseMs = 30_000,
    beforeCommit?: () => Promise<void>,
  ): Promise<Job<P> | undefined> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const first = this.tree.keys({ prefix: ["ready"], limit: 1 });
      const head = first.next();
      first.return();
      if (head.done) return undefined;
      const seq = Number(head.value.seq);
      const tx = this.tree.transaction();
      const job = tx.get(["ready", seq]) as Omit<Job<P>, "seq"> | undefined;
      if (!job) continue; // claimed by someone since the scan
      const now = Date.now();
      const claimed = { ...job, worker, leaseUntil: now + leaseMs };
      tx.delete(["ready", seq]);
      tx.upsert(["claimed", seq], claimed);
      await beforeCommit?.();
      try {
        tx.commit();
        return { seq, ...claimed };
      } catch (e) {
        if (!(e instanceof TransactionConflictError)) throw e;
      }
    }
    return undefined;
  }

  /** Marks a claimed job done (removes it). False if `worker` does not hold it. */
  ack(seq: number, worker: string): boolean {
    const tx = this.tree.transaction();
    const job = tx.get(["claimed", seq]) as Job<P> | undefined;
    if (!job || job.worker !== worker) {
      tx.rollback();
      return false;
    }
    tx.delete(["claimed", seq]);
    tx.commit();
    return true;
  }

  /** Puts jobs whose lease ran out back in the ready queue, at their original place. */
  requeueExpired(now = Date.now()): number {
    let moved = 0;
    for (const [key, value] of this.tree.range({ prefix: ["claimed"] })) {
      const job = value as Job<P>;
      if ((job.leaseUntil ?? 0) > now) continue;
      const tx = this.tree.transaction();
      if (tx.get(["claimed", key.seq]) === undefined) continue;
      tx.delete(["claimed", key.seq]);
      tx.upsert(["ready", key.seq], { payload: job.payload, enqueuedAt: job.enqueuedAt });
      try {
        tx.commit();
        moved++;
      } catch (e) {
        if (!(e instanceof TransactionConflictError)) throw e;
      }
    }
    return moved;
  }

  /** The newest `limit` ready jobs, latest first. */
  peekLatest(limit = 10): Job<P>[] {
    return [...this.tree.range({ prefix: ["ready"], reverse: true, limit })].map(([k, v]) => ({
      seq: Number(k.seq),
      ...(v as Omit<Job<P>, "seq">),
    }));
  }

  /** Jobs waiting and jobs claimed. */
  counts(): { ready: number; claimed: number } {
    return {
      ready: this.tree.count({ prefix: ["ready"] }),
      claimed: this.tree.count({ prefix: ["claimed"] }),
    };
  }

  /** Closes the queue. */
  close(): Promise<void> {
    return this.tree.close();
  }
}

if (import.meta.main) {
  const nodeFs = await import("node:fs");
  const os = await import("node:os");
  const dir = process.argv[2] ?? nodeFs.mkdtempSync(`${os.tmpdir()}/zt-work-queue-`);
  const queue = await WorkQueue.open<{ task: string }>(dir);
  for (let i = 1; i <= 10; i++) queue.enqueue({ task: `resize image ${i}` });
  console.log("latest 3:", queue.peekLatest(3).map((j) => j.payload.task).join(", "));
  // Four workers race for the jobs; each claim spans an await, so claims conflict and retry.
  const done: number[] = [];
  await Promise.all(["w1", "w2", "w3", "w4"].map(async (worker) => {
    for (;;) {
      const job = await queue.claim(
        worker,
        30_000,
        () => new Promise((r) => setTimeout(r, Math.floor(Math.random() * 4))),
      );
      if (!job) return;
      if (queue.ack(job.seq, worker)) done.push(job.seq);
    }
  }));
  console.log(
    `done ${done.length} jobs, each once: ${new Set(done).size === 10}; left: ${
      JSON.stringify(queue.counts())
    }`,
  );
  await queue.close();
  if (process.argv[2] === undefined) nodeFs.rmSync(dir, { recursive: true, force: true });
  if (done.length !== 10 || new Set(done).size !== 10) process.exit(1);
}
