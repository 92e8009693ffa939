/**
 * Merges in a Worker (src/merge/worker_merge.ts, merge_worker.ts): the record stream that carries
 * packed records to the worker, a corrupt base segment reported as a typed CorruptionError that
 * leaves no file behind, the result of worker merges matching in-thread merges, and the worker
 * pool: merges reuse one started Worker, and an idle pooled Worker does not keep a process (Bun
 * or Deno) alive when a tree is left open. The model test (model.test.ts) runs whole op logs
 * through worker merges as well.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CorruptionError, defineKeyspace, ZoneTree } from "../../mod.ts";
import { TreeEngine } from "../../src/engine/tree_engine.ts";
import { parseSegmentFileName } from "../../src/engine/file_names.ts";
import { KIND_DELETE, KIND_PUT, type RecordSlot } from "../../src/iter/record.ts";
import { RecordStreamCursor, RecordStreamWriter } from "../../src/merge/record_stream.ts";
import {
  mergeWorkerKind,
  setMergeWorkerKind,
  terminateIdleMergeWorkers,
  workerMergeCounts,
} from "../../src/merge/worker_merge.ts";
import { compareMemcmp } from "../../src/keyspace/compile_comparer.ts";
import { Prng } from "../../src/util/prng.ts";

describe("record stream", () => {
  test("round-trips every field, empty and chunk-sized records, in order", () => {
    const r = new Prng(5);
    const records: RecordSlot[] = [];
    for (let i = 0; i < 3000; i++) {
      const key = new Uint8Array(4 + r.int(40));
      new DataView(key.buffer).setUint32(0, i);
      const size = i === 7 ? 3 << 20 : i % 5 === 0 ? 0 : r.int(2000); // one record over a chunk
      const value = new Uint8Array(size).map(() => r.int(256));
      records.push({
        key,
        value,
        opIndex: 2 ** 40 + i,
        kind: i % 3 === 0 ? KIND_DELETE : KIND_PUT,
        expiresAt: i % 4 === 0 ? 1.7e12 + i : 0,
      });
    }
    const w = new RecordStreamWriter();
    for (const rec of records) w.add(rec);
    expect(w.recordCount).toBe(records.length);
    expect(w.chunks.length).toBeGreaterThan(2);
    const c = new RecordStreamCursor(w.chunks, compareMemcmp);
    let i = 0;
    for (c.seek(undefined); c.valid; c.next(), i++) {
      const want = records[i];
      expect(c.key).toEqual(want.key);
      expect(c.value.length).toBe(want.value.length);
      expect(Buffer.compare(c.value, want.value)).toBe(0);
      expect([c.opIndex, c.kind, c.expiresAt]).toEqual([want.opIndex, want.kind, want.expiresAt]);
    }
    expect(i).toBe(records.length);
    // seek with a target: the first key >= it (or > with exclusive).
    expect(c.seek(records[100].key)).toBe(true);
    expect(c.key).toEqual(records[100].key);
    expect(c.seek(records[100].key, true)).toBe(true);
    expect(c.key).toEqual(records[101].key);
  });
});

describe("merges in a Worker", () => {
  let root: string;
  let saved: number;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), "zt-worker-"));
    saved = TreeEngine.workerMergeMinRecords;
    TreeEngine.workerMergeMinRecords = 0;
  });
  afterEach(() => {
    TreeEngine.workerMergeMinRecords = saved;
    rmSync(root, { recursive: true, force: true });
  });
  const ks = defineKeyspace({ key: "s:<str>:n:<u32be>", value: "utf8" });

  test("a flipped byte in the base segment fails the merge with CorruptionError and leaves no new file", async () => {
    const dir = join(root, "db");
    const tree = await ZoneTree.open({ dir, keyspace: ks, maintenance: "manual", compression: "none" });
    try {
      for (let i = 0; i < 5000; i++) tree.upsert({ s: "a", n: i }, `value-${i}-${"x".repeat(40)}`);
      tree.maintenance.moveMutableSegmentForward();
      const before = workerMergeCounts.done;
      await tree.maintenance.merge();
      expect(workerMergeCounts.done).toBe(before + 1);
      const segFiles = readdirSync(dir).filter((n) => parseSegmentFileName(n) !== undefined);
      const data = segFiles.find((n) => n.endsWith(".dat")) ?? segFiles[0];
      const path = join(dir, data);
      const bytes = readFileSync(path);
      bytes[Math.floor(bytes.length / 3)] ^= 0x40;
      writeFileSync(path, bytes);
      for (let i = 0; i < 5000; i += 7) tree.upsert({ s: "a", n: i }, "new");
      tree.maintenance.moveMutableSegmentForward();
      const err = await tree.maintenance.merge().then(() => undefined, (e) => e);
      expect(err).toBeInstanceOf(CorruptionError);
      expect((err as CorruptionError).file).toContain(data);
      expect((err as CorruptionError).offset).toBeGreaterThanOrEqual(0);
      // The failed merge removed what it wrote: the same segment files as before.
      expect(readdirSync(dir).filter((n) => parseSegmentFileName(n) !== undefined).sort()).toEqual(segFiles.sort());
      // Nothing acknowledged is lost: the newer records are still read from memory.
      expect(tree.get({ s: "a", n: 7 })).toBe("new");
    } finally {
      await tree.close().catch(() => {});
    }
  });

  test("worker merges and in-thread merges of the same writes read the same and have equal sizes", async () => {
    const results: unknown[] = [];
    for (const threshold of [0, Infinity]) {
      TreeEngine.workerMergeMinRecords = threshold;
      const dir = join(root, `db-${threshold}`);
      const tree = await ZoneTree.open({
        dir,
        keyspace: ks,
        maintenance: "manual",
        multipartMinItemCount: 1000,
        multipartMaxItemCount: 2000,
      });
      const r = new Prng(9);
      for (let round = 0; round < 4; round++) {
        for (let i = 0; i < 3000; i++) {
          const n = r.int(20_000);
          if (r.int(10) === 0) tree.tryDelete({ s: "k", n });
          else tree.upsert({ s: "k", n }, `r${round}-${n}`, r.int(20) === 0 ? { expiresAt: 1 } : undefined);
        }
        if (round === 2) tree.deleteRange({ gte: { s: "k", n: 100 }, lt: { s: "k", n: 300 } });
        tree.maintenance.moveMutableSegmentForward();
        await tree.maintenance.merge();
      }
      results.push({ rows: [...tree.range()], stats: tree.stats().diskSegmentRecordCount });
      await tree.close();
    }
    expect(results[0]).toEqual(results[1]);
  });

  test("merges of several trees reuse the pooled Worker instead of starting one each", async () => {
    await terminateIdleMergeWorkers();
    const startedBefore = workerMergeCounts.started;
    const doneBefore = workerMergeCounts.done;
    for (let t = 0; t < 3; t++) {
      const tree = await ZoneTree.open({ dir: join(root, `pool-${t}`), keyspace: ks, maintenance: "manual" });
      for (let round = 0; round < 2; round++) {
        for (let i = 0; i < 500; i++) tree.upsert({ s: `t${t}`, n: i }, `r${round}`);
        tree.maintenance.moveMutableSegmentForward();
        await tree.maintenance.merge();
      }
      expect(tree.get({ s: `t${t}`, n: 499 })).toBe("r1");
      await tree.close();
    }
    expect(workerMergeCounts.done - doneBefore).toBe(6);
    // Opening the first tree warmed one worker; the six merges all ran on it.
    expect(workerMergeCounts.started - startedBefore).toBe(1);
  });

  test("where the module is not a local file, merges run in a web Worker started per merge", async () => {
    // Deno's node:worker_threads loads only file: and data: modules: a tree imported from JSR
    // (https) falls back to web Workers, which cannot be unref'd and so are not pooled.
    const saved = mergeWorkerKind;
    setMergeWorkerKind("web");
    try {
      const startedBefore = workerMergeCounts.started;
      const doneBefore = workerMergeCounts.done;
      const tree = await ZoneTree.open({ dir: join(root, "web"), keyspace: ks, maintenance: "manual" });
      for (let round = 0; round < 2; round++) {
        for (let i = 0; i < 500; i++) tree.upsert({ s: "w", n: i }, `r${round}`);
        tree.maintenance.moveMutableSegmentForward();
        await tree.maintenance.merge();
      }
      expect([...tree.range()].map(([k, v]) => `${k.n}=${v}`).slice(0, 2)).toEqual(["0=r1", "1=r1"]);
      await tree.close();
      expect(workerMergeCounts.done - doneBefore).toBe(2);
      expect(workerMergeCounts.started - startedBefore).toBe(2); // one per merge, none kept
    } finally {
      setMergeWorkerKind(saved);
    }
  });

  const deno = new URL("../../node_modules/.bin/deno", import.meta.url).pathname;
  const child = new URL("./unclosed_worker_child.ts", import.meta.url).pathname;
  for (const runtime of ["bun", "deno"] as const) {
    test(`${runtime}: a process that leaves its tree open exits by itself after a worker merge, a relayout and helper syncs`, async () => {
      const cmd = runtime === "bun"
        ? [process.execPath, child, join(root, "db")]
        : [deno, "run", "-A", "--quiet", child, join(root, "db")];
      const started = performance.now();
      const proc = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe" });
      const killer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
      const code = await proc.exited;
      clearTimeout(killer);
      const out = await new Response(proc.stdout).text();
      const err = await new Response(proc.stderr).text();
      expect({ code, signal: proc.signalCode, err }).toEqual({ code: 0, signal: null, err: "" });
      expect(JSON.parse(out)).toEqual({ done: 1, started: 1, helperSynced: true, relaidOut: true });
      expect(performance.now() - started).toBeLessThan(20_000);
    }, 30_000);
  }
});
