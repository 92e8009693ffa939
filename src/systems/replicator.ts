/**
 * Replication on top of the change feed: a {@link Replicator} applies changes that carry their
 * source opIndex to a target tree so that repeated and out-of-order deliveries are idempotent
 * (per key, the newest source opIndex wins), and {@link replicate} follows a source tree's
 * `changes()` into a replicator, persisting its position so it can stop and restart anywhere.
 *
 * Where the state lives. The target is an ordinary tree of the source's keyspace (a read replica
 * that opens like any tree), so it cannot hold anything else. The per-key source opIndex, the
 * replicated range deletions, the position and a redo record live in a companion **state tree**
 * with its own keyspace, {@link replicaStateKeyspace} (`<kind:u8><key:bytes><n:u64be>`):
 *
 *   kind 0  VERSION   key = encoded target key, n = 0   value = source opIndex (f64 BE)
 *   kind 1  RANGE     key = range start, n = opIndex    value = range end (empty: no end)
 *   kind 2  POSITION  key = empty, n = 0                value = source opIndex (f64 BE)
 *   kind 3  PENDING   key = empty, n = 0                value = the target ops of one apply
 *
 * Atomicity across the two trees. One `apply` writes, in order: (1) one state batch with the new
 * versions, range records, position and the PENDING redo record, then flushes the state tree;
 * (2) one target batch with the data, then flushes the target; (3) deletes PENDING. Opening a
 * replicator (and every apply) first re-applies a PENDING record left by a crash between (1) and
 * (3). Redoing is idempotent (the same puts and deletes, and nothing else writes the target
 * meanwhile), so after any crash the data and the versions agree: an apply is all or nothing.
 *
 * Invariants: only the replicator writes the target tree (users read it); every key in the target
 * has a VERSION entry; an entry is never lowered (deletes keep theirs, so an older put that
 * arrives late stays rejected); a range deletion at opIndex n deletes exactly the known keys in
 * it whose version is below n, and its RANGE record rejects later-arriving older writes into it.
 * The state grows with the number of distinct keys ever replicated and of range deletions.
 *
 * @module
 */
import { InvalidOptionError } from "../api/errors.ts";
import type { BatchOp, Change, ZoneTree } from "../api/zone_tree.ts";
import { defineKeyspace, type Keyspace } from "../keyspace/define_keyspace.ts";
import { compareBytes } from "../util/bytes.ts";
import { assert } from "../util/assert.ts";

/**
 * The keyspace of a replicator's state tree: open the state tree with it and pass that tree to
 * {@link Replicator.open} (see the {@link Replicator} example).
 */
export const replicaStateKeyspace: Keyspace<
  { kind: number; key: Uint8Array; n: bigint },
  Uint8Array,
  // deno-lint-ignore no-explicit-any
  any,
  // deno-lint-ignore no-explicit-any
  any
> = defineKeyspace({
  name: "zonetree-replica-state",
  key: "<kind:u8><key:bytes><n:u64be>",
  value: "bytes",
});

/** A tree opened with {@link replicaStateKeyspace}. */
export type ReplicaStateTree = ZoneTree<
  { kind: number; key: Uint8Array; n: bigint },
  Uint8Array,
  // deno-lint-ignore no-explicit-any
  any,
  // deno-lint-ignore no-explicit-any
  any
>;

const VERSION = 0;
const RANGE = 1;
const POSITION = 2;
const PENDING = 3;
const EMPTY = new Uint8Array(0);

/** What one {@link Replicator.apply} did. */
export interface ApplyResult {
  /** Changes that were newer than what the target had, and were written. */
  applied: number;
  /** Changes at or below the newest source opIndex already applied to their key (or range). */
  skipped: number;
  /** The stored position after the call. */
  position: number;
}

/** A target write, encoded. */
interface TargetOp {
  del: boolean;
  key: Uint8Array;
  value: Uint8Array;
  expiresAt: number;
}

interface RangeRecord {
  start: Uint8Array;
  end: Uint8Array;
  opIndex: number;
}

