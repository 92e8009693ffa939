/**
 * Write amplification of time-series ingestion (issue 6): bytes written to storage divided by
 * bytes of user data, for the `ts-ingest` workload, across key layouts and tree options, next to
 * lmdb-js, classic-level and bun:sqlite measured the same way in the same run.
 *
 * The workload (bench/peers' ts-ingest): S sensors x R readings (default 1,000 x 1,000), one a
 * minute, 16-byte random values, arriving time-first (every sensor's reading of minute 0, then
 * minute 1, ...), one batch per minute. With keys ordered sensor-first, every batch (and so
 * every in-memory segment) spans the whole key range: each merge overlaps the whole disk segment.
 *
 * What is counted:
 * - ZoneTree: every byte handed to `write`/`append` of its `FileSystem` (a counting wrapper
 *   around `localFileSystem()`, passed as the `fs` option), by file kind: WAL (`wal-*`), segment
 *   parts (`seg-*.data`), multipart descriptors (`seg-*.multi`), metadata (`meta*`). Rewrites are
 *   counted each time; renames and hard links write nothing. The same child also reads the
 *   kernel's counters (below), as a cross-check.
 * - Peers (and ZoneTree, as the cross-check): `/proc/self/io` deltas around the ingest, the final
 *   compaction and close, in a child process that does nothing else meanwhile. `wchar`: bytes
 *   passed to write-like system calls (write, pwrite, writev) by every thread of the process, in
 *   full, including rewrites of the same page; it misses stores into a shared writable memory map
 *   (LMDB with `useWritemap`, not used here) and counts writes to pipes and terminals (nothing is
 *   printed while measuring). `write_bytes - cancelled_write_bytes`: bytes of page cache the
 *   process dirtied, in whole pages, counted once per page until written back (so repeated writes
 *   to a still-dirty page count once) and cancelled when the file is deleted or truncated first.
 * - User bytes: key + value bytes of every reading in the harness encoding, 37 bytes a reading
 *   (21-byte key `sensor-NNNN 00 00 <u64be>` + 16-byte value). Our `sensor:<str>:ts:<u64be>`
 *   encodes to 21 bytes as well; the bucket-first layout's key is 4 bytes longer, which counts
 *   against it: every case divides by the same number.
 *
 * Every case ends the same way: ingest, wait for background merges, then everything in memory is
 * forced into disk segments (`moveMutableSegmentForward()` + `maintenance.merge()`; for
 * classic-level `compactRange` over all keys; lmdb and SQLite write their B-tree in place and
 * SQLite checkpoints its WAL on close), then close. Ingestion yields to the event loop after
 * every batch (`setImmediate`), as a server receiving readings would, so background merges run
 * between batches; "ingest" throughput is records / wall time of that loop (batches are built
 * before the timer). "latest-100" is the peers' query: for Q random sensors, the newest 100
 * readings (reverse, limit 100), checked, on the reopened store; the median of three passes.
 *
 *   bun bench/write_amp.ts                      # every case, 3 runs, full scale (about 25 min)
 *   bun bench/write_amp.ts --runs 1 --readings 100 --cases sensor-m100k,lmdb   # a quick look
 *
 * Flags: --runs N (3), --sensors N (1000), --readings N (1000), --queries N (1000),
 * --cases a,b,... (default: all; `--list` prints them), --fs counting|local (default counting:
 * ZoneTree writes through the counting wrapper; local: the default provider, counted by wchar
 * only, for engine paths that bypass a wrapped provider), --out file.md (default
 * bench/results/write-amp-<time>.md, raw results in the .json beside it).
 * Peers need `cd bench/peers && npm ci` first; a peer that cannot load is skipped.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import {
  defineKeyspace,
  type FileHandle,
  type FileSystem,
  localFileSystem,
  PartitionedTree,
  ZoneTree,
} from "../mod.ts";
import { Prng } from "../src/util/prng.ts";
import * as data from "./peers/data.ts";

// ------------------------------------------------------------------------------------------------
// Counting file system

/** What a write is counted as, by the file's name. */
export type FileKind = "wal" | "part" | "descriptor" | "meta" | "other";
const KINDS: readonly FileKind[] = ["wal", "part", "descriptor", "meta", "other"];

