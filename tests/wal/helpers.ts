// Shared helpers of the WAL tests: random ops, writing them in a mode, replaying into a list.
import * as nodeFs from "node:fs";
import * as os from "node:os";
import type { FileHandle, FileSystem, SyncTicket } from "../../src/fs/file_system.ts";
import { localFileSystem } from "../../src/fs/local_file_system.ts";
import { type MemoryFileSystem, memoryFileSystem } from "../../src/fs/memory_file_system.ts";
import type { Prng } from "../../src/util/prng.ts";
import type { WalMode, WalOp } from "../../src/wal/wal_format.ts";
import { replayWal, type WalReplayResult } from "../../src/wal/wal_reader.ts";
import type { WalWriter } from "../../src/wal/wal_writer.ts";

export const MODES: WalMode[] = ["sync", "sync-compressed", "async-compressed", "none"];

/** One op as replay reports it. */
export interface SeenOp extends WalOp {
  opIndex: number;
}

/** A random op: keys and values with repeats so that lz4 finds something to compress. */
export function randomOp(prng: Prng): WalOp {
  const key = prng.bytes(1 + prng.int(24));
  const kind = prng.int(10) === 0 ? 1 : prng.int(20) === 0 ? 2 : 0;
  const base = prng.bytes(prng.int(40));
  const value = prng.int(8) === 0 ? new Uint8Array(0) : new Uint8Array([...base, ...base, ...base]);
  const expiresAt = prng.int(5) === 0 ? 1.7e12 + prng.int(1e9) + 0.5 : 0;
  return { kind, key, value, expiresAt };
}

/**
 * Appends `count` ops starting at `firstOpIndex`, as single ops and batches; returns them with
 * their opIndexes in order.
 */
export function appendRandom(
  wal: WalWriter,
  prng: Prng,
  firstOpIndex: number,
  count: number,
): SeenOp[] {
  const out: SeenOp[] = [];
  let next = firstOpIndex;
  while (out.length < count) {
    if (prng.int(4) === 0) {
      const n = Math.min(1 + prng.int(8), count - out.length);
      const ops = Array.from({ length: n }, () => randomOp(prng));
      wal.appendBatch(next, ops);
      ops.forEach((op, i) => out.push({ ...op, opIndex: next + i }));
      next += n;
    } else {
      const op = randomOp(prng);
      wal.appendOne(next, op.kind, op.key, op.value, op.expiresAt);
      out.push({ ...op, opIndex: next++ });
    }
  }
  return out;
}

/** Replays `path` into a list. */
export function replayAll(
  fs: FileSystem,
  path: string,
): { ops: SeenOp[]; result: WalReplayResult } {
  const ops: SeenOp[] = [];
  const result = replayWal(fs, path, (opIndex, kind, key, value, expiresAt) => {
    ops.push({ opIndex, kind, key, value, expiresAt });
  });
  return { ops, result };
}

/** Compact form for equality checks with readable diffs. */
export function show(ops: SeenOp[]): string[] {
  return ops.map((o) =>
    `${o.opIndex}:${o.kind}:${Buffer.from(o.key).toString("hex")}=${
      Buffer.from(o.value).toString("hex")
    }@${o.expiresAt}`
  );
}

/** A fresh provider: a temp dir on local disk, or memory. `cleanup` removes the temp dir. */
export function makeProvider(
  kind: "local" | "memory",
): { fs: FileSystem; dir: string; cleanup: () => void } {
  if (kind === "memory") {
    const fs = memoryFileSystem();
    fs.mkdirp("/db");
    return { fs, dir: "/db", cleanup: () => {} };
  }
  const dir = nodeFs.mkdtempSync(`${os.tmpdir()}/zt-wal-`);
  return {
    fs: localFileSystem(),
    dir,
    cleanup: () => nodeFs.rmSync(dir, { recursive: true, force: true }),
  };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Index of the first op where `got` differs from `want` (-1 if `got` is a prefix of `want`). */
export function firstMismatch(got: SeenOp[], want: SeenOp[]): number {
  for (let i = 0; i < got.length; i++) {
    const g = got[i];
    const w = want[i];
    if (
      w === undefined || g.opIndex !== w.opIndex || g.kind !== w.kind ||
      g.expiresAt !== w.expiresAt ||
      !sameBytes(g.key, w.key) || !sameBytes(g.value, w.value)
    ) return i;
  }
  return -1;
}

/** A sync started by a {@link withTickets} handle: settled only when waited for. */
export interface FakeTicket extends SyncTicket {
  done: boolean;
  waited: boolean;
}

/**
 * A memory provider whose handles start fake syncs: a ticket is done only once waited for (polls
 * say no), or fails at `failAt` (the nth ticket). Appending a frame while the previous one is not
 * yet durable (no sync of any kind finished since) breaks the invariant and throws here. Only
 * files whose path passes `wraps` get such handles (an engine's segment files append freely).
 * It keeps the memory provider's `crash()`: a ticket never waited for leaves its frame unsynced.
 */
export function withTickets(
  failAt = Infinity,
  wraps: (path: string) => boolean = () => true,
): { fs: MemoryFileSystem; tickets: FakeTicket[]; writes: number[] } {
  const base = memoryFileSystem();
  const tickets: FakeTicket[] = [];
  const writes: number[] = [];
  const fs: MemoryFileSystem = Object.create(base);
  fs.openFile = (p, o) => {
    const h = base.openFile(p, o);
    if (!wraps(p)) return h;
    const wrapped: FileHandle = Object.create(h);
    let unsynced = false; // a frame is written and no sync since has finished
    const frame = (buf: Uint8Array) => {
      if (unsynced) throw new Error(`frame ${writes.length + 1} written before frame ${writes.length} is durable`);
      writes.push(buf.length);
      unsynced = true;
    };
    wrapped.append = (buf) => {
      frame(buf);
      h.append(buf);
    };
    // Frames are written at the log's end; zeros after it (sync modes) are not frames.
    wrapped.write = (buf, position) => {
      if (!buf.every((b) => b === 0)) frame(buf);
      h.write(buf, position);
    };
    wrapped.sync = () => {
      h.sync();
      unsynced = false;
    };
    wrapped.syncAsync = async () => {
      await h.syncAsync();
      unsynced = false;
    };
    wrapped.startSync = () => {
      const n = tickets.length + 1;
      const t: FakeTicket = {
        done: false,
        waited: false,
        poll: () => false,
        wait() {
          t.waited = true;
          if (n === failAt) throw Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO" });
          h.sync();
          t.done = true;
          unsynced = false;
        },
      };
      tickets.push(t);
      return t;
    };
    return wrapped;
  };
  return { fs, tickets, writes };
}