/**
 * Applies source changes to a target tree idempotently, newest source opIndex per key winning,
 * with its state in a companion tree (see the module comment).
 *
 * @example Late and repeated deliveries are harmless
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   defineKeyspace,
 *   memoryFileSystem,
 *   replicaStateKeyspace,
 *   Replicator,
 *   ZoneTree,
 * } from "@zonetree/zonetree";
 *
 * const ks = defineKeyspace({ key: "<str>", value: "utf8" });
 * const fs = memoryFileSystem();
 * await using target = await ZoneTree.open({ dir: "/replica", keyspace: ks, fs });
 * await using state = await ZoneTree.open({ dir: "/replica-state", keyspace: replicaStateKeyspace, fs });
 * const replica = await Replicator.open(target, state);
 * await replica.apply([{ opIndex: 9, type: "put", key: "a", value: "new" }]);
 * const late = await replica.apply([{ opIndex: 4, type: "put", key: "a", value: "old" }]);
 * assert.equal(late.skipped, 1);
 * assert.equal(target.get("a"), "new");
 * assert.equal(replica.sourceOpIndexOf("a"), 9);
 * ```
 */
export class Replicator<K, V, KIn, P> {
  /** The replicated data: read it like any tree; only the replicator writes it. */
  readonly target: ZoneTree<K, V, KIn, P>;
  /** The companion state tree. */
  readonly state: ReplicaStateTree;
  /** Every replicated range deletion (loaded on open; one per range deletion ever applied). */
  readonly #ranges: RangeRecord[] = [];
  /** Applies run one at a time, in call order. */
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(target: ZoneTree<K, V, KIn, P>, state: ReplicaStateTree) {
    this.target = target;
    this.state = state;
  }

  /**
   * A replicator over `target` (the source's keyspace) and `state` (opened with
   * {@link replicaStateKeyspace}). Finishes an apply that a crash interrupted before returning.
   */
  static async open<K, V, KIn, P>(
    target: ZoneTree<K, V, KIn, P>,
    state: ReplicaStateTree,
  ): Promise<Replicator<K, V, KIn, P>> {
    if (target === null || typeof target !== "object" || typeof target.batch !== "function") {
      throw new InvalidOptionError("target", "Replicator.open(target, state): target must be a ZoneTree");
    }
    if (state?.keyspace?.identity !== replicaStateKeyspace.identity) {
      throw new InvalidOptionError(
        "state",
        "Replicator.open(target, state): state must be opened with replicaStateKeyspace",
      );
    }
    const replica = new Replicator(target, state);
    for (const [k, end] of state.range({ prefix: [RANGE] })) {
      replica.#ranges.push({ start: k.key, end, opIndex: Number(k.n) });
    }
    await replica.#finishPending();
    return replica;
  }

  /** The source opIndex up to which `replicate` has applied every change (0: none yet). */
  get position(): number {
    const v = this.state.get([POSITION, EMPTY, 0n]);
    return v ? readNumber(v) : 0;
  }

  /** The newest source opIndex applied to `key` (a put, a delete or a range deletion over it), or 0. */
  sourceOpIndexOf(key: KIn): number {
    return this.#versionOf(this.target.keyspace.key.encode(key), new Map(), []);
  }