/** Bytes written per file kind, and the number of write calls, syncs and files opened for writing. */
export interface WriteCounts {
  bytes: Record<FileKind, number>;
  writeCalls: number;
  syncs: number;
}

/** The kind of file `path` names (engine/file_names.ts, disk/format.ts). */
export function fileKind(path: string): FileKind {
  const name = path.slice(path.lastIndexOf("/") + 1);
  if (name.startsWith("wal-")) return "wal";
  if (name.startsWith("seg-")) return name.endsWith(".multi") ? "descriptor" : "part";
  if (name === "meta" || name.startsWith("meta.")) return "meta";
  return "other";
}

/**
 * Wraps `inner` so that every byte written through it is counted in `counts` by file kind.
 * Everything else passes through unchanged.
 */
export function countingFileSystem(inner: FileSystem): { fs: FileSystem; counts: WriteCounts } {
  const counts: WriteCounts = {
    bytes: { wal: 0, part: 0, descriptor: 0, meta: 0, other: 0 },
    writeCalls: 0,
    syncs: 0,
  };
  const wrap = (h: FileHandle): FileHandle => {
    const kind = fileKind(h.path);
    return {
      path: h.path,
      size: () => h.size(),
      read: (buf, position, length) => h.read(buf, position, length),
      write(buf, position) {
        h.write(buf, position);
        counts.bytes[kind] += buf.length;
        counts.writeCalls++;
      },
      append(buf) {
        h.append(buf);
        counts.bytes[kind] += buf.length;
        counts.writeCalls++;
      },
      sync() {
        h.sync();
        counts.syncs++;
      },
      syncAsync() {
        counts.syncs++;
        return h.syncAsync();
      },
      truncate: (size) => h.truncate(size),
      close: () => h.close(),
    };
  };
  const fs: FileSystem = {
    openFile: (path, options) => wrap(inner.openFile(path, options)),
    stat: (path) => inner.stat(path),
    readFile: (path) => inner.readFile(path),
    list: (dir) => inner.list(dir),
    mkdirp: (dir) => inner.mkdirp(dir),
    rename: (from, to) => inner.rename(from, to),
    remove: (path) => inner.remove(path),
    removeDir: (path) => inner.removeDir(path),
    syncDir(dir) {
      inner.syncDir(dir);
      counts.syncs++;
    },
    link: (from, to) => inner.link(from, to),
    lock: (path) => inner.lock(path),
  };
  return { fs, counts };
}

// ------------------------------------------------------------------------------------------------
// Cases

/** One layout or engine to measure. */
interface Case {
  name: string;
  what: string;
  kind: "sensor" | "bucket" | "partitions" | "peer";
  /** ZoneTree open options (tuning only). */
  tree?: Record<string, unknown>;
  /** Partition bucket (kind "partitions"). */
  bucket?: "hour" | "day";
  /** Peer driver module under bench/peers/drivers (kind "peer"). */
  driver?: string;
  /** Peer keys with the hour number in front: u32be(hour) ++ the sensor-first bytes. */
  bucketKeys?: boolean;
}

const M100K = { mutableSegmentMaxItemCount: 100_000 };
const PARTS_100K = { multipartMinItemCount: 50_000, multipartMaxItemCount: 100_000 };
const PARTS_20K = { multipartMinItemCount: 10_000, multipartMaxItemCount: 20_000 };
const SENSOR = "sensor:<str>:ts:<u64be>";
const BUCKET = "bucket:<u32be>:sensor:<str>:ts:<u64be>";

