/**
 * Optimistic transactions (API.md §5). A transaction buffers its writes and remembers, for every
 * key it read, the opIndex of the newest record of that key at the time (0 if none). `commit`
 * checks, synchronously and without yielding, that no key it read or wrote was written by
 * anyone else since (the newest opIndex changed for a read key, or rose above the
 * transaction's start for a blind write), then logs all writes as one WAL record: after a crash
 * the transaction is all there or not at all.
 *
 * Transactions may span `await` points: the check happens at commit, so racing async tasks get
 * `TransactionConflictError` instead of lost updates. A false conflict is possible (a merge
 * dropped a deletion marker the transaction saw); a missed one is not.
 *
 * @module
 */
import { ClosedError, TransactionConflictError } from "./errors.ts";
import type { Keyspace } from "../keyspace/define_keyspace.ts";
import type { EncodedOp, TreeEngine } from "../engine/tree_engine.ts";
import { EMPTY, KIND_DELETE, KIND_PUT } from "../iter/record.ts";
import { OpColumns } from "../wal/wal_format.ts";

/** Map key for encoded key bytes (latin1: one char per byte, exact and cheap). */
function mapKey(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 4096) as unknown as number[]);
  }
  return s;
}

/**
 * An optimistic transaction over one tree, from {@link ZoneTree.transaction}. Reads see the
 * transaction's own writes; `commit()` writes everything as one WAL record, or throws
 * `TransactionConflictError` (writing nothing) if a key it read or wrote was written by someone
 * else in the meantime. Retry on conflict.
 *
 * @example Move money between accounts, retrying on conflict
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   defineKeyspace,
 *   memoryFileSystem,
 *   TransactionConflictError,
 *   ZoneTree,
 * } from "@zonetree/zonetree";
 *
 * const accounts = defineKeyspace({ key: "account:<str>", value: "i64be" });
 * await using tree = await ZoneTree.open({ dir: "/db", keyspace: accounts, fs: memoryFileSystem() });
 * tree.batch([{ put: "alice", value: 100n }, { put: "bob", value: 0n }]);
 *
 * const tx = tree.transaction();
 * const alice = tx.get("alice") ?? 0n;
 * tx.upsert("alice", alice - 30n);
 * tx.upsert("bob", (tx.get("bob") ?? 0n) + 30n);
 * tree.upsert("alice", 50n); // someone else writes a key the transaction read
 * assert.throws(() => tx.commit(), TransactionConflictError);
 *
 * const retry = tree.transaction();
 * retry.upsert("alice", (retry.get("alice") ?? 0n) - 30n);
 * retry.upsert("bob", (retry.get("bob") ?? 0n) + 30n);
 * retry.commit();
 * assert.deepEqual([tree.get("alice"), tree.get("bob")], [20n, 30n]);
 * ```
 */
export class Transaction<K, V, KIn> {
  readonly #engine: TreeEngine;
  readonly #keyspace: Keyspace<K, V, KIn, unknown>;
  readonly #startOpIndex: number;
  /** Keys read: the newest opIndex seen at the first read. */
  readonly #reads = new Map<string, { key: Uint8Array; version: number }>();
  /** Buffered writes, in first-write order; a later write of the same key replaces the op. */
  readonly #writes = new Map<string, EncodedOp>();
  #done = false;

  /** Created by {@link ZoneTree.transaction}. */
  constructor(engine: TreeEngine, keyspace: Keyspace<K, V, KIn, unknown>) {
    this.#engine = engine;
    this.#keyspace = keyspace;
    this.#startOpIndex = engine.lastOpIndex;
  }

  #check(): void {
    if (this.#done) throw new ClosedError("transaction is already committed or rolled back");
    this.#engine.checkOpen();
  }

  /** Reads `key`, seeing this transaction's own writes first. */
  get(key: KIn): V | undefined {
    this.#check();
    const k = this.#keyspace.key.encode(key);
    const id = mapKey(k);
    const own = this.#writes.get(id);
    if (own) return own.kind === KIND_PUT ? this.#keyspace.value.decode(own.value) : undefined;
    if (!this.#reads.has(id)) this.#reads.set(id, { key: k, version: this.#engine.versionOf(k) });
    const value = this.#engine.getValue(k);
    return value === undefined ? undefined : this.#keyspace.value.decode(value);
  }

  /** Buffers an insert-or-replace of `key`. */
  upsert(key: KIn, value: V): void {
    this.#check();
    const k = this.#keyspace.key.encode(key);
    const v = this.#keyspace.value.encode(value);
    this.#writes.set(mapKey(k), { kind: KIND_PUT, key: k, value: v, expiresAt: 0 });
  }

  /** Buffers a deletion of `key`. */
  delete(key: KIn): void {
    this.#check();
    const k = this.#keyspace.key.encode(key);
    this.#writes.set(mapKey(k), { kind: KIND_DELETE, key: k, value: EMPTY, expiresAt: 0 });
  }

  /**
   * Commits: throws `TransactionConflictError` (and writes nothing) if a key read or written by
   * this transaction was written by someone else since; otherwise logs every write as one WAL
   * record and returns the last opIndex (the current `lastOpIndex` for a transaction with no
   * writes).
   */
  commit(): number {
    this.#check();
    this.#engine.checkWritable();
    for (const { key, version } of this.#reads.values()) {
      if (this.#engine.versionOf(key) !== version) throw this.#conflict(key);
    }
    for (const [id, op] of this.#writes) {
      if (this.#reads.has(id)) continue;
      if (this.#engine.versionOf(op.key) > this.#startOpIndex) throw this.#conflict(op.key);
    }
    this.#done = true;
    return this.#engine.writeBatch(OpColumns.of(this.#writes.values()));
  }

  #conflict(key: Uint8Array): TransactionConflictError {
    this.#done = true;
    let shown: string;
    try {
      shown = JSON.stringify(
        this.#keyspace.key.decode(key),
        (_k, v) => typeof v === "bigint" ? `${v}n` : v,
      );
    } catch {
      shown = `0x${Array.from(key, (b) => b.toString(16).padStart(2, "0")).join("")}`;
    }
    return new TransactionConflictError(
      `transaction conflict: key ${shown} was written by someone else since this transaction used it`,
    );
  }

  /** Drops every buffered write. The transaction cannot be used afterwards. */
  rollback(): void {
    this.#done = true;
    this.#writes.clear();
    this.#reads.clear();
  }
}
