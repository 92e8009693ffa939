/**
 * What the crash child (`crash_child.ts`) and the crash tests share: the keyspaces, the value
 * format (every value names the write that made it), the tree options, the stdout line protocol,
 * the oracle that judges a reopened tree against the child's acknowledgements, and the on-disk
 * checks (no orphan file, every segment and WAL verifies). Runtime-neutral (node: modules only)
 * so the Deno cross-runtime test can use it too.
 *
 * Line protocol (one line per event, written with a synchronous write(2) before or after the call
 * it describes, so a SIGKILL can only lose lines about calls that had not returned yet):
 *
 *   R <lastOpIndex>                  the tree is open
 *   I <wid> U|A|D|T <key>            about to call upsert | tryAdd | forceDelete | tryDelete
 *   I <wid> L|P <key>                about to upsert with a TTL (L: live, P: already expired)
 *   I <wid> R <lo> <hi>              about to deleteRange keys lo <= k < hi
 *   I <wid> B|X <marker> <key>:p|d,... about to call batch | commit a transaction (marker last)
 *   A <wid> <opIndex>|-              the call returned (- : tryAdd/tryDelete wrote nothing)
 *   F <wid>                          a flush() covering every write up to <wid> resolved
 *   M <what>                         a merge started
 *   N <durationMs>                   a merge ended
 *   G <stats>                        ("merge" variant) the large merge was started
 *   k <dir> <wid>                    about to back up into <dir>: it must hold writes <= wid
 *   K <dir> <wid>                    the backup resolved
 *   T <message>                      the open reported a torn WAL tail (expected after a kill)
 *   E <message>                      anything else went wrong: the test fails
 *
 * @module
 */
import { BlockCache } from "../../src/disk/block_cache.ts";
import { filesOf, openRecordedSegment } from "../../src/engine/disk_set.ts";
import { readMetadata } from "../../src/engine/metadata.ts";
import {
  parseRetainedWalFileName,
  parseSegmentFileName,
  parseWalFileName,
  retainedWalFileName,
} from "../../src/engine/file_names.ts";
import type { FileSystem } from "../../src/fs/file_system.ts";
import { localFileSystem } from "../../src/fs/local_file_system.ts";
import { replayWal } from "../../src/wal/wal_reader.ts";
import { defineKeyspace, type OpenOptions } from "../../mod.ts";

/** Record keys are 0 .. KEY_SPACE-1; batch marker keys start at MARKER_BASE. */
export const KEY_SPACE = 5000;
export const MARKER_BASE = 10_000_000;

/**
 * Variable keys (`k<n>`), fixed keys (`<u32be>`), or a group and a number (`g<n mod 7>`, n):
 * in-memory segments kept as runs per group, turned into B+trees by keys in no order (see
 * `memory/run_tree.ts`); all with variable values.
 */
export const KEYSPACES = {
  str: defineKeyspace({ name: "crash-str", key: "k:<str>", value: "utf8" }),
  u32: defineKeyspace({ name: "crash-u32", key: "k:<u32be>", value: "utf8" }),
  grp: defineKeyspace({ name: "crash-grp", key: "g:<str>:n:<u32be>", value: "utf8" }),
};
export type LayoutName = keyof typeof KEYSPACES;

/** The key value the keyspace takes for key number `n`. */
export function keyOf(layout: LayoutName, n: number): string | number | [string, number] {
  return layout === "str" ? `n${n}` : layout === "grp" ? [`g${n % 7}`, n] : n;
}

/** Key number of a key read back. */
export function numberOfKey(layout: LayoutName, key: unknown): number {
  if (layout === "u32") return key as number;
  if (layout === "grp") {
    const { g, n } = key as { g: string; n: number };
    if (g !== `g${n % 7}`) throw new Error(`unexpected key ${JSON.stringify(key)}`);
    return n;
  }
  const s = key as string;
  if (!s.startsWith("n")) throw new Error(`unexpected key ${JSON.stringify(s)}`);
  return Number(s.slice(1));
}

