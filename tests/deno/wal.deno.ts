// The WAL and the local file system under Deno: the same code and the same files as under Bun.
// Run: deno test -A tests/deno/wal.deno.ts
import assert from "node:assert/strict";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import { localFileSystem } from "../../src/fs/local_file_system.ts";
import { helperStats, helperSyncsByPath, SYNC_DONE } from "../../src/util/helper_thread.ts";
import { Prng } from "../../src/util/prng.ts";
import type { WalMode, WalOp } from "../../src/wal/wal_format.ts";
import { replayWal } from "../../src/wal/wal_reader.ts";
import { WalWriter } from "../../src/wal/wal_writer.ts";

interface Seen extends WalOp {
  opIndex: number;
}

function withDir(fn: (dir: string) => Promise<void> | void): () => Promise<void> {
  return async () => {
    const dir = nodeFs.mkdtempSync(`${os.tmpdir()}/zt-deno-wal-`);
    try {
      await fn(dir);
    } finally {
      nodeFs.rmSync(dir, { recursive: true, force: true });
    }
  };
}

function randomOps(seed: number, count: number): Seen[] {
  const prng = new Prng(seed);
  return Array.from({ length: count }, (_, i) => {
    const half = prng.bytes(prng.int(50));
    return {
      opIndex: i + 1,
      kind: prng.int(8) === 0 ? 1 : 0,
      key: prng.bytes(1 + prng.int(20)),
      value: new Uint8Array([...half, ...half]),
      expiresAt: prng.int(4) === 0 ? 1.7e12 + i : 0,
    };
  });
}

function replayAll(path: string) {
  const ops: Seen[] = [];
  const result = replayWal(localFileSystem(), path, (opIndex, kind, key, value, expiresAt) => {
    ops.push({ opIndex, kind, key: key.slice(), value: value.slice(), expiresAt });
  });
  return { ops, result };
}

for (const mode of ["sync", "sync-compressed", "async-compressed"] as WalMode[]) {
  Deno.test(
    `${mode} WAL round-trips under Deno`,
    withDir(async (dir) => {
      const path = `${dir}/000003.wal`;
      const ops = randomOps(7, mode === "async-compressed" ? 2000 : 100);
      const wal = WalWriter.create(localFileSystem(), path, 3, mode);
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i];
        if (i % 10 === 9) {
          wal.appendBatch(op.opIndex, ops.slice(i, i + 1));
        } else {
          wal.appendOne(op.opIndex, op.kind, op.key, op.value, op.expiresAt);
        }
      }
      await wal.flush();
      await wal.close();
      const { ops: got, result } = replayAll(path);
      assert.deepEqual(got, ops);
      assert.deepEqual(result, {
        segmentId: 3,
        validLength: wal.sizeBytes,
        lastOpIndex: ops.length,
      });
    }),
  );
}

Deno.test(
  "a torn tail under Deno opens with the prefix, reports it, and appending cuts it off",
  withDir(async (dir) => {
    const path = `${dir}/000004.wal`;
    const ops = randomOps(9, 5);
    const wal = WalWriter.create(localFileSystem(), path, 4, "sync");
    const starts: number[] = [];
    for (const op of ops) {
      starts.push(wal.sizeBytes);
      wal.appendOne(op.opIndex, op.kind, op.key, op.value, op.expiresAt);
    }
    await wal.close();
    const bytes = nodeFs.readFileSync(path);
    const last = starts[starts.length - 1];
    for (let cut = last + 1; cut < bytes.length; cut++) {
      nodeFs.writeFileSync(path, bytes.subarray(0, cut));
      const { ops: got, result } = replayAll(path);
      assert.deepEqual(got, ops.slice(0, 4));
      // Only zeros of the frame left (its length's high bytes): the log ends there, as at the
      // zeros a sync-mode log writes ahead; nothing to report.
      const zeros = bytes.subarray(last, cut).every((b) => b === 0);
      assert.equal(result.tornTail?.offset, zeros ? undefined : last);
      assert.equal(result.validLength, last);
    }
    const again = WalWriter.openForAppend(localFileSystem(), path, "sync", last);
    const extra = ops[4];
    again.appendOne(extra.opIndex, extra.kind, extra.key, extra.value, extra.expiresAt);
    again.closeSync();
    const { ops: got, result } = replayAll(path);
    assert.deepEqual(got, ops);
    assert.equal(result.tornTail, undefined);
  }),
);

