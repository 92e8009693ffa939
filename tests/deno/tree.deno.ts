// The tree's public API under Deno on real files, and trees crossing runtimes: a tree written by a
// Bun process opens and reads identically here (tests/crash/cross_runtime.test.ts does the other
// direction), and the crash child SIGKILLed under Deno loses no acknowledged write.
// Run: deno test -A tests/deno/tree.deno.ts
import assert from "node:assert/strict";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import {
  ClosedError,
  CorruptionError,
  DatabaseLockedError,
  defineKeyspace,
  ZoneTree,
} from "../../mod.ts";
import { Prng } from "../../src/util/prng.ts";
import { pace, PACE_BYTES, setGcPacing } from "../../src/util/gc_pacer.ts";
import { checkTree, readings } from "../crash/tree_writer.ts";
import {
  checkDirectory,
  type ChildConfig,
  KEYSPACES,
  numberOfKey,
  Oracle,
  tuningOf,
  widOfValue,
} from "../crash/crash_shared.ts";

const bun = new URL("../../node_modules/.bin/bun", import.meta.url).pathname;
const writer = new URL("../crash/tree_writer.ts", import.meta.url).pathname;
const crashChild = new URL("../crash/crash_child.ts", import.meta.url).pathname;

function withDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = nodeFs.mkdtempSync(`${os.tmpdir()}/zt-deno-tree-`);
    try {
      await fn(dir);
    } finally {
      nodeFs.rmSync(dir, { recursive: true, force: true });
    }
  };
}

const ks = defineKeyspace({ key: "user:<str>:n:<u32be>", value: "json" });
type Key = [string, number];
const tuning = {
  maintenance: "manual",
  mutableSegmentMaxItemCount: 100,
  diskSegmentMaxItemCount: 600,
  multipartMinItemCount: 50,
  multipartMaxItemCount: 150,
  blockSizeBytes: 512,
  sparseStep: 8,
} as const;

// deno-lint-ignore no-explicit-any
type Tree = ZoneTree<any, unknown, any, any>;

function sortedModel(model: Map<string, [Key, unknown]>): [Key, unknown][] {
  const enc = (k: Key) =>
    Array.from(ks.key.encode(k), (b) => b.toString(16).padStart(2, "0")).join("");
  return [...model.values()].sort((
    a,
    b,
  ) => (enc(a[0]) < enc(b[0]) ? -1 : enc(a[0]) > enc(b[0]) ? 1 : 0));
}

function assertSame(tree: Tree, model: Map<string, [Key, unknown]>, why: string): void {
  const want = sortedModel(model).map(([[u, n], v]) => [{ user: u, n }, v]);
  assert.deepEqual([...tree.range()], want, why);
  assert.deepEqual([...tree.range({ reverse: true })], want.slice().reverse(), why);
  assert.equal(tree.count(), want.length, why);
  for (const [k, v] of model.values()) assert.deepEqual(tree.get(k), v, why);
}

