/**
 * Partitioned trees: one {@link ZoneTree} per partition, all with the same keyspace, in
 * sub-directories of one root. The partition of a key is chosen by one key field: its value (a
 * tenant string), or a UTC time bucket of a timestamp field (epoch ms; hour, day or month). Writes
 * and point reads go to one partition; `range` merges the partitions' ranges in key order;
 * `dropPartition` closes a partition and removes its directory (retention by time bucket).
 *
 *   <dir>/<partition>/meta, wal-*.log, seg-*   one tree per partition; the directory name is the
 *                                              partition name with every byte outside
 *                                              [A-Za-z0-9_-] written as %XX (reversible)
 *
 * Invariants: every partition directory under the root is open while the partitioned tree is
 * (so reads stay synchronous); a key lives only in the partition its field selects, so a point
 * read looks in one tree; a batch is atomic per partition, not across partitions; opIndexes are
 * per partition.
 *
 * @module
 */
import { ClosedError, InvalidOptionError } from "../api/errors.ts";
import {
  type OpenOptions,
  type RangeBounds,
  type RangeOptions,
  type WriteOptions,
  ZoneTree,
} from "../api/zone_tree.ts";
import type { AnyKeyspace, Keyspace } from "../keyspace/define_keyspace.ts";
import { type FileSystem, joinPath } from "../fs/file_system.ts";
import { localFileSystem } from "../fs/local_file_system.ts";
import { validateOptions } from "../api/options.ts";

/** How a key picks its partition. */
export type PartitionBy =
  /** By the value of a key field (e.g. a tenant id), as a string. */
  | { field: string }
  /** By a UTC time bucket of a timestamp field (epoch milliseconds, number or bigint). */
  | { field: string; bucket: "hour" | "day" | "month" };

/** Options of {@link PartitionedTree.open}. */
export interface PartitionedTreeOptions<KS> {
  /** Root directory; each partition is a sub-directory. */
  dir: string;
  /** The keyspace of every partition. */
  keyspace: KS;
  /** The key field that selects the partition. */
  partitionBy: PartitionBy;
  /** Storage provider (default: local files). */
  fs?: FileSystem;
  /** Options for every partition's tree (everything of `ZoneTree.open` but dir, keyspace, fs). */
  treeOptions?: Omit<OpenOptions, "dir" | "keyspace" | "fs" | "mode">;
}

/**
 * Trees partitioned by a key field: one {@link ZoneTree} per tenant or per time bucket, in
 * sub-directories of one root. Writes and point reads go to one partition, `range` merges the
 * partitions in key order, and `dropPartition` removes a whole partition (retention). Writes
 * are async (they may open a new partition); reads are synchronous.
 *
 * @example Daily partitions with retention
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineKeyspace, memoryFileSystem, PartitionedTree } from "@zonetree/zonetree";
 *
 * const readings = defineKeyspace({ key: "sensor:<str>:ts:<u64be>", value: "f64" });
 * const tree = await PartitionedTree.open({
 *   dir: "/ts",
 *   keyspace: readings,
 *   fs: memoryFileSystem(),
 *   partitionBy: { field: "ts", bucket: "day" },
 * });
 * await tree.upsert({ sensor: "s-1", ts: Date.UTC(2024, 0, 1, 12) }, 20.5);
 * await tree.upsert({ sensor: "s-1", ts: Date.UTC(2024, 0, 2, 12) }, 21.5);
 * assert.deepEqual(tree.partitions(), ["2024-01-01", "2024-01-02"]);
 * await tree.dropPartition("2024-01-01"); // retention: the day's directory is gone
 * assert.deepEqual([...tree.range()].map(([, temp]) => temp), [21.5]);
 * await tree.close();
 * ```
 */
export class PartitionedTree<K, V, KIn, P> {
  /** The root directory; each partition is a sub-directory of it. */
  readonly dir: string;
  /** The keyspace of every partition. */
  readonly keyspace: Keyspace<K, V, KIn, P>;
  /** How a key picks its partition. */
  readonly partitionBy: PartitionBy;
  readonly #fs: FileSystem;
  readonly #treeOptions: Record<string, unknown>;
  readonly #fieldIndex: number;
  /** Open partitions by name. */
  readonly #trees = new Map<string, ZoneTree<K, V, KIn, P>>();
  /** Opens in progress, so two writes to a new partition open it once. */
  readonly #opening = new Map<string, Promise<ZoneTree<K, V, KIn, P>>>();
  #closed = false;