/** Padding length of the value of write `wid`: values vary in size, and a mixup shows. */
function padOf(wid: number): number {
  return Math.imul(wid, 0x9e3779b1) >>> 25; // 0 .. 127
}

/** The value write `wid` stores. */
export function valueOf(wid: number): string {
  return `${wid}|${"x".repeat(padOf(wid))}`;
}

/** The write id a stored value names; throws if the value is not one that any write stores. */
export function widOfValue(value: unknown): number {
  if (typeof value !== "string") throw new Error(`value ${String(value)} is not a string`);
  const bar = value.indexOf("|");
  const wid = Number(value.slice(0, bar));
  if (bar < 1 || !Number.isInteger(wid) || value !== valueOf(wid)) {
    throw new Error(`value ${JSON.stringify(value.slice(0, 40))} was never written (wrong data)`);
  }
  return wid;
}

/** Small segments, so that moves, merges, multipart parts and bottom segments all happen. */
export const TREE_TUNING = {
  mutableSegmentMaxItemCount: 200,
  diskSegmentMaxItemCount: 600,
  multipartMinItemCount: 100,
  multipartMaxItemCount: 500,
  blockSizeBytes: 1024,
  sparseStep: 16,
} satisfies Partial<OpenOptions>;

/** The settings of one child run (passed as JSON in argv[2]). */
export interface ChildConfig {
  dir: string;
  wal: "sync" | "sync-compressed" | "async-compressed";
  layout: LayoutName;
  maintenance: "auto" | "manual";
  seed: number;
  /** First write id of this run; ids are unique across the cycles of one directory. */
  widBase: number;
  /** First batch marker number of this run. */
  markerBase: number;
  /** "ops": the random op mix; "merge": a bulk load, then a large merge with writes going on. */
  variant: "ops" | "merge";
  /** Record keys are 0 .. keySpace-1 (default KEY_SPACE). */
  keySpace?: number;
  /** Overrides TREE_TUNING's (a large one lets the disk segment, and so merges, grow). */
  diskSegmentMaxItemCount?: number;
  /** The child SIGKILLs itself before this step (undefined: it runs until the parent kills it). */
  killAtStep?: number;
}

/** The tuning options of a child's tree (the parent reopens with the same). */
export function tuningOf(cfg: ChildConfig): typeof TREE_TUNING {
  return {
    ...TREE_TUNING,
    diskSegmentMaxItemCount: cfg.diskSegmentMaxItemCount ?? TREE_TUNING.diskSegmentMaxItemCount,
  };
}

// -----------------------------------------------------------------------------------------------
// The oracle

type Status = "durable" | "acked" | "unknown" | "noop";

interface Write {
  wid: number;
  /** "put" stores valueOf(wid); "del" leaves the key absent. */
  kind: "put" | "del";
  status: Status;
  /** The batch's write id when the write is part of a batch. */
  batch?: number;
}

interface BatchInfo {
  wid: number;
  marker: number;
  keys: number[];
}

/** What one cycle's stdout said. */
export interface CycleLog {
  openedAt: number;
  acked: number;
  durable: number;
  issued: number;
  maxAckedOpIndex: number;
  torn: string[];
  merges: number;
  mergesEnded: number;
  /** Merges of bottom segments started. */
  bottomMerges: number;
  bigMerge: boolean;
  /** Backups started: the tree as of every write up to `wid`; `complete` once resolved. */
  backups: { dir: string; wid: number; complete: boolean }[];
}

/**
 * The oracle: per key, the writes issued in order since the last verified state (the baseline).
 * A reopened tree passes when every key shows the result of a write at or after its last durable
 * write, batches are all or nothing, and no value appears that no write to that key stored.
 */
export class Oracle {
  /** Per key number: the baseline (index 0, durable) and this cycle's writes. */
  readonly history = new Map<number, Write[]>();
  readonly batches = new Map<number, BatchInfo>();
  /** Write ids of batches whose marker is present (decided while checking). */
  totalDurableChecked = 0;
  maxOpIndexEver = 0;
  /** This cycle's writes that returned an opIndex (the last one of a batch): write id → opIndex. */
  readonly ackedOpIndex = new Map<number, number>();