for (const wal of ["sync-compressed", "async-compressed"] as const) {
  Deno.test(
    `tree (${wal}): writes, batches, ranges, merges and reopens match a model under Deno`,
    withDir(async (dir) => {
      const prng = new Prng(7);
      const model = new Map<string, [Key, unknown]>();
      const users = ["ann", "bob", "", "é", "a\u0000b"];
      const key = (): Key => [users[prng.int(users.length)], prng.int(200)];
      let tree = (await ZoneTree.open({ dir, keyspace: ks, wal, ...tuning })) as Tree;
      let last = 0;
      // Sync writes cost an fsync each: fewer of them.
      const steps = wal === "sync-compressed" ? 600 : 1500;
      for (let i = 0; i < steps; i++) {
        const k = key();
        const id = JSON.stringify(k);
        const x = prng.int(10);
        let opIndex: number | undefined;
        if (x < 5) {
          opIndex = tree.upsert(k, { i, tags: [i % 3] });
          model.set(id, [k, { i, tags: [i % 3] }]);
        } else if (x < 6) {
          opIndex = tree.tryAdd(k, { added: i });
          assert.equal(opIndex === undefined, model.has(id));
          if (opIndex !== undefined) model.set(id, [k, { added: i }]);
        } else if (x < 7) {
          opIndex = tree.tryDelete(k);
          assert.equal(opIndex === undefined, !model.has(id));
          model.delete(id);
        } else if (x < 8) {
          opIndex = tree.forceDelete(k);
          model.delete(id);
        } else {
          const ops = [{ put: k, value: i }, { del: key() }, { put: key(), value: [i] }];
          opIndex = tree.batch(ops);
          model.set(id, [k, i]);
          model.delete(JSON.stringify(ops[1].del));
          model.set(JSON.stringify(ops[2].put), [ops[2].put as Key, [i]]);
        }
        if (opIndex !== undefined) {
          assert.ok(opIndex > last, `opIndex ${opIndex} after ${last}`);
          last = opIndex;
        }
        if (i % 150 === 149) tree.maintenance.moveMutableSegmentForward();
        if (i % 400 === 399) assert.equal(await tree.maintenance.merge(), "ok");
        if (i % 500 === 499) {
          assertSame(tree, model, `before reopen at ${i}`);
          await tree.close();
          assert.throws(() => tree.get(k), ClosedError);
          tree = (await ZoneTree.open({ dir, keyspace: ks, wal, ...tuning })) as Tree;
          assert.ok(tree.lastOpIndex >= last);
          assertSame(tree, model, `after reopen at ${i}`);
        }
      }
      // Ranges by prefix and bounds.
      const ann = sortedModel(model).filter(([[u]]) => u === "ann");
      assert.deepEqual(
        [...tree.keys({ prefix: ["ann"] })],
        ann.map(([[u, n]]) => ({ user: u, n })),
      );
      assert.deepEqual(
        [...tree.keys({ prefix: ["ann"], reverse: true, limit: 3 })],
        ann.slice().reverse().slice(0, 3).map(([[u, n]]) => ({ user: u, n })),
      );
      const mid = [...tree.keys({ gte: ["bob", 50], lt: ["bob", 100] })];
      assert.ok(mid.every((k) => k.user === "bob" && k.n >= 50 && k.n < 100));
      assert.ok(
        tree.stats().bottomSegmentsCount + (tree.stats().diskSegmentRecordCount > 0 ? 1 : 0) > 0,
      );
      // A second open in this process is refused while the tree is open.
      await assert.rejects(ZoneTree.open({ dir, keyspace: ks, wal }), DatabaseLockedError);
      await tree.close();
      assert.equal(nodeFs.existsSync(`${dir}/lock`), false);
    }),
  );
}

Deno.test(
  "a flipped byte in meta is CorruptionError naming it under Deno",
  withDir(async (dir) => {
    const tree = await ZoneTree.open({ dir, keyspace: ks, wal: "sync", ...tuning });
    tree.upsert(["a", 1], 1);
    await tree.close();
    const bytes = nodeFs.readFileSync(`${dir}/meta`);
    bytes[bytes.length - 3] ^= 0x20;
    nodeFs.writeFileSync(`${dir}/meta`, bytes);
    await assert.rejects(ZoneTree.open({ dir, keyspace: ks }), (e: unknown) => {
      assert.ok(e instanceof CorruptionError);
      assert.equal(e.code, "CORRUPTION");
      assert.ok(e.file.endsWith("/meta"), e.file);
      return true;
    });
  }),
);

Deno.test(
  "a tree written by a Bun process (killed without close) opens and reads identically under Deno",
  withDir(async (dir) => {
    const seed = 31337;
    const out = await new Deno.Command(bun, { args: [writer, `${dir}/t`, String(seed)] }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const [ok, lastOpIndex, count] = stdout.trim().split(" ");
    assert.equal(ok, "OK", stdout);
    assert.ok(nodeFs.existsSync(`${dir}/t/lock`), "the Bun child left its lock behind");

    const tree = await ZoneTree.open({ dir: `${dir}/t`, keyspace: readings, mode: "open" });
    const errors: unknown[] = [];
    tree.events.on("error", (e) => errors.push(e));
    try {
      assert.deepEqual(errors, []);
      assert.ok(tree.lastOpIndex >= Number(lastOpIndex));
      assert.equal(checkTree(tree, seed), Number(count));
      assert.ok(tree.stats().bottomSegmentsCount > 0);
      tree.upsert(["deno", 1n], { temp: -2.25, count: 9 });
      await tree.maintenance.merge();
    } finally {
      await tree.close();
    }
    const again = await ZoneTree.open({ dir: `${dir}/t`, keyspace: readings, readOnly: true });
    try {
      assert.deepEqual(again.get(["deno", 1n]), { temp: -2.25, count: 9 });
      assert.equal(again.count(), Number(count) + 1);
    } finally {
      await again.close();
    }
  }),
);

/** Runs the crash child under Deno until it printed `lines` lines, then SIGKILLs it. */
async function runDenoChild(cfg: ChildConfig, lines: number): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", crashChild, JSON.stringify(cfg)],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  let killed = false;
  const decoder = new TextDecoder();
  const hardStop = setTimeout(() => child.kill("SIGKILL"), 30_000);
  for await (const chunk of child.stdout) {
    text += decoder.decode(chunk, { stream: true });
    if (!killed && (text.split("\n").length > lines || /(^|\n)E /.test(text))) {
      child.kill("SIGKILL");
      killed = true;
    }
  }
  const status = await child.status;
  clearTimeout(hardStop);
  const stderr = new TextDecoder().decode(await new Response(child.stderr).arrayBuffer());
  assert.equal(status.signal, "SIGKILL", `child ended by itself: ${text.slice(-400)} ${stderr}`);
  return text;
}

