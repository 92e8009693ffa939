/**
 * The public positioned iterator (API.md §4): `seek`, `next`, and the current `key`, `value`,
 * `rawKey`, `isDeleted`. Values are decoded lazily (only when `value` is read).
 *
 * A default iterator reads the live layers and may see writes made after it was created, ahead
 * of its position; a snapshot iterator sees exactly the records present when it was created.
 * Disposing (`using`, `close()`) releases the segments it pins; using it afterwards throws
 * `ClosedError`.
 *
 * @module
 */
import { ClosedError, InvalidOptionError } from "./errors.ts";
import { checkBooleanOption, checkOptionNames } from "./options.ts";
import type { Keyspace } from "../keyspace/define_keyspace.ts";
import type { TreeEngine } from "../engine/tree_engine.ts";
import { KIND_DELETE } from "../iter/record.ts";
import { RangeCursor } from "../iter/range_cursor.ts";
import { copyBytes, prefixSuccessor } from "../util/bytes.ts";
import { decodesToCopy } from "../keyspace/value_codec.ts";
import { COPY_OVERHEAD_BYTES, pace } from "../util/gc_pacer.ts";

/** Options of {@link ZoneTree.iterator}. */
export interface TreeIteratorOptions {
  /** Move in descending key order. */
  reverse?: boolean;
  /** See exactly the records present at creation. */
  snapshot?: boolean;
  /** Also stop on deletion markers (`isDeleted` true, `value` undefined). */
  includeDeleted?: boolean;
}

const OPTION_NAMES = ["reverse", "snapshot", "includeDeleted"];

/**
 * A positioned iterator over a tree, from {@link ZoneTree.iterator}: `seek` to a key or prefix,
 * then `next()` until it returns false, reading `key`, `value` (decoded lazily), `rawKey` and
 * `isDeleted`. Dispose it (`using`, or `close()`) to release the segments it pins.
 *
 * A default iterator can be kept and seeked again and again (one per direction for many short
 * queries, say): each `seek`, and the first `next()`, sees every write made before it; when the
 * tree's segments changed since the iterator last positioned itself (the mutable segment moved
 * forward, a merge finished), it reopens over the current ones and lets the old ones go.
 * Between seeks it may also see later writes ahead of its position. A `snapshot` iterator sees
 * only what was there when it was made.
 *
 * @example Seek into a sensor's readings, latest first
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineKeyspace, memoryFileSystem, ZoneTree } from "@zonetree/zonetree";
 *
 * const readings = defineKeyspace({ key: "sensor:<str>:ts:<u64be>", value: "f64" });
 * await using tree = await ZoneTree.open({ dir: "/db", keyspace: readings, fs: memoryFileSystem() });
 * for (const sensor of ["s-1", "s-2"]) for (let ts = 1; ts <= 5; ts++) tree.upsert([sensor, ts], ts);
 *
 * using it = tree.iterator({ reverse: true });
 * it.seek({ sensor: "s-1" }); // reverse + prefix: the last key with that prefix
 * const seen: bigint[] = [];
 * while (it.next() && it.key.sensor === "s-1" && seen.length < 3) seen.push(it.key.ts);
 * assert.deepEqual(seen, [5n, 4n, 3n]);
 * ```
 */
export class TreeIterator<K, V, P> implements Disposable {
  readonly #keyspace: Keyspace<K, V, unknown, P>;
  #cursor: RangeCursor;
  readonly #reverse: boolean;
  readonly #engine: TreeEngine;
  readonly #includeDeleted: boolean;
  /** The engine's `layersVersion` when the cursor was opened; -1 for a snapshot (never reopened). */
  #layersVersion: number;
  #closed = false;
  #valid = false;
  /**
   * A seek waiting for the next `next()`: [target, exclusive]. At first the start (a range
   * cursor's first step is that seek), so the first `next()` also refreshes.
   */
  #pending: [Uint8Array | undefined, boolean] | undefined = [undefined, false];