  #writes(key: number): Write[] {
    let h = this.history.get(key);
    if (!h) {
      h = [{ wid: -1, kind: "del", status: "durable" }];
      this.history.set(key, h);
    }
    return h;
  }

  /** Reads one cycle's stdout (a line cut by the kill is dropped) and records its writes. */
  absorb(stdout: string, syncMode: boolean): CycleLog {
    const lines = stdout.split("\n");
    lines.pop(); // "" after the last newline, or a line the kill cut short
    const log: CycleLog = {
      openedAt: -1,
      acked: 0,
      durable: 0,
      issued: 0,
      maxAckedOpIndex: 0,
      torn: [],
      merges: 0,
      mergesEnded: 0,
      bottomMerges: 0,
      bigMerge: false,
      backups: [],
    };
    const byWid = new Map<number, Write[]>();
    let lastOpIndex = 0;
    let flushedWid = -1;
    for (const line of lines) {
      const [tag, a, b, c, d] = line.split(" ");
      if (tag === "R") log.openedAt = Number(a);
      else if (tag === "I") {
        const wid = Number(a);
        log.issued++;
        const ws: Write[] = [];
        if (b === "B" || b === "X") {
          const info: BatchInfo = { wid, marker: Number(c), keys: [] };
          for (const item of d.split(",")) {
            const [k, kind] = item.split(":");
            info.keys.push(Number(k));
            ws.push(
              this.#push(Number(k), {
                wid,
                kind: kind === "p" ? "put" : "del",
                status: "unknown",
                batch: wid,
              }),
            );
          }
          ws.push(this.#push(info.marker, { wid, kind: "put", status: "unknown", batch: wid }));
          this.batches.set(wid, info);
        } else if (b === "R") {
          // Every key that may be present is in the history (the baseline holds every live key).
          const [lo, hi] = [Number(c), Number(d)];
          for (const key of [...this.history.keys()]) {
            if (key >= lo && key < hi) {
              ws.push(this.#push(key, { wid, kind: "del", status: "unknown" }));
            }
          }
        } else {
          const kind = b === "U" || b === "A" || b === "L" ? "put" : "del";
          ws.push(this.#push(Number(c), { wid, kind, status: "unknown" }));
        }
        byWid.set(wid, ws);
      } else if (tag === "A") {
        const ws = byWid.get(Number(a));
        if (!ws) throw new Error(`ack of write ${a} that was never issued`);
        const noop = b === "-";
        if (!noop) {
          const opIndex = Number(b);
          if (!(opIndex > lastOpIndex)) {
            throw new Error(`opIndex ${opIndex} not above ${lastOpIndex} (write ${a})`);
          }
          lastOpIndex = opIndex;
          log.maxAckedOpIndex = opIndex;
        }
        for (const w of ws) w.status = noop ? "noop" : syncMode ? "durable" : "acked";
        if (!noop) this.ackedOpIndex.set(Number(a), Number(b));
        log.acked++;
      } else if (tag === "F") flushedWid = Number(a);
      else if (tag === "T") log.torn.push(line);
      else if (tag === "M") {
        log.merges++;
        if (line.includes("bottomSegments")) log.bottomMerges++;
      } else if (tag === "N") log.mergesEnded++;
      else if (tag === "G") log.bigMerge = true;
      else if (tag === "k") log.backups.push({ dir: a, wid: Number(b), complete: false });
      else if (tag === "K") log.backups.at(-1)!.complete = true;
      else if (tag === "E") throw new Error(`child reported: ${line}`);
      else throw new Error(`unexpected child line ${JSON.stringify(line)}`);
    }
    if (!syncMode) {
      for (const [wid, ws] of byWid) {
        if (wid <= flushedWid) {
          for (const w of ws) if (w.status === "acked") w.status = "durable";
        }
      }
    }
    for (const ws of byWid.values()) if (ws[0]?.status === "durable") log.durable++;
    if (log.openedAt < 0) throw new Error("the child never opened the tree");
    this.maxOpIndexEver = Math.max(this.maxOpIndexEver, log.maxAckedOpIndex);
    return log;
  }

  #push(key: number, w: Write): Write {
    this.#writes(key).push(w);
    return w;
  }

  /** The content this cycle started from (the verified baseline): key number → write id. */
  baseline(): Map<number, number> {
    const out = new Map<number, number>();
    for (const [key, h] of this.history) if (h[0].kind === "put") out.set(key, h[0].wid);
    return out;
  }

  /** Whether write `wid` of this cycle wrote (or may have written) key `key` as `kind`. */
  wrote(wid: number, key: number, kind: "put" | "del"): boolean {
    return this.history.get(key)?.some((w, i) => i > 0 && w.wid === wid && w.kind === kind) ??
      false;
  }

  /** Write ids of this cycle that are durable, with the opIndex they returned. */
  durableWrites(): [number, number][] {
    const out: [number, number][] = [];
    for (const h of this.history.values()) {
      for (let i = 1; i < h.length; i++) {
        const op = this.ackedOpIndex.get(h[i].wid);
        if (h[i].status === "durable" && op !== undefined) out.push([h[i].wid, op]);
      }
    }
    return out;
  }

  /**
   * The exact content after every write up to `wid` (all of them returned, so each one's outcome
   * is known): key number → write id. For checking backups; call before `check`.
   */
  stateAt(wid: number): Map<number, number> {
    const out = new Map<number, number>();
    for (const [key, h] of this.history) {
      let last = h[0];
      for (const w of h) {
        if (w.wid > wid && w !== h[0]) break;
        if (w.status === "unknown") {
          throw new Error(`write ${w.wid} before the backup at ${wid} never returned`);
        }
        if (w.status !== "noop") last = w;
      }
      if (last.kind === "put") out.set(key, last.wid);
    }
    return out;
  }

  /**
   * Checks `observed` (key number → stored write id, or absent) against the history, then makes
   * it the new baseline. Returns the number of durable writes whose survival was checked.
   * Throws an Error saying which key and write broke which promise.
   */
  check(observed: Map<number, number>): number {
    for (const key of observed.keys()) {
      if (!this.history.has(key)) throw new Error(`key ${key} is present but was never written`);
    }
    // A batch is applied when its marker is present.
    const applied = new Map<number, boolean>();
    for (const [wid, info] of this.batches) applied.set(wid, observed.get(info.marker) === wid);
    // What survives is a prefix of the writes (the child issues them one at a time, in write id
    // order): every write that returned before the newest one whose value is seen (a put, or an
    // applied batch's marker) counts as durable too, in every WAL mode.
    let horizon = -1;
    for (const [key, h] of this.history) {
      const seen = observed.get(key);
      if (seen === undefined || seen <= horizon) continue;
      for (let i = 1; i < h.length; i++) {
        if (h[i].wid === seen && h[i].kind === "put") horizon = seen;
      }
    }
    let checked = 0;
    for (const [key, h] of this.history) {
      const seen = observed.get(key) ?? -1;
      let from = 0;
      for (let i = 0; i < h.length; i++) {
        if (h[i].status === "durable") from = i;
        if (i > 0 && h[i].wid <= horizon && h[i].status === "acked") from = i;
        if (h[i].batch !== undefined && applied.get(h[i].batch!)) from = Math.max(from, i);
      }
      if (from > 0) checked++;
      let ok = false;
      for (let i = from; i < h.length && !ok; i++) {
        const w = h[i];
        if (w.status === "noop") continue;
        if (w.batch !== undefined && !applied.get(w.batch)) continue;
        ok = w.kind === "put" ? seen === w.wid : seen === -1;
      }
      if (!ok) {
        const tail = h.slice(Math.max(0, from - 2)).map((w) =>
          `${w.kind}#${w.wid}:${w.status}${w.batch !== undefined ? `@batch${w.batch}` : ""}`
        );
        const what = seen === -1 ? "absent" : `write ${seen}`;
        throw new Error(
          `key ${key} shows ${what}; last durable at history[${from}]; history ${tail.join(" ")}`,
        );
      }
    }
    for (const [wid, info] of this.batches) {
      if (!applied.get(wid)) continue;
      for (const k of info.keys) {
        const h = this.history.get(k)!;
        const i = h.findIndex((w) => w.batch === wid);
        // Applied: the key shows this batch's op or a write issued after it (checked above).
        if (i < 0) throw new Error(`batch ${wid} lost its op on key ${k}`);
      }
    }
    this.totalDurableChecked += checked;
    // The observed state is the next cycle's baseline (it was verified and the tree closed).
    this.history.clear();
    this.batches.clear();
    this.ackedOpIndex.clear();
    for (const [key, wid] of observed) {
      this.history.set(key, [{ wid, kind: "put", status: "durable" }]);
    }
    return checked;
  }
}