  private constructor(
    options: PartitionedTreeOptions<Keyspace<K, V, KIn, P>>,
    fs: FileSystem,
    fieldIndex: number,
  ) {
    this.dir = options.dir;
    this.keyspace = options.keyspace;
    this.partitionBy = options.partitionBy;
    this.#fs = fs;
    this.#treeOptions = { ...options.treeOptions };
    this.#fieldIndex = fieldIndex;
  }

  /** Opens the root (created if missing) and every partition in it. */
  static async open<KS extends AnyKeyspace>(
    options: PartitionedTreeOptions<KS>,
  ): Promise<
    PartitionedTree<
      KS extends Keyspace<infer K, infer _V, infer _I, infer _P> ? K : never,
      KS extends Keyspace<infer _K, infer V, infer _I, infer _P> ? V : never,
      KS extends Keyspace<infer _K, infer _V, infer I, infer _P> ? I : never,
      KS extends Keyspace<infer _K, infer _V, infer _I, infer P> ? P : never
    >
  > {
    if (options === null || typeof options !== "object") {
      throw new InvalidOptionError(
        "options",
        "PartitionedTree.open(options): options must be an object",
      );
    }
    const { keyspace, partitionBy } = options;
    const field = partitionBy?.field;
    const fieldIndex =
      keyspace?.key?.fields?.findIndex((f: { name: string }) => f.name === field) ?? -1;
    if (fieldIndex < 0) {
      throw new InvalidOptionError(
        "partitionBy",
        `option "partitionBy": the keyspace has no key field ${JSON.stringify(field)}`,
      );
    }
    if ("bucket" in partitionBy && !["hour", "day", "month"].includes(partitionBy.bucket)) {
      throw new InvalidOptionError(
        "partitionBy",
        `option "partitionBy": bucket ${
          JSON.stringify(partitionBy.bucket)
        } is not "hour", "day" or "month"`,
      );
    }
    // Every partition opens with these: a bad one fails here, not at the first write.
    validateOptions({ ...options.treeOptions, dir: options.dir, fs: options.fs });
    const fs = options.fs ?? localFileSystem();
    fs.mkdirp(options.dir);
    // deno-lint-ignore no-explicit-any
    const tree = new PartitionedTree(options as any, fs, fieldIndex);
    try {
      for (const entry of fs.list(options.dir)) {
        const path = joinPath(options.dir, entry);
        if (!fs.stat(path)?.isDirectory || !fs.stat(joinPath(path, "meta"))) continue;
        await tree.#open(partitionOfDirName(entry));
      }
    } catch (e) {
      await tree.close();
      throw e;
    }
    // deno-lint-ignore no-explicit-any
    return tree as any;
  }