const CASES: Case[] = [
  { name: "sensor-default", kind: "sensor", what: `${SENSOR}, defaults` },
  {
    name: "sensor-m1M",
    kind: "sensor",
    tree: { mutableSegmentMaxBytes: 256 * 2 ** 20 },
    what: "same, mutableSegmentMaxBytes 256 MiB (so 1M records fit)",
  },
  { name: "sensor-m100k", kind: "sensor", tree: M100K, what: "same, mutable 100k" },
  {
    name: "sensor-m100k-single",
    kind: "sensor",
    tree: { ...M100K, diskSegmentMode: "single" },
    what: 'same, mutable 100k, diskSegmentMode "single"',
  },
  {
    name: "sensor-m100k-parts100k",
    kind: "sensor",
    tree: { ...M100K, ...PARTS_100K },
    what: "same, mutable 100k, parts 50k–100k",
  },
  {
    name: "hour-partitions-m100k",
    kind: "partitions",
    bucket: "hour",
    tree: M100K,
    what:
      `${SENSOR} in a PartitionedTree by hour, mutable 100k, an hour sealed when the next begins`,
  },
  {
    name: "day-partitions-m100k",
    kind: "partitions",
    bucket: "day",
    tree: M100K,
    what: "same by day, mutable 100k",
  },
  { name: "bucket-default", kind: "bucket", what: `${BUCKET} (hour number), defaults` },
  { name: "bucket-m100k", kind: "bucket", tree: M100K, what: "same, mutable 100k" },
  {
    name: "bucket-m100k-parts100k",
    kind: "bucket",
    tree: { ...M100K, ...PARTS_100K },
    what: "same, mutable 100k, parts 50k–100k",
  },
  {
    name: "bucket-m100k-parts20k",
    kind: "bucket",
    tree: { ...M100K, ...PARTS_20K },
    what: "same, mutable 100k, parts 10k–20k",
  },
  { name: "lmdb", kind: "peer", driver: "lmdb.ts", what: "lmdb-js (noSync), sensor-first bytes" },
  {
    name: "classic-level",
    kind: "peer",
    driver: "classic_level.ts",
    what: "classic-level (sync: false), sensor-first bytes",
  },
  {
    name: "sqlite",
    kind: "peer",
    driver: "sqlite.ts",
    what: "bun:sqlite (WAL, synchronous NORMAL), sensor-first bytes",
  },
  {
    name: "lmdb-bucket",
    kind: "peer",
    driver: "lmdb.ts",
    bucketKeys: true,
    what: "lmdb-js, bucket-first bytes",
  },
  {
    name: "classic-level-bucket",
    kind: "peer",
    driver: "classic_level.ts",
    bucketKeys: true,
    what: "classic-level, bucket-first bytes",
  },
  {
    name: "sqlite-bucket",
    kind: "peer",
    driver: "sqlite.ts",
    bucketKeys: true,
    what: "bun:sqlite, bucket-first bytes",
  },
];

/** What one child measured. */
interface Measured {
  case: string;
  engine: string;
  version: string;
  records: number;
  userBytes: number;
  /** ZoneTree: bytes counted by the wrapper, by kind. */
  counted?: Record<FileKind, number>;
  countedSyncs?: number;
  merges?: number;
  carriedParts?: number;
  /** /proc/self/io deltas from before the ingest to after close. */
  wchar: number;
  dirtied: number;
  /** Seconds of the ingest loop; seconds until everything was in disk segments and closed. */
  ingestSeconds: number;
  totalSeconds: number;
  /** Latest-100 queries per second; for partitions also through `PartitionedTree.range`. */
  latestPerSecond: number;
  latestMergedPerSecond?: number;
  /** Apparent size of the closed store's files (ZoneTree: includes WAL kept for the change feed). */
  diskBytes: number;
}

// ------------------------------------------------------------------------------------------------
// Child: one case, one process

const HOUR_MS = 3_600_000;
const LATEST = 100;

function readIo(): { wchar: number; dirtied: number } {
  const text = readFileSync("/proc/self/io", "utf8");
  const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, "m").exec(text)![1]);
  return {
    wchar: field("wchar"),
    dirtied: field("write_bytes") - field("cancelled_write_bytes"),
  };
}