  /**
   * Applies `changes` (as `tree.changes()` yields them, from any source, in any order, repeated
   * or not): a change is written only if its opIndex is above every source opIndex already
   * applied to its key. All of one call is atomic across a crash. `position`, when given, is
   * stored with it (never lowered). Calls run one at a time.
   */
  apply(changes: readonly Change<K, V>[], position?: number): Promise<ApplyResult> {
    const run = this.#queue.then(() => this.#apply(changes, position));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #apply(
    changes: readonly Change<K, V>[],
    position: number | undefined,
  ): Promise<ApplyResult> {
    if (!Array.isArray(changes)) {
      throw new InvalidOptionError("changes", "apply(changes): changes must be an array");
    }
    if (position !== undefined && !isOpIndex(position)) {
      throw new InvalidOptionError(
        "position",
        `apply(changes, position): ${String(position)} is not an opIndex`,
      );
    }
    await this.#finishPending();
    const decided = new Map<string, { key: Uint8Array; version: number }>();
    const newRanges: RangeRecord[] = [];
    const ops: TargetOp[] = [];
    let applied = 0;
    for (const c of changes) {
      if (c === null || typeof c !== "object" || !isOpIndex(c.opIndex)) {
        throw new InvalidOptionError(
          "changes",
          `apply(changes): ${JSON.stringify(c)} has no valid opIndex`,
        );
      }
      if (this.#decide(c, decided, newRanges, ops)) applied++;
    }
    const stored = this.position;
    const nextPosition = position === undefined ? stored : Math.max(stored, position);
    const stateOps: BatchOp<unknown, Uint8Array>[] = [];
    for (const { key, version } of decided.values()) {
      stateOps.push({ put: [VERSION, key, 0n], value: numberBytes(version) });
    }
    for (const r of newRanges) {
      stateOps.push({ put: [RANGE, r.start, BigInt(r.opIndex)], value: r.end });
    }
    if (nextPosition !== stored) {
      stateOps.push({ put: [POSITION, EMPTY, 0n], value: numberBytes(nextPosition) });
    }
    if (ops.length > 0) stateOps.push({ put: [PENDING, EMPTY, 0n], value: encodeOps(ops) });
    if (stateOps.length > 0) {
      this.state.batch(stateOps);
      await this.state.flush();
    }
    this.#ranges.push(...newRanges);
    if (ops.length > 0) await this.#writeTarget(ops);
    return { applied, skipped: changes.length - applied, position: nextPosition };
  }

  /** Decides one change against the state and this call's earlier decisions. True if applied. */
  #decide(
    c: Change<K, V>,
    decided: Map<string, { key: Uint8Array; version: number }>,
    newRanges: RangeRecord[],
    ops: TargetOp[],
  ): boolean {
    if (c.type === "deleteRange") {
      const { start, end } = c.range;
      const known = [...this.#ranges, ...newRanges];
      if (known.some((r) => r.opIndex === c.opIndex && compareBytes(r.start, start) === 0)) {
        return false;
      }
      for (const { key, version } of this.#versionsIn(start, end, decided)) {
        if (version >= c.opIndex) continue;
        decided.set(hexOf(key), { key, version: c.opIndex });
        ops.push({ del: true, key, value: EMPTY, expiresAt: 0 });
      }
      newRanges.push({ start: start.slice(), end: end.slice(), opIndex: c.opIndex });
      return true;
    }
    if (c.type !== "put" && c.type !== "delete") {
      throw new InvalidOptionError(
        "changes",
        `apply(changes): unknown change type ${JSON.stringify((c as { type: unknown }).type)}`,
      );
    }
    const key = this.target.keyspace.key.encode(c.key as unknown as KIn);
    const value = c.type === "put" ? this.target.keyspace.value.encode(c.value) : EMPTY;
    if (c.opIndex <= this.#versionOf(key, decided, newRanges)) return false;
    decided.set(hexOf(key), { key, version: c.opIndex });
    ops.push({
      del: c.type === "delete",
      key,
      value,
      expiresAt: c.type === "put" ? c.expiresAt ?? 0 : 0,
    });
    return true;
  }

  /** Newest source opIndex of `key`: its VERSION entry, this call's decision, covering ranges. */
  #versionOf(
    key: Uint8Array,
    decided: Map<string, { key: Uint8Array; version: number }>,
    newRanges: readonly RangeRecord[],
  ): number {
    const mine = decided.get(hexOf(key));
    let version = mine ? mine.version : 0;
    if (!mine) {
      const stored = this.state.get([VERSION, key, 0n]);
      if (stored) version = readNumber(stored);
    }
    for (const list of [this.#ranges, newRanges]) {
      for (const r of list) {
        if (r.opIndex > version && inRange(key, r.start, r.end)) version = r.opIndex;
      }
    }
    return version;
  }

  /** Every known key in [start, end) with its current version (state entries and this call's). */
  #versionsIn(
    start: Uint8Array,
    end: Uint8Array,
    decided: Map<string, { key: Uint8Array; version: number }>,
  ): { key: Uint8Array; version: number }[] {
    const out = new Map<string, { key: Uint8Array; version: number }>();
    const upper = end.length === 0 ? { lt: [VERSION + 1] } : { lt: [VERSION, end] };
    for (const [k, v] of this.state.range({ gte: [VERSION, start], ...upper })) {
      out.set(hexOf(k.key), { key: k.key, version: readNumber(v) });
    }
    for (const [id, d] of decided) if (inRange(d.key, start, end)) out.set(id, d);
    return [...out.values()];
  }

  /** Step 2 and 3 of an apply: the data as one target batch, flushed, then PENDING dropped. */
  async #writeTarget(ops: readonly TargetOp[]): Promise<void> {
    const { key, value } = this.target.keyspace;
    const batch: BatchOp<KIn, V>[] = ops.map((op) =>
      op.del ? { del: key.decode(op.key) as unknown as KIn } : {
        put: key.decode(op.key) as unknown as KIn,
        value: value.decode(op.value),
        ...(op.expiresAt !== 0 ? { expiresAt: op.expiresAt } : {}),
      }
    );
    this.target.batch(batch);
    await this.target.flush();
    this.state.forceDelete([PENDING, EMPTY, 0n]); // a redo after a crash is harmless: no flush
  }