  /** The partition `key` belongs to. Throws `KeyEncodingError` for a bad key. */
  partitionOf(key: KIn): string {
    const decoded = this.keyspace.key.decode(this.keyspace.key.encode(key));
    const fields = this.keyspace.key.fields;
    const value = fields.length === 1
      ? decoded
      : (decoded as Record<string, unknown>)[fields[this.#fieldIndex].name];
    if (!("bucket" in this.partitionBy)) return String(value);
    const ms = typeof value === "bigint" ? Number(value) : value;
    if (typeof ms !== "number" || !Number.isFinite(ms)) {
      throw new InvalidOptionError(
        "partitionBy",
        `partition field ${this.partitionBy.field}: ${String(value)} is not a timestamp`,
      );
    }
    return timeBucket(ms, this.partitionBy.bucket);
  }

  /** Partition names, sorted (time buckets sort oldest first). */
  partitions(): string[] {
    return [...this.#trees.keys()].sort();
  }

  /** The tree of partition `name`, if it exists. */
  partition(name: string): ZoneTree<K, V, KIn, P> | undefined {
    this.#checkOpen();
    return this.#trees.get(name);
  }

  // ---------------------------------------------------------------------------------------------
  // Writes: async only because the first write to a partition creates its tree.

  /** Inserts or replaces `key` in its partition. Returns the opIndex (of that partition). */
  async upsert(key: KIn, value: V, opts?: WriteOptions): Promise<number> {
    return (this.#trees.get(this.partitionOf(key)) ?? await this.#treeFor(key)).upsert(
      key,
      value,
      opts,
    );
  }

  /** Inserts `key` only if absent. Returns the opIndex, or undefined if it existed. */
  async tryAdd(key: KIn, value: V, opts?: WriteOptions): Promise<number | undefined> {
    return (this.#trees.get(this.partitionOf(key)) ?? await this.#treeFor(key)).tryAdd(
      key,
      value,
      opts,
    );
  }

  /** Deletes `key` if present. Returns the opIndex, or undefined if absent. */
  tryDelete(key: KIn): number | undefined {
    return this.#existing(key)?.tryDelete(key);
  }

  /** Writes a deletion marker for `key` in its partition; undefined if the partition does not exist. */
  forceDelete(key: KIn): number | undefined {
    return this.#existing(key)?.forceDelete(key);
  }

  /**
   * Applies puts and deletes; the ops of each partition are one batch there (atomic per
   * partition, not across partitions).
   */
  async batch(
    ops: readonly ({ put: KIn; value: V; expiresAt?: number } | { del: KIn })[],
  ): Promise<void> {
    const groups = new Map<string, typeof ops[number][]>();
    for (const op of ops) {
      const name = this.partitionOf("put" in op ? op.put : op.del);
      const group = groups.get(name);
      if (group) group.push(op);
      else groups.set(name, [op]);
    }
    for (const [name, group] of groups) {
      const tree = this.#trees.get(name) ?? await this.#open(name);
      tree.batch(group);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Reads: synchronous, every partition is open.

  /** The value of `key`, from its partition. */
  get(key: KIn): V | undefined {
    return this.#existing(key)?.get(key);
  }

  /** Whether `key` is present. */
  has(key: KIn): boolean {
    return this.#existing(key)?.has(key) ?? false;
  }

  /** Live records in every partition (within `bounds`). */
  count(bounds?: RangeBounds<P>): number {
    this.#checkOpen();
    let n = 0;
    for (const tree of this.#trees.values()) n += tree.count(bounds);
    return n;
  }

  /**
   * `[key, value]` pairs of every partition in key order (or reverse), as one range: each
   * partition's range is read with the same bounds and merged by encoded key; `limit` applies
   * to the merged result. Partitions created or dropped during the iteration are not seen.
   */
  *range(options: RangeOptions<P> = {}): Generator<[K, V], void, undefined> {
    this.#checkOpen();
    const { limit, ...rest } = options;
    if (
      limit !== undefined && (typeof limit !== "number" || !Number.isInteger(limit) || limit < 0)
    ) {
      throw new InvalidOptionError(
        "limit",
        `range(options): limit ${String(limit)} is not a non-negative integer`,
      );
    }
    const sign = options.reverse ? -1 : 1;
    const compare = this.keyspace.key.compare;
    const heads: { it: Iterator<[K, V]>; item: [K, V]; key: Uint8Array }[] = [];
    const advance = (it: Iterator<[K, V]>) => {
      const r = it.next();
      return r.done
        ? undefined
        : { it, item: r.value, key: this.keyspace.key.encode(r.value[0] as unknown as KIn) };
    };
    const iterators = [...this.#trees.values()].map((t) => t.range(rest));
    try {
      for (const it of iterators) {
        const head = advance(it);
        if (head) heads.push(head);
      }
      for (let n = 0; heads.length > 0 && (limit === undefined || n < limit); n++) {
        // Few partitions are open at once: a linear scan for the next head is cheaper than a heap.
        let best = 0;
        for (let i = 1; i < heads.length; i++) {
          if (sign * compare(heads[i].key, heads[best].key) < 0) best = i;
        }
        const head = heads[best];
        yield head.item;
        const next = advance(head.it);
        if (next) heads[best] = next;
        else heads.splice(best, 1);
      }
    } finally {
      for (const it of iterators) it.return?.();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Partitions, durability, lifecycle

  /**
   * Closes partition `name` and removes its directory with every file in it (time-series
   * retention: drop the oldest buckets). Returns false if there is no such partition.
   */
  async dropPartition(name: string): Promise<boolean> {
    this.#checkOpen();
    const opening = this.#opening.get(name);
    if (opening) await opening.catch(() => {});
    const tree = this.#trees.get(name);
    if (!tree) return false;
    this.#trees.delete(name);
    await tree.close();
    this.#fs.removeDir(joinPath(this.dir, dirNameOfPartition(name)));
    this.#fs.syncDir(this.dir);
    return true;
  }

  /** Flushes every partition. */
  async flush(): Promise<void> {
    this.#checkOpen();
    await Promise.all([...this.#trees.values()].map((t) => t.flush()));
  }

  /** Closes every partition. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#opening.values()].map((p) => p.catch(() => {})));
    const trees = [...this.#trees.values()];
    this.#trees.clear();
    await Promise.all(trees.map((t) => t.close()));
  }

  /** `await using tree = await PartitionedTree.open(...)`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw new ClosedError(`partitioned tree ${this.dir} is closed`);
  }

  #existing(key: KIn): ZoneTree<K, V, KIn, P> | undefined {
    this.#checkOpen();
    return this.#trees.get(this.partitionOf(key));
  }

  #treeFor(key: KIn): Promise<ZoneTree<K, V, KIn, P>> {
    return this.#open(this.partitionOf(key));
  }

  #open(name: string): Promise<ZoneTree<K, V, KIn, P>> {
    this.#checkOpen();
    const open = this.#trees.get(name);
    if (open) return Promise.resolve(open);
    let opening = this.#opening.get(name);
    if (!opening) {
      opening = ZoneTree.open({
        ...this.#treeOptions,
        dir: joinPath(this.dir, dirNameOfPartition(name)),
        keyspace: this.keyspace,
        fs: this.#fs,
      }).then((tree) => {
        const t = tree as unknown as ZoneTree<K, V, KIn, P>;
        this.#trees.set(name, t);
        return t;
      }).finally(() => this.#opening.delete(name));
      this.#opening.set(name, opening);
    }
    return opening;
  }
}

/**
 * The UTC bucket of epoch milliseconds `ms`: `2024-01-15T13`, `2024-01-15` or `2024-01`. It is
 * the partition name {@link PartitionedTree} gives a time-bucketed key.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { timeBucket } from "@zonetree/zonetree";
 *
 * const ms = Date.UTC(2024, 0, 15, 13, 45);
 * assert.equal(timeBucket(ms, "hour"), "2024-01-15T13");
 * assert.equal(timeBucket(ms, "day"), "2024-01-15");
 * assert.equal(timeBucket(ms, "month"), "2024-01");
 * ```
 */
export function timeBucket(ms: number, bucket: "hour" | "day" | "month"): string {
  if (bucket !== "hour" && bucket !== "day" && bucket !== "month") {
    throw new InvalidOptionError("bucket", `bucket ${String(bucket)} is not "hour", "day" or "month"`);
  }
  if (!(ms >= 0 && ms < 253402300800000)) {
    throw new InvalidOptionError(
      "partitionBy",
      `timestamp ${ms} is not epoch ms within years 1970..9999`,
    );
  }
  const iso = new Date(ms).toISOString(); // 2024-01-15T13:45:00.000Z
  return bucket === "hour"
    ? iso.slice(0, 13)
    : bucket === "day"
    ? iso.slice(0, 10)
    : iso.slice(0, 7);
}

/** A directory name for partition `name`: bytes outside [A-Za-z0-9_-] become %XX. */
export function dirNameOfPartition(name: string): string {
  let out = "";
  for (const b of new TextEncoder().encode(name)) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9_-]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out.length === 0 ? "%" : out;
}

/** The partition name of a directory made by {@link dirNameOfPartition}. */
export function partitionOfDirName(dirName: string): string {
  if (dirName === "%") return "";
  return decodeURIComponent(dirName);
}