Deno.test(
  "the crash child SIGKILLed under Deno loses no acknowledged write (3 cycles, sync-compressed)",
  withDir(async (dir) => {
    const oracle = new Oracle();
    const prng = new Prng(99);
    for (let cycle = 1; cycle <= 3; cycle++) {
      const cfg: ChildConfig = {
        dir: `${dir}/t`,
        wal: "sync-compressed",
        layout: "u32",
        maintenance: cycle % 2 ? "auto" : "manual",
        seed: prng.u32(),
        widBase: cycle * 1_000_000,
        markerBase: cycle * 100_000,
        variant: "ops",
      };
      const log = oracle.absorb(await runDenoChild(cfg, 60 + prng.int(200)), true);
      const tree = await ZoneTree.open({
        dir: cfg.dir,
        keyspace: KEYSPACES.u32,
        wal: cfg.wal,
        ...tuningOf(cfg),
        maintenance: "manual",
      });
      try {
        checkDirectory(cfg.dir, "u32");
        assert.ok(tree.lastOpIndex >= log.maxAckedOpIndex);
        const observed = new Map<number, number>();
        // deno-lint-ignore no-explicit-any
        for (const [k, v] of (tree as ZoneTree<any, string, any, any>).range()) {
          observed.set(numberOfKey("u32", k), widOfValue(v));
        }
        oracle.check(observed);
        oracle.maxOpIndexEver = Math.max(oracle.maxOpIndexEver, tree.lastOpIndex);
      } finally {
        await tree.close();
      }
    }
  }),
);

Deno.test(
  "merges run in a Worker under Deno too, and read the same as merges in this thread",
  withDir(async (dir) => {
    const { TreeEngine } = await import("../../src/engine/tree_engine.ts");
    const { mergeWorkerKind, setMergeWorkerKind, workerMergeCounts } = await import(
      "../../src/merge/worker_merge.ts"
    );
    const ks = defineKeyspace({ key: "s:<str>:n:<u32be>", value: "utf8" });
    const saved = TreeEngine.workerMergeMinRecords;
    const savedKind = mergeWorkerKind;
    const rows: unknown[] = [];
    try {
      // A pooled worker_threads Worker (local module), a web Worker per merge (the fallback for a
      // module imported over https, e.g. from JSR), and this thread.
      for (const [name, threshold, kind] of [["thread", 0, "thread"], ["web", 0, "web"], ["here", Infinity, "thread"]] as const) {
        TreeEngine.workerMergeMinRecords = threshold;
        setMergeWorkerKind(kind);
        const before = workerMergeCounts.done;
        const tree = await ZoneTree.open({ dir: `${dir}/db-${name}`, keyspace: ks, maintenance: "manual" });
        const r = new Prng(3);
        for (let round = 0; round < 3; round++) {
          for (let i = 0; i < 2000; i++) tree.upsert({ s: "k", n: r.int(5000) }, `r${round}-${i}`);
          tree.tryDelete({ s: "k", n: r.int(5000) });
          tree.maintenance.moveMutableSegmentForward();
          await tree.maintenance.merge();
        }
        rows.push([...tree.range()]);
        await tree.close();
        assert.equal(workerMergeCounts.done - before, threshold === 0 ? 3 : 0);
      }
      assert.deepEqual(rows[0], rows[2]);
      assert.deepEqual(rows[1], rows[2]);
    } finally {
      TreeEngine.workerMergeMinRecords = saved;
      setMergeWorkerKind(savedKind);
    }
  }),
);