/** Resolves after the event loop has run once (timers included), as data arriving would allow. */
function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A tree's in-memory segments forced into its disk segment; background merges awaited first. */
async function mergeEverything(tree: ZoneTree): Promise<void> {
  tree.maintenance.moveMutableSegmentForward();
  for (let i = 0; i < 1000 && tree.stats().readOnlySegmentsCount > 0; i++) {
    await tree.maintenance.merge();
  }
  if (tree.stats().readOnlySegmentsCount > 0) throw new Error(`${tree}: merges never drained`);
}

interface Workload {
  sensors: number;
  readings: number;
  queries: number;
}

async function runChild(c: Case, w: Workload): Promise<Measured> {
  const sensorIds = Array.from({ length: w.sensors }, (_, s) => data.sensorId(s));
  const batches = data.tsData(w.sensors, w.readings, 0x5eed + 2); // the peers' data and seed
  let userBytes = 0;
  for (const b of batches) for (const [k, v] of b) userBytes += k.length + v.length;
  const prng = new Prng(0x5eed + 4);
  const queryIds = Array.from({ length: w.queries }, () => sensorIds[prng.int(w.sensors)]);
  const lastTs = data.TS_BASE_MS + (w.readings - 1) * data.TS_STEP_MS;
  const expected = Math.min(LATEST, w.readings);
  const dir = mkdtempSync(join(tmpdir(), `zt-wa-${c.name}-`));
  try {
    const common = { case: c.name, records: w.sensors * w.readings, userBytes };
    if (c.kind === "peer") {
      return { ...common, ...await runPeer(c, dir, batches, queryIds, lastTs, expected) };
    }
    // ZoneTree: the same readings as typed keys, batches built before the timer.
    const values = batches.map((b) => b.map(([, v]) => v));
    const opsOf = c.kind === "bucket"
      ? (r: number, ts: number) =>
        values[r].map((value, s) => ({ put: [Math.floor(ts / HOUR_MS), sensorIds[s], ts], value }))
      : (r: number, ts: number) =>
        values[r].map((value, s) => ({ put: [sensorIds[s], ts], value }));
    const ops = batches.map((_, r) => opsOf(r, data.TS_BASE_MS + r * data.TS_STEP_MS));
    batches.length = 0;
    const m = await runZoneTree(c, dir, ops, queryIds, lastTs, expected);
    return { ...common, engine: "zonetree", ...m };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

type ZtResult = Omit<Measured, "case" | "records" | "userBytes" | "engine">;

async function runZoneTree(
  c: Case,
  dir: string,
  ops: { put: unknown[]; value: Uint8Array }[][],
  queryIds: string[],
  lastTs: number,
  expected: number,
): Promise<ZtResult> {
  const version: string = JSON.parse(
    readFileSync(join(import.meta.dir, "..", "package.json"), "utf8"),
  ).version;
  const keyspace = defineKeyspace({
    key: c.kind === "bucket" ? "bucket:<u32be>:sensor:<str>:ts:<u64be>" : "sensor:<str>:ts:<u64be>",
    value: "bytes",
  });
  // --fs local: the default provider (the engine may treat it differently, e.g. merge in a
  // worker), counted by wchar only.
  const counting = args.fs !== "local";
  const { fs, counts } = counting
    ? countingFileSystem(localFileSystem())
    : { fs: localFileSystem(), counts: undefined };
  let merges = 0;
  let carriedParts = 0;
  // deno-lint-ignore no-explicit-any
  const watch = (t: any) =>
    t.events.on("disk-segment-created", (e: { carriedParts: number }) => {
      merges++;
      carriedParts += e.carriedParts;
    });
  const treeOptions = { ...c.tree };
  Bun.gc(true);
  const io0 = readIo();
  const t0 = performance.now();
  let ingestSeconds: number;
  if (c.kind === "partitions") {
    // deno-lint-ignore no-explicit-any
    const pt: any = await PartitionedTree.open({
      dir,
      keyspace,
      fs,
      partitionBy: { field: "ts", bucket: c.bucket! },
      treeOptions,
    });
    const seen = new Set<string>();
    let current: string | undefined;
    for (let r = 0; r < ops.length; r++) {
      await pt.batch(ops[r]);
      // A bucket that has ended takes no more writes (readings arrive in time order): seal it,
      // so its memory is freed now and it is merged once, in the background.
      const name = pt.partitionOf(ops[r][0].put);
      if (name !== current) {
        if (current !== undefined) pt.partition(current).maintenance.moveMutableSegmentForward();
        current = name;
      }
      if (!seen.has(name)) {
        seen.add(name);
        watch(pt.partition(name));
      }
      await turn();
    }
    ingestSeconds = (performance.now() - t0) / 1000;
    for (const name of pt.partitions()) await mergeEverything(pt.partition(name));
    await pt.close();
  } else {
    const tree = await ZoneTree.open({ dir, keyspace, fs, ...treeOptions });
    watch(tree);
    for (let r = 0; r < ops.length; r++) {
      // deno-lint-ignore no-explicit-any
      tree.batch(ops[r] as any);
      await turn();
    }
    ingestSeconds = (performance.now() - t0) / 1000;
    await mergeEverything(tree as unknown as ZoneTree);
    await tree.close();
  }
  const totalSeconds = (performance.now() - t0) / 1000;
  const io1 = readIo();
  const diskBytes = dirBytes(dir);
  ops.length = 0;
  const queries = await zoneTreeQueries(c, dir, keyspace, queryIds, lastTs, expected);
  return {
    version,
    counted: counts ? { ...counts.bytes } : undefined,
    countedSyncs: counts?.syncs,
    merges,
    carriedParts,
    wchar: io1.wchar - io0.wchar,
    dirtied: io1.dirtied - io0.dirtied,
    ingestSeconds,
    totalSeconds,
    ...queries,
    diskBytes,
  };
}

/**
 * Times `query` over every id (after a warm-up), checking each count, three times; the median
 * rate in queries per second (one pass takes well under a second, so a busy neighbour can halve
 * a single pass).
 */
async function timeQueries(
  name: string,
  ids: string[],
  expected: number,
  query: (id: string) => number | Promise<number>,
): Promise<number> {
  for (const id of ids.slice(0, 50)) await query(id); // warm-up
  const rates: number[] = [];
  for (let pass = 0; pass < 3; pass++) {
    Bun.gc(true);
    const t0 = performance.now();
    for (const id of ids) {
      const n = await query(id);
      if (n !== expected) throw new Error(`${name}: latest-100 of ${id} saw ${n}, not ${expected}`);
    }
    rates.push(ids.length / ((performance.now() - t0) / 1000));
  }
  return median(rates);
}

/** The hour numbers of the readings, newest first. */
function bucketsNewestFirst(lastTs: number): number[] {
  const out: number[] = [];
  for (let b = Math.floor(lastTs / HOUR_MS); b >= Math.floor(data.TS_BASE_MS / HOUR_MS); b--) {
    out.push(b);
  }
  return out;
}

/**
 * Latest-100 of each query sensor on the reopened store, in queries per second. Bucketed
 * layouts read the newest bucket first until 100 readings are found (what a user of the layout
 * writes); partitions are also read through `PartitionedTree.range`, which opens a range in
 * every partition and merges them.
 */
async function zoneTreeQueries(
  c: Case,
  dir: string,
  // deno-lint-ignore no-explicit-any
  keyspace: any,
  ids: string[],
  lastTs: number,
  expected: number,
): Promise<{ latestPerSecond: number; latestMergedPerSecond?: number }> {
  const buckets = bucketsNewestFirst(lastTs);
  if (c.kind === "partitions") {
    const pt = await PartitionedTree.open({
      dir,
      keyspace,
      partitionBy: { field: "ts", bucket: c.bucket! },
    });
    try {
      const names = pt.partitions().reverse();
      const walk = (id: string) => {
        let n = 0;
        for (let i = 0; i < names.length && n < LATEST; i++) {
          n += count(
            pt.partition(names[i])!.range({ prefix: [id], reverse: true, limit: LATEST - n }),
          );
        }
        return n;
      };
      const merged = (id: string) =>
        count(pt.range({ prefix: [id], reverse: true, limit: LATEST }));
      return {
        latestPerSecond: await timeQueries(c.name, ids, expected, walk),
        latestMergedPerSecond: await timeQueries(c.name, ids, expected, merged),
      };
    } finally {
      await pt.close();
    }
  }
  const tree = await ZoneTree.open({ dir, keyspace });
  try {
    const query = c.kind === "bucket"
      ? (id: string) => {
        let n = 0;
        for (let i = 0; i < buckets.length && n < LATEST; i++) {
          n += count(tree.range({ prefix: [buckets[i], id], reverse: true, limit: LATEST - n }));
        }
        return n;
      }
      : (id: string) => count(tree.range({ prefix: [id], reverse: true, limit: LATEST }));
    return { latestPerSecond: await timeQueries(c.name, ids, expected, query) };
  } finally {
    await tree.close();
  }
}

function count(it: Iterable<unknown>): number {
  let n = 0;
  for (const _ of it) n++;
  return n;
}

/** `key` with the big-endian hour number of its timestamp (its last 8 bytes) in front. */
function withBucket(key: data.Bytes): data.Bytes {
  const v = new DataView(key.buffer, key.byteOffset, key.length);
  const ts = v.getUint32(key.length - 8) * 0x1_0000_0000 + v.getUint32(key.length - 4);
  return prefixBucket(Math.floor(ts / HOUR_MS), key);
}

function prefixBucket(bucket: number, key: data.Bytes): data.Bytes {
  const out = new Uint8Array(4 + key.length);
  new DataView(out.buffer).setUint32(0, bucket);
  out.set(key, 4);
  return out;
}

type PeerResult = Omit<Measured, "case" | "records" | "userBytes">;

async function runPeer(
  c: Case,
  dir: string,
  batches: data.Entry[][],
  ids: string[],
  lastTs: number,
  expected: number,
): Promise<PeerResult> {
  const mod = await import(`./peers/drivers/${c.driver}`);
  const d = mod.createDriver();
  if (c.bucketKeys) {
    for (const b of batches) for (const e of b) e[0] = withBucket(e[0]);
  }
  Bun.gc(true);
  const io0 = readIo();
  const t0 = performance.now();
  await d.open(dir, { durable: false });
  for (const batch of batches) {
    const r = d.putBatch(batch);
    if (r) await r;
    await turn();
  }
  if (d.settle) await d.settle();
  const ingestSeconds = (performance.now() - t0) / 1000;
  if (d.compact) await d.compact();
  await d.close();
  const totalSeconds = (performance.now() - t0) / 1000;
  const io1 = readIo();
  const diskBytes = dirBytes(dir);
  batches.length = 0;
  await d.open(dir, { durable: false });
  const range = async (gte: data.Bytes, lt: data.Bytes, limit: number) => {
    let n = 0;
    const r = d.range({ gte, lt, reverse: true, limit }, () => void n++);
    if (r) await r;
    return n;
  };
  const buckets = bucketsNewestFirst(lastTs);
  const query = c.bucketKeys
    ? async (id: string) => {
      const [lo, hi] = [data.tsKey(id), data.tsPrefixEnd(id)];
      let n = 0;
      for (let i = 0; i < buckets.length && n < LATEST; i++) {
        n += await range(prefixBucket(buckets[i], lo), prefixBucket(buckets[i], hi), LATEST - n);
      }
      return n;
    }
    : (id: string) => range(data.tsKey(id), data.tsPrefixEnd(id), LATEST);
  const latestPerSecond = await timeQueries(c.name, ids, expected, query);
  await d.close();
  return {
    engine: d.name,
    version: d.version,
    wchar: io1.wchar - io0.wchar,
    dirtied: io1.dirtied - io0.dirtied,
    ingestSeconds,
    totalSeconds,
    latestPerSecond,
    diskBytes,
  };
}

/** Apparent size of every file under `dir`. */
function dirBytes(dir: string): number {
  let total = 0;
  const walk = (d: string) => {
    for (const e of localFileSystem().list(d)) {
      const p = `${d}/${e}`;
      const st = localFileSystem().stat(p);
      if (st?.isDirectory) walk(p);
      else if (st) total += st.size;
    }
  };
  walk(dir);
  return total;
}

// ------------------------------------------------------------------------------------------------
// Parent: cases x runs in child processes, then the table

const { values: args } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    sensors: { type: "string", default: "1000" },
    readings: { type: "string", default: "1000" },
    queries: { type: "string", default: "1000" },
    cases: { type: "string", default: CASES.map((c) => c.name).join(",") },
    fs: { type: "string", default: "counting" },
    out: { type: "string" },
    list: { type: "boolean", default: false },
    child: { type: "string" }, // internal: case name; the result goes to --result
    result: { type: "string" },
  },
});