  /** Re-applies the target ops of an apply that a crash (or an error) cut short. */
  async #finishPending(): Promise<void> {
    const pending = this.state.get([PENDING, EMPTY, 0n]);
    if (!pending) return;
    await this.#writeTarget(decodeOps(pending));
    await this.state.flush();
  }

  /**
   * Makes the target a copy of `source` as of now, for a consumer that the change feed left
   * behind (`ChangeFeedGapError`): every live record of a snapshot of the source is applied at
   * the source's lastOpIndex P, every target key absent from it is deleted at P, and the
   * position becomes P. Follow with `replicate(source, replica)`. Returns P.
   */
  async resync(source: ZoneTree<K, V, KIn, P>, batchSize = 1000): Promise<number> {
    const snapshotAt = source.lastOpIndex;
    const sourceIt = source.range({ snapshot: true });
    const targetIt = this.target.keys({ snapshot: true });
    const compare = this.target.keyspace.key.compare;
    const encode = (k: K) => this.target.keyspace.key.encode(k as unknown as KIn);
    let batch: Change<K, V>[] = [];
    const flush = async () => {
      // Force: entries newer than P cannot exist, and equal ones are what a resync writes.
      await this.apply(batch.map((c) => ({ ...c, opIndex: snapshotAt })));
      batch = [];
    };
    let s = sourceIt.next();
    let t = targetIt.next();
    while (!s.done || !t.done) {
      const order = s.done ? 1 : t.done ? -1 : compare(encode(s.value[0]), encode(t.value));
      if (order <= 0) {
        const [key, value] = s.value!;
        batch.push({ opIndex: snapshotAt, type: "put", key, value });
        s = sourceIt.next();
        if (order === 0) t = targetIt.next();
      } else {
        batch.push({ opIndex: snapshotAt, type: "delete", key: t.value as K });
        t = targetIt.next();
      }
      if (batch.length >= batchSize) await flush();
    }
    await flush();
    await this.apply([], snapshotAt);
    return snapshotAt;
  }
}

/** Options of {@link replicate}. */
export interface ReplicateOptions {
  /** Continue after this source opIndex (default: the replica's stored position). */
  since?: number;
  /** Stops the loop (after the apply in progress). */
  signal?: AbortSignal;
  /** Changes per apply (one state batch and one target batch), default 1000. */
  batchSize?: number;
  /** Keep polling for new changes until aborted (default true); false: stop once caught up. */
  follow?: boolean;
  /** Pause between polls when caught up, default 50 ms. */
  pollMs?: number;
  /** Called after each apply. */
  onApply?: (result: ApplyResult) => void;
}

/**
 * Follows `source.changes()` into `replica`, applying up to `batchSize` changes at a time and
 * storing the position with each apply, so that a consumer stopped at any point (abort, crash,
 * SIGKILL) restarts where it left off; a change applied twice is skipped. Throws
 * `ChangeFeedGapError` when the source no longer retains the changes after the position
 * (`replica.resync(source)`, then replicate again). Returns the final position. Open the source
 * with a `changeFeedRetentionBytes` that covers how far the consumer may fall behind (the default
 * 0 keeps only the writes not merged yet).
 *
 * @example Follow a source tree into a read replica
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   defineKeyspace,
 *   memoryFileSystem,
 *   replicaStateKeyspace,
 *   replicate,
 *   Replicator,
 *   ZoneTree,
 * } from "@zonetree/zonetree";
 *
 * const ks = defineKeyspace({ key: "<str>", value: "utf8" });
 * const fs = memoryFileSystem();
 * const retention = 64 * 1024 * 1024; // merged WAL kept for a consumer that falls behind
 * await using source = await ZoneTree.open({ dir: "/source", keyspace: ks, fs, changeFeedRetentionBytes: retention });
 * await using target = await ZoneTree.open({ dir: "/replica", keyspace: ks, fs });
 * await using state = await ZoneTree.open({ dir: "/replica-state", keyspace: replicaStateKeyspace, fs });
 * source.upsert("a", "1");
 * source.upsert("b", "2");
 * source.forceDelete("a");
 * const replica = await Replicator.open(target, state);
 * // follow: false stops once caught up; the default follows until `signal` aborts.
 * await replicate(source, replica, { follow: false });
 * assert.deepEqual([...target.range()], [["b", "2"]]);
 * assert.equal(replica.position, source.lastOpIndex);
 * ```
 */