  /** Created by {@link ZoneTree.iterator}. */
  constructor(
    engine: TreeEngine,
    keyspace: Keyspace<K, V, unknown, P>,
    options: TreeIteratorOptions,
  ) {
    if (options === null || typeof options !== "object") {
      throw new InvalidOptionError("options", "iterator(options): options must be an object");
    }
    checkOptionNames(options, OPTION_NAMES, "iterator");
    this.#keyspace = keyspace;
    this.#reverse = checkBooleanOption(options.reverse, "reverse", "iterator");
    const snapshot = checkBooleanOption(options.snapshot, "snapshot", "iterator");
    const includeDeleted = checkBooleanOption(options.includeDeleted, "includeDeleted", "iterator");
    this.#engine = engine;
    this.#includeDeleted = includeDeleted;
    this.#layersVersion = snapshot ? -1 : engine.layersVersion;
    const { cursor, openedAt } = engine.openCursor(this.#reverse, snapshot);
    this.#cursor = new RangeCursor(cursor, engine.compare, {
      includeDeleted,
      now: snapshot ? openedAt : undefined,
    });
  }

  /**
   * Before a seek of a default iterator: when the tree's segments changed since its cursor was
   * opened (the mutable segment moved forward, a merge replaced segments), a cursor over the
   * current ones replaces it, so the seek sees every write made before it, and the segments
   * the old cursor pinned are let go.
   */
  #refresh(): void {
    const version = this.#layersVersion;
    const current = this.#engine.layersVersion;
    if (version < 0 || version === current) return;
    const { cursor } = this.#engine.openCursor(this.#reverse, false);
    const old = this.#cursor;
    this.#cursor = new RangeCursor(cursor, this.#engine.compare, {
      includeDeleted: this.#includeDeleted,
    });
    this.#layersVersion = current;
    old.close();
  }

  #check(): void {
    if (this.#closed) throw new ClosedError("iterator is disposed");
    if (this.#engine.closed) throw new ClosedError("iterator's tree is closed");
  }

  #current(): void {
    this.#check();
    if (!this.#valid) throw new ClosedError("iterator has no current record (call next() first)");
  }

  /**
   * Positions before the target so that the next `next()` lands on it. Forward: the first key
   * >= target. Reverse: the last key <= target; a prefix target means the last key with that
   * prefix or below.
   */
  seek(keyOrPrefix: P): void {
    this.#check();
    const bound = this.#keyspace.key.encodeBound(keyOrPrefix);
    if (!this.#reverse || bound.complete) this.#pending = [bound.bytes, false];
    else {
      const succ = prefixSuccessor(bound.bytes);
      this.#pending = [succ, succ !== undefined];
    }
    this.#valid = false;
  }

  /** Moves to the next record; false at the end. */
  next(): boolean {
    this.#check();
    const pending = this.#pending;
    if (pending) {
      this.#pending = undefined;
      this.#refresh();
      this.#valid = this.#cursor.seek(pending[0], pending[1]);
    } else this.#valid = this.#cursor.next();
    return this.#valid;
  }

  /** The current key, decoded. */
  get key(): K {
    this.#current();
    const bytes = this.#cursor.key;
    pace(bytes.length + KEY_OVERHEAD_BYTES);
    return this.#keyspace.key.decode(bytes);
  }

  /** The current key's encoded bytes (a copy). */
  get rawKey(): Uint8Array {
    this.#current();
    const bytes = this.#cursor.key;
    pace(bytes.length + COPY_OVERHEAD_BYTES);
    return copyBytes(bytes);
  }

  /** The current value, decoded; undefined on a deletion marker. */
  get value(): V | undefined {
    this.#current();
    if (this.#cursor.kind === KIND_DELETE) return undefined;
    const codec = this.#keyspace.value;
    if (decodesToCopy(codec)) {
      const copy = this.#cursor.copyValue();
      pace(copy.length + COPY_OVERHEAD_BYTES);
      return copy as V;
    }
    const stored = this.#cursor.value;
    pace(stored.length + COPY_OVERHEAD_BYTES);
    return codec.decode(stored);
  }

  /** Whether the current record is a deletion marker (only with `includeDeleted`). */
  get isDeleted(): boolean {
    this.#current();
    return this.#cursor.kind === KIND_DELETE;
  }

  /** Releases the iterator. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#cursor.close();
  }

  /** `using it = tree.iterator()` disposes it at the end of the scope. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** Estimated bytes of objects per key a range returns (the key, its decoded form, the result). */
const KEY_OVERHEAD_BYTES = 96;
/** Estimated bytes of objects per `[key, value]` pair (both copies' headers, the pair, the result). */
const PAIR_OVERHEAD_BYTES = 160;

/** A key or value codec as the range iterator uses it (called as a method: codecs may use `this`). */
interface Decoder {
  decode(bytes: Uint8Array): unknown;
}

/**
 * The iterator that `range()` and `keys()` return, written out by hand instead of as a
 * generator: a generator frame resumed per record, with its `try`/`finally`, cost more per record
 * in Bun than the cursor step under it. It keeps a generator's observable behaviour:
 *
 * - lazy: nothing is validated or opened until the first `next()` (an iterator that is never
 *   pulled pins no segment), and an error there ends it;
 * - `next()` checks that the tree is open before each step (`ClosedError` between two records),
 *   and any error thrown by a step closes the cursor and ends the iterator;
 * - once exhausted, `return()`ed or `throw()`n into, it is done for good and its cursor closed;
 * - a fresh `{ value, done }` object per step; it is its own `[Symbol.iterator]`, and where the
 *   runtime has `Iterator.prototype` (Bun, Deno, Node 22+) it inherits the iterator helpers
 *   (`map`, `take`, `toArray`, ...) and `[Symbol.dispose]` from it, as generators do.
 */
class RangeIterator<T> {
  #open: (() => RangeCursor) | undefined;
  #cursor: RangeCursor | undefined;
  readonly #engine: TreeEngine;
  readonly #keyCodec: Decoder;
  /** The value codec for `[key, value]` pairs; undefined for keys only. */
  readonly #valueCodec: Decoder | undefined;
  /** The value codec's decode is a copy: take the cursor's copy instead (no view made). */
  readonly #copyValue: boolean;

  constructor(
    engine: TreeEngine,
    open: () => RangeCursor,
    keyCodec: Decoder,
    valueCodec: Decoder | undefined,
  ) {
    this.#engine = engine;
    this.#open = open;
    this.#keyCodec = keyCodec;
    this.#valueCodec = valueCodec;
    this.#copyValue = decodesToCopy(valueCodec);
  }

  next(): IteratorResult<T, void> {
    let cursor = this.#cursor;
    if (cursor === undefined) {
      const open = this.#open;
      if (open === undefined) return { value: undefined, done: true };
      this.#open = undefined; // an error while opening ends the iterator, as in a generator
      cursor = this.#cursor = open();
    }
    try {
      this.#engine.checkOpen();
      if (cursor.next()) {
        const keyBytes = cursor.key.length;
        const key = this.#keyCodec.decode(cursor.key);
        const valueCodec = this.#valueCodec;
        if (valueCodec === undefined) {
          pace(keyBytes + KEY_OVERHEAD_BYTES);
          return { value: key as T, done: false };
        }
        // The copy's length, not `cursor.value`'s: that would make a view just to measure it.
        let value: unknown;
        let valueBytes: number;
        if (this.#copyValue) {
          const copy = cursor.copyValue();
          valueBytes = copy.length;
          value = copy;
        } else {
          const stored = cursor.value;
          valueBytes = stored.length;
          value = valueCodec.decode(stored);
        }
        pace(keyBytes + valueBytes + PAIR_OVERHEAD_BYTES);
        return { value: [key, value] as T, done: false };
      }
    } catch (e) {
      this.#finish();
      throw e;
    }
    this.#finish();
    return { value: undefined, done: true };
  }

  return(): IteratorResult<T, void> {
    this.#finish();
    return { value: undefined, done: true };
  }

  throw(e: unknown): IteratorResult<T, void> {
    this.#finish();
    throw e;
  }

  [Symbol.iterator](): this {
    return this;
  }

  #finish(): void {
    this.#open = undefined;
    const cursor = this.#cursor;
    this.#cursor = undefined;
    cursor?.close();
  }
}

// The iterator helpers and [Symbol.dispose] (which calls return()) where the runtime has them.
const iteratorPrototype = (globalThis as { Iterator?: { prototype: object } }).Iterator?.prototype;
if (iteratorPrototype !== undefined) {
  Object.setPrototypeOf(RangeIterator.prototype, iteratorPrototype);
}

/**
 * A lazy range over the records that `open()` (called at the first `next()`) positions a
 * range cursor on: `[key, value]` pairs when `valueCodec` is given, else keys. Typed as the
 * generator it replaces (see {@link RangeIterator} for what it keeps of one). Used by
 * `ZoneTree.range` and `ZoneTree.keys`.
 */
export function rangeIterator<T>(
  engine: TreeEngine,
  open: () => RangeCursor,
  keyCodec: Decoder,
  valueCodec?: Decoder,
): Generator<T, void, undefined> {
  const it = new RangeIterator<T>(engine, open, keyCodec, valueCodec);
  return it as unknown as Generator<T, void, undefined>;
}