const workload: Workload = {
  sensors: Number(args.sensors),
  readings: Number(args.readings),
  queries: Number(args.queries),
};

async function main(): Promise<void> {
  if (args.list) {
    for (const c of CASES) console.log(`${c.name.padEnd(24)} ${c.what}`);
    return;
  }
  if (args.child) {
    const c = CASES.find((x) => x.name === args.child)!;
    writeFileSync(args.result!, JSON.stringify(await runChild(c, workload)));
    return;
  }
  if (args.fs !== "counting" && args.fs !== "local") fail(`--fs must be counting or local`);
  for (const [k, v] of Object.entries(workload)) {
    if (!Number.isInteger(v) || v < 1) fail(`--${k} must be a positive integer`);
  }
  const names = args.cases!.split(",").map((s) => s.trim()).filter(Boolean);
  for (const n of names) {
    if (!CASES.some((c) => c.name === n)) fail(`unknown case ${n} (see --list)`);
  }
  const runs = Math.max(1, Number(args.runs));
  const results: Measured[] = [];
  const loads: number[] = [];
  const started = new Date();
  for (let run = 1; run <= runs; run++) {
    for (const name of names) {
      const out = join(tmpdir(), `zt-wa-${process.pid}-${name}-${run}.json`);
      loads.push(loadavg()[0]);
      const t0 = performance.now();
      const child = spawnSync(process.execPath, [
        import.meta.path,
        "--child",
        name,
        "--result",
        out,
        "--sensors",
        String(workload.sensors),
        "--readings",
        String(workload.readings),
        "--queries",
        String(workload.queries),
        "--fs",
        args.fs!,
      ], { stdio: ["ignore", "inherit", "inherit"] });
      loads.push(loadavg()[0]);
      if (child.status !== 0) {
        console.error(`run ${run}: ${name} failed (exit ${child.status}); left out`);
        continue;
      }
      const m: Measured = JSON.parse(readFileSync(out, "utf8"));
      rmSync(out, { force: true });
      results.push(m);
      console.error(
        `run ${run}/${runs} ${name.padEnd(24)} WA ${wa(m).toFixed(2)}  wchar ${
          (m.wchar / m.userBytes).toFixed(2)
        }  ingest ${fmtRate(m.records / m.ingestSeconds)}/s  latest-100 ${
          fmtRate(m.latestPerSecond)
        }/s  (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
      );
    }
  }
  const meta = {
    date: started.toISOString(),
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    bun: Bun.version,
    loadMin: Math.min(...loads),
    loadMax: Math.max(...loads),
    minutes: (Date.now() - started.getTime()) / 60_000,
    command: `bun bench/write_amp.ts ${process.argv.slice(2).join(" ")}`.trim(),
    workload,
  };
  const table = render(names, results, runs, meta);
  const stamp = started.toISOString().replace(/[:.]/g, "-");
  const md = args.out ?? join(import.meta.dir, "results", `write-amp-${stamp}.md`);
  mkdirSync(join(md, ".."), { recursive: true });
  writeFileSync(md, table);
  writeFileSync(md.replace(/\.md$/, "") + ".json", JSON.stringify({ meta, results }, null, 1));
  console.log(table);
  console.error(`written: ${md} and .json`);
}

function fail(message: string): never {
  console.error(`write_amp.ts: ${message}`);
  process.exit(2);
}

/** Write amplification: the wrapper's count for ZoneTree, wchar for the peers. */
function wa(m: Measured): number {
  const written = m.counted ? KINDS.reduce((s, k) => s + m.counted![k], 0) : m.wchar;
  return written / m.userBytes;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** `median (min–max)` of `xs`, each through `f`. */
function cell(xs: number[], f: (x: number) => string): string {
  if (xs.length === 0) return "-";
  if (xs.length === 1) return f(xs[0]);
  return `**${f(median(xs))}** (${f(Math.min(...xs))}–${f(Math.max(...xs))})`;
}

function fmtRate(x: number): string {
  return x >= 1e6
    ? `${(x / 1e6).toFixed(2)}M`
    : x >= 1e3
    ? `${(x / 1e3).toFixed(0)}k`
    : x.toFixed(0);
}

const x2 = (x: number) => x.toFixed(2);

function render(
  names: string[],
  results: Measured[],
  runs: number,
  // deno-lint-ignore no-explicit-any
  meta: any,
): string {
  const head = [
    "case",
    "layout and options",
    "WA",
    "WAL",
    "parts",
    "merges",
    "wchar / user",
    "dirtied / user",
    "ingest (rec/s)",
    "latest-100 (q/s)",
    "disk (MB)",
  ];
  const zoneTreeVersion = results.find((r) => r.engine === "zonetree")?.version ?? "-";
  const lines = [
    `Write amplification, ts-ingest ${meta.workload.sensors} sensors x ${meta.workload.readings}` +
    ` readings, ${
      meta.date.slice(0, 10)
    }: ${meta.cpu}, ${meta.cores} cores, ${meta.memoryGiB} GiB,` +
    ` bun ${meta.bun}, zonetree ${zoneTreeVersion}; median of ${runs} run(s) (min–max);` +
    ` 1-minute load average ${meta.loadMin.toFixed(1)}–${meta.loadMax.toFixed(1)};` +
    ` ${meta.minutes.toFixed(0)} minutes.`,
    `Command: \`${meta.command}\``,
    "",
    `| ${head.join(" | ")} |`,
    `|${head.map((_, i) => (i < 2 ? "---" : "---:")).join("|")}|`,
  ];
  for (const name of names) {
    const rs = results.filter((r) => r.case === name);
    if (rs.length === 0) continue;
    const c = CASES.find((x) => x.name === name)!;
    const zt = rs[0].counted !== undefined; // ZoneTree through the counting wrapper
    const ratio = (f: (r: Measured) => number) => cell(rs.map((r) => f(r) / r.userBytes), x2);
    let latest = cell(rs.map((r) => r.latestPerSecond), fmtRate);
    if (rs[0].latestMergedPerSecond !== undefined) {
      latest += `; range(): ${cell(rs.map((r) => r.latestMergedPerSecond!), fmtRate)}`;
    }
    const cells = [
      name,
      rs[0].engine === "zonetree" ? c.what : `${c.what}, ${rs[0].version}`,
      cell(rs.map(wa), x2),
      zt ? ratio((r) => r.counted!.wal) : "-",
      zt ? ratio((r) => r.counted!.part + r.counted!.descriptor) : "-",
      rs[0].merges !== undefined ? cell(rs.map((r) => r.merges!), String) : "-",
      ratio((r) => r.wchar),
      ratio((r) => r.dirtied),
      cell(rs.map((r) => r.records / r.ingestSeconds), fmtRate),
      latest,
      cell(rs.map((r) => r.diskBytes / 1e6), (x) => x.toFixed(1)),
    ];
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return lines.join("\n") + "\n";
}

if (import.meta.main) await main();