Deno.test(
  "large in-memory segments use buffers pre-touched by the helper under Deno too; values come out plain",
  async () => {
    const { helperStats } = await import("../../src/util/helper_thread.ts");
    const { memoryFileSystem } = await import("../../mod.ts");
    let shared = 0;
    const ks = defineKeyspace({
      key: "<u32be>",
      value: {
        id: "copy",
        encode: (v: Uint8Array) => v,
        decode: (b: Uint8Array) => {
          if (!(b.buffer instanceof ArrayBuffer)) shared++;
          return b.slice();
        },
      },
    });
    const tree = await ZoneTree.open({ dir: "/w", keyspace: ks, fs: memoryFileSystem(), maintenance: "manual" });
    const value = (i: number) => new Uint8Array(100).fill(i & 0xff);
    const hits = helperStats().plainHits;
    // The helper answers under Deno: buffers it made and transferred are handed out. Writes
    // pause between batches so that its replies (read without an event-loop turn) have come.
    for (let i = 0; i < 30_000; i += 1000) {
      tree.batch(Array.from({ length: 1000 }, (_, j) => ({ put: i + j, value: value(i + j) })));
      await new Promise((r) => setTimeout(r, 5));
    }
    const stats = helperStats();
    assert.equal(stats.running, true);
    assert.ok(stats.plainHits > hits, `no pre-touched buffer handed out (${stats.plainHits})`);
    let n = 0;
    for (const [k, v] of tree.range({})) {
      assert.deepEqual(v, value(k as number));
      n++;
    }
    assert.equal(n, 30_000);
    assert.equal(shared, 0);
    await tree.close();
  },
);

Deno.test("GC pacing is Bun's alone: nothing to run here, and pacing is a no-op", () => {
  assert.equal(setGcPacing(true), false);
  pace(10 * PACE_BYTES); // no collector: must not throw
  let collections = 0;
  setGcPacing(true, () => collections++);
  pace(PACE_BYTES);
  assert.equal(collections, 1);
  setGcPacing(true);
});

Deno.test("small copies are pooled under Deno: each read hands out bytes of its own", async () => {
  const { RUNTIME_POOLS_COPIES } = await import("../../src/util/bytes.ts");
  const { memoryFileSystem } = await import("../../mod.ts");
  assert.equal(RUNTIME_POOLS_COPIES, true);
  const ks = defineKeyspace({ key: "sensor:<str>:ts:<u64be>", value: "bytes" });
  const tree = await ZoneTree.open({ dir: "/p", keyspace: ks, fs: memoryFileSystem(), maintenance: "manual" });
  const valueOf = (s: number, t: number) => new Uint8Array(16 + (t % 3) * 50).fill((s * 7 + t) & 0xff);
  for (let t = 0; t < 100; t++) {
    tree.batch(Array.from({ length: 10 }, (_, s) => ({ put: [`s${s}`, t] as [string, number], value: valueOf(s, t) })));
  }
  const got = [...tree.range({})];
  assert.equal(got.length, 1000);
  assert.ok(got.some(([, v]) => v.byteOffset > 0), "values are views into shared slabs");
  for (const [k, v] of got) assert.deepEqual(v, valueOf(Number(k.sensor.slice(1)), Number(k.ts)));
  for (const [, v] of got) v.fill(0xee);
  // A caller transferring one value's buffer away detaches its slab, not the engine's next reads.
  const [[, first]] = tree.range({ prefix: ["s3"], limit: 1 });
  const slab = first.buffer as ArrayBuffer;
  structuredClone(slab, { transfer: [slab] });
  assert.equal(first.length, 0);
  for (const [k, v] of tree.range({ prefix: ["s3"] })) assert.deepEqual(v, valueOf(3, Number(k.ts)));
  assert.deepEqual(tree.get(["s5", 42]), valueOf(5, 42));
  await tree.close();
});