export async function replicate<K, V, KIn, P>(
  source: ZoneTree<K, V, KIn, P>,
  replica: Replicator<K, V, KIn, P>,
  options: ReplicateOptions = {},
): Promise<number> {
  if (source === null || typeof source !== "object" || typeof source.changes !== "function") {
    throw new InvalidOptionError("source", "replicate(source, replica): source must be a ZoneTree");
  }
  if (!(replica instanceof Replicator)) {
    throw new InvalidOptionError("replica", "replicate(source, replica): replica must be a Replicator");
  }
  const batchSize = options.batchSize ?? 1000;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new InvalidOptionError(
      "batchSize",
      `replicate: batchSize ${String(batchSize)} is not a positive integer`,
    );
  }
  const { signal } = options;
  let since = options.since ?? replica.position;
  while (!signal?.aborted) {
    let batch: Change<K, V>[] = [];
    const applyBatch = async () => {
      const last = batch[batch.length - 1].opIndex;
      assert(last > since, "replicate: the change feed goes forward");
      const result = await replica.apply(batch, last);
      since = last;
      batch = [];
      options.onApply?.(result);
    };
    for await (const change of source.changes(since)) {
      batch.push(change);
      if (batch.length >= batchSize) {
        await applyBatch();
        if (signal?.aborted) break;
      }
    }
    if (batch.length > 0 && !signal?.aborted) await applyBatch();
    if (options.follow === false) break;
    await pause(options.pollMs ?? 50, signal);
  }
  return since;
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done);
  });
}

function isOpIndex(n: unknown): n is number {
  return typeof n === "number" && Number.isSafeInteger(n) && n > 0;
}

function inRange(key: Uint8Array, start: Uint8Array, end: Uint8Array): boolean {
  return compareBytes(key, start) >= 0 && (end.length === 0 || compareBytes(key, end) < 0);
}

function hexOf(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += (b[i] < 16 ? "0" : "") + b[i].toString(16);
  return s;
}

function numberBytes(n: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setFloat64(0, n);
  return out;
}

function readNumber(b: Uint8Array): number {
  assert(b.length === 8, "replica state: a stored opIndex is 8 bytes");
  return new DataView(b.buffer, b.byteOffset, 8).getFloat64(0);
}

/**
 * The PENDING record: ops back to back, each
 *   u8 kind (0 put, 1 delete) | u32 keyLength | key | u32 valueLength | value | f64 expiresAt
 */
function encodeOps(ops: readonly TargetOp[]): Uint8Array {
  let size = 0;
  for (const op of ops) size += 1 + 4 + op.key.length + 4 + op.value.length + 8;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let pos = 0;
  for (const op of ops) {
    out[pos++] = op.del ? 1 : 0;
    view.setUint32(pos, op.key.length);
    out.set(op.key, pos + 4);
    pos += 4 + op.key.length;
    view.setUint32(pos, op.value.length);
    out.set(op.value, pos + 4);
    pos += 4 + op.value.length;
    view.setFloat64(pos, op.expiresAt);
    pos += 8;
  }
  return out;
}

function decodeOps(bytes: Uint8Array): TargetOp[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ops: TargetOp[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const del = bytes[pos++] === 1;
    const keyLength = view.getUint32(pos);
    const key = bytes.slice(pos + 4, pos + 4 + keyLength);
    pos += 4 + keyLength;
    const valueLength = view.getUint32(pos);
    const value = bytes.slice(pos + 4, pos + 4 + valueLength);
    pos += 4 + valueLength;
    const expiresAt = view.getFloat64(pos);
    pos += 8;
    ops.push({ del, key, value, expiresAt });
  }
  assert(pos === bytes.length, "replica state: PENDING record ends at its last op");
  return ops;
}