// -----------------------------------------------------------------------------------------------
// On-disk checks

/**
 * Checks a closed or freshly opened data directory: every `seg-*` file is named by the metadata
 * (no orphan) and every file the metadata names exists; every WAL is newer than what merges
 * persisted and replays without corruption; every disk segment verifies (every checksum, every
 * structure field, key order). Returns what it looked at.
 */
export function checkDirectory(
  dir: string,
  layout: LayoutName,
  options: { backup?: boolean; fs?: FileSystem } = {},
): { segments: number; files: number; wals: number } {
  const fs = options.fs ?? localFileSystem();
  const meta = readMetadata(fs, dir);
  if (!meta) throw new Error(`no metadata in ${dir}`);
  const records = [...(meta.diskSegment ? [meta.diskSegment] : []), ...meta.bottomSegments];
  const referenced = new Set(records.flatMap(filesOf));
  const names = fs.list(dir);
  let wals = 0;
  const retained = new Set((meta.changeFeedFiles ?? []).map((f) => f.id));
  for (const name of names) {
    // Merged WALs kept for the change feed: exactly the ones the metadata lists, each replayable.
    const retainedId = parseRetainedWalFileName(name);
    if (retainedId !== undefined) {
      if (!retained.has(retainedId)) {
        throw new Error(`orphan retained WAL ${name}: the metadata does not list it`);
      }
      replayWal(fs, `${dir}/${name}`, () => {});
      continue;
    }
    const walId = parseWalFileName(name);
    if (walId !== undefined) {
      if (walId <= meta.persistedSegmentId) {
        throw new Error(`${name} is obsolete (persisted up to ${meta.persistedSegmentId})`);
      }
      replayWal(fs, `${dir}/${name}`, () => {});
      wals++;
      continue;
    }
    if (parseSegmentFileName(name) !== undefined && !referenced.has(name)) {
      throw new Error(
        `orphan file ${name}: the metadata names ${
          [...referenced].join(", ") || "no segment file"
        }`,
      );
    }
    if (!["meta", "lock"].includes(name) && parseSegmentFileName(name) === undefined) {
      throw new Error(`unexpected file ${name} in ${dir}`);
    }
  }
  for (const f of referenced) {
    if (!names.includes(f)) throw new Error(`the metadata names ${f}, which is missing`);
  }
  // A backup copies no retained WAL (its first writable open drops them from the list).
  for (const id of options.backup ? [] : retained) {
    const name = retainedWalFileName(id);
    if (!names.includes(name)) throw new Error(`the metadata lists ${name}, which is missing`);
  }
  const cache = new BlockCache(1 << 20);
  for (const r of records) {
    const seg = openRecordedSegment(fs, dir, r, KEYSPACES[layout].key.compare, cache);
    try {
      seg.verify();
      if (seg.recordCount !== r.recordCount) {
        throw new Error(
          `segment ${r.id}: ${seg.recordCount} records, metadata says ${r.recordCount}`,
        );
      }
    } finally {
      seg.close();
    }
  }
  return { segments: records.length, files: referenced.size, wals };
}