Deno.test(
  "a bit flip in the middle is CorruptionError under Deno",
  withDir((dir) => {
    const path = `${dir}/000005.wal`;
    const wal = WalWriter.create(localFileSystem(), path, 5, "sync");
    const starts: number[] = [];
    for (const op of randomOps(3, 6)) {
      starts.push(wal.sizeBytes);
      wal.appendOne(op.opIndex, op.kind, op.key, op.value, op.expiresAt);
    }
    wal.closeSync();
    const bytes = nodeFs.readFileSync(path);
    bytes[starts[2] + 10] ^= 0x40;
    nodeFs.writeFileSync(path, bytes);
    assert.throws(() => replayAll(path), { code: "CORRUPTION", file: path, offset: starts[2] });
  }),
);

Deno.test(
  "the local lock works under Deno",
  withDir((dir) => {
    const fs = localFileSystem();
    const lock = fs.lock(`${dir}/lock`);
    assert.throws(() => fs.lock(`${dir}/lock`), { code: "DATABASE_LOCKED" });
    lock.release();
    nodeFs.writeFileSync(`${dir}/lock`, "999999 ab not-this-boot\n");
    fs.lock(`${dir}/lock`).release();
  }),
);

Deno.test(
  "a WAL written by Bun replays under Deno",
  withDir(async (dir) => {
    const path = `${dir}/000006.wal`;
    const bun = new URL("../../node_modules/.bin/bun", import.meta.url).pathname;
    const writer = new URL("../../src/wal/wal_writer.ts", import.meta.url).pathname;
    const prng = new URL("../../src/util/prng.ts", import.meta.url).pathname;
    const fsModule = new URL("../../src/fs/local_file_system.ts", import.meta.url).pathname;
    // The same op stream as randomOps(11, 500), generated and written by Bun.
    const script = `
    import { WalWriter } from ${JSON.stringify(writer)};
    import { Prng } from ${JSON.stringify(prng)};
    import { localFileSystem } from ${JSON.stringify(fsModule)};
    const prng = new Prng(11);
    const wal = WalWriter.create(localFileSystem(), ${JSON.stringify(path)}, 6, "async-compressed");
    for (let i = 0; i < 500; i++) {
      const half = prng.bytes(prng.int(50));
      const kind = prng.int(8) === 0 ? 1 : 0;
      const key = prng.bytes(1 + prng.int(20));
      const value = new Uint8Array([...half, ...half]);
      const expiresAt = prng.int(4) === 0 ? 1.7e12 + i : 0;
      wal.appendOne(i + 1, kind, key, value, expiresAt);
    }
    await wal.close();`;
    const out = await new Deno.Command(bun, { args: ["-e", script], stderr: "piped" }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const { ops, result } = replayAll(path);
    assert.deepEqual(ops, randomOps(11, 500));
    assert.equal(result.segmentId, 6);
  }),
);

Deno.test(
  "follow under Deno: a new log writes no frame before its predecessor's records are in its file",
  withDir(async (dir) => {
    const fs = localFileSystem();
    const [a, b] = [`${dir}/000001.wal`, `${dir}/000002.wal`];
    const value = new Uint8Array(1000).fill(7);
    const put = (wal: WalWriter, i: number) => wal.appendOne(i, 0, Uint8Array.of(i & 255, i >> 8), value, 0);
    const prev = WalWriter.create(fs, a, 1, "async-compressed");
    const header = nodeFs.statSync(a).size;
    let i = 0;
    // No turn of the event loop: a first write (at 1 MiB) whose sync is in flight, then more.
    while (nodeFs.statSync(a).size === header) put(prev, ++i);
    for (let k = 0; k < 300; k++) put(prev, ++i);
    const next = WalWriter.create(fs, b, 2, "async-compressed");
    next.follow(prev); // before the old log's close, as the engine does at a segment move
    const closing = prev.close();
    let j = i;
    while (nodeFs.statSync(b).size === header) put(next, ++j);
    // The new log's first frame is in its file: every record of the old one is in the old file
    // (what a killed process leaves behind).
    assert.equal(replayAll(a).ops.length, i);
    await closing;
    await next.close();
    assert.equal(replayAll(a).ops.length, i);
    assert.deepEqual(replayAll(b).ops.map((o) => o.opIndex), Array.from({ length: j - i }, (_, k) => i + 1 + k));
  }),
);

/**
 * Under Deno the buffer helper starts the sync helper (a Worker's start would stall the caller's
 * thread for 60-90 ms): waits until it runs, as it does early in a real load.
 */
async function waitForSyncHelper(dir: string): Promise<void> {
  const probe = localFileSystem().openFile(`${dir}/probe`, { create: true });
  assert.equal(probe.startSync!(), undefined); // asks the helper to open it
  const remote = (probe as unknown as { remote: { cell: Int32Array } | null }).remote!;
  for (let t = 0; t < 1000 && Atomics.load(remote.cell, 0) === 0; t++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(Atomics.load(remote.cell, 0), SYNC_DONE);
  probe.close();
}

Deno.test(
  "under Deno a sync log's overlapped batches sync on the helper (by path) while applied; every batch replays",
  withDir(async (dir) => {
    const fs = localFileSystem();
    const path = `${dir}/000008.wal`;
    await waitForSyncHelper(dir);
    const before = helperStats().syncsStarted;
    const wal = WalWriter.create(fs, path, 8, "sync");
    const ops = randomOps(8, 40 * 200);
    let overlapped = 0;
    for (let b = 0; b < 40; b++) {
      if (wal.appendBatchOverlapped(b * 200 + 1, ops.slice(b * 200, b * 200 + 200))) overlapped++;
      wal.settleSync();
    }
    // The first batches sync here (the helper opens the file, then a sync here covers the time
    // before that); the later ones on the helper.
    assert.ok(overlapped >= 2, `${overlapped} overlapped batches`);
    assert.equal(helperStats().syncsStarted - before, overlapped);
    await wal.close();
    assert.deepEqual(replayAll(path).ops, ops);
  }),
);

Deno.test(
  "under Deno the async WAL's overflow syncs run on the helper, which opened the file by path; its descriptor closes with the log",
  withDir(async (dir) => {
    assert.equal(helperSyncsByPath(), true);
    const fs = localFileSystem();
    const path = `${dir}/000007.wal`;
    const value = new Uint8Array(1000).fill(5);
    await waitForSyncHelper(dir);
    const before = helperStats().syncsStarted;
    const wal = WalWriter.create(fs, path, 7, "async-compressed");
    // No turn of the event loop: every write and sync is the overflow path's.
    const n = 6500;
    for (let i = 1; i <= n; i++) wal.appendOne(i, 0, Uint8Array.of(i & 255, i >> 8), value, 0);
    // The first overflows sync here (the helper opens the file, then a sync here covers the
    // time before that); the later ones on the helper.
    assert.ok(helperStats().syncsStarted - before >= 2, `${helperStats().syncsStarted - before} helper syncs`);
    await wal.close();
    assert.equal(replayAll(path).ops.length, n);
    const real = nodeFs.realpathSync(path);
    const open = () =>
      nodeFs.readdirSync("/proc/self/fd").filter((fd) => {
        try {
          return nodeFs.readlinkSync(`/proc/self/fd/${fd}`) === real;
        } catch {
          return false;
        }
      }).length;
    for (let t = 0; t < 500 && open() > 0; t++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(open(), 0);
  }),
);