Deno.test("a read-only segment written out of key order is laid out again on the helper once read, under Deno", async () => {
  const { helperStats } = await import("../../src/util/helper_thread.ts");
  const { RELAYOUT_MIN_RECORDS } = await import("../../src/memory/bplus_tree.ts");
  const { memoryFileSystem } = await import("../../mod.ts");
  const ks = defineKeyspace({ key: "<bytes:16>", value: "bytes" });
  const tree = await ZoneTree.open({ dir: "/r", keyspace: ks, fs: memoryFileSystem(), maintenance: "manual" });
  const n = RELAYOUT_MIN_RECORDS + 3000;
  const rng = new Prng(0xde);
  const keyOf = (i: number) => {
    const k = new Uint8Array(16);
    new DataView(k.buffer).setUint32(12, i);
    return k;
  };
  const valueOf = (i: number) => new Uint8Array(1 + (i % 120)).fill(i & 0xff);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  for (let b = 0; b < n; b += 500) {
    tree.batch(order.slice(b, b + 500).map((i) => ({ put: keyOf(i), value: valueOf(i) })));
  }
  const { relayoutsStarted, relayoutsDone } = helperStats();
  tree.maintenance.moveMutableSegmentForward();
  assert.equal(helperStats().relayoutsStarted, relayoutsStarted, "no relayout before a read");
  assert.deepEqual(tree.get(keyOf(7)), valueOf(7));
  assert.equal(helperStats().relayoutsStarted, relayoutsStarted + 1);
  const deadline = Date.now() + 20_000;
  while (helperStats().relayoutsDone === relayoutsDone) {
    assert.ok(Date.now() < deadline, "the relayout did not land in 20 s");
    for (const _ of tree.range({ limit: 1 })) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  let i = 0;
  for (const [k, v] of tree.range({})) {
    assert.deepEqual(k, keyOf(i));
    assert.deepEqual(v, valueOf(i));
    i++;
  }
  assert.equal(i, n);
  for (let r = 0; r < 500; r++) {
    const j = rng.int(n);
    assert.deepEqual(tree.get(keyOf(j)), valueOf(j));
  }
  await tree.close();
});

Deno.test("read-only segments are laid out again together, and ranges read their combined run, under Deno", async () => {
  const { helperStats } = await import("../../src/util/helper_thread.ts");
  const { RELAYOUT_MIN_RECORDS } = await import("../../src/memory/bplus_tree.ts");
  const { combinedRunCursorsOpened } = await import("../../src/memory/combined_run.ts");
  const { memoryFileSystem } = await import("../../mod.ts");
  const ks = defineKeyspace({ key: "<bytes:16>", value: "bytes" });
  const tree = await ZoneTree.open({ dir: "/c", keyspace: ks, fs: memoryFileSystem(), maintenance: "manual" });
  const n = RELAYOUT_MIN_RECORDS + 3000;
  const rng = new Prng(0xdf);
  const keyOf = (i: number) => {
    const k = new Uint8Array(16);
    new DataView(k.buffer).setUint32(12, i);
    return k;
  };
  const model = new Map<number, Uint8Array>();
  // Two segments of random keys from one range: the newer one overwrites some of the older's.
  for (let segment = 0; segment < 2; segment++) {
    for (let b = 0; b < n; b += 500) {
      const ops = [];
      for (let r = 0; r < 500; r++) {
        const i = rng.int(2 * n);
        const value = new Uint8Array(1 + (i % 120)).fill((i + segment) & 0xff);
        ops.push({ put: keyOf(i), value });
        model.set(i, value);
      }
      tree.batch(ops);
    }
    tree.maintenance.moveMutableSegmentForward();
  }
  const { relayoutsStarted, relayoutsDone } = helperStats();
  const runCursors = combinedRunCursorsOpened();
  // One read picks the segments, the next two list one each (the second posts the job).
  for (let r = 0; r < 3; r++) assert.equal(tree.get(keyOf(2 * n + 1)), undefined);
  assert.equal(helperStats().relayoutsStarted, relayoutsStarted + 1, "one relayout of both segments");
  const deadline = Date.now() + 20_000;
  while (helperStats().relayoutsDone === relayoutsDone) {
    assert.ok(Date.now() < deadline, "the combine did not land in 20 s");
    for (const _ of tree.range({ limit: 1 })) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  const want = [...model.keys()].sort((a, b) => a - b);
  for (const reverse of [false, true]) {
    let i = reverse ? want.length - 1 : 0;
    for (const [k, v] of tree.range({ reverse })) {
      assert.deepEqual(k, keyOf(want[i]));
      assert.deepEqual(v, model.get(want[i]));
      i += reverse ? -1 : 1;
    }
    assert.equal(i, reverse ? -1 : want.length);
  }
  assert.ok(combinedRunCursorsOpened() > runCursors, "ranges read the combined run");
  for (let r = 0; r < 500; r++) {
    const j = want[rng.int(want.length)];
    assert.deepEqual(tree.get(keyOf(j)), model.get(j));
  }
  await tree.close();
});
