/**
 * An event store on one ZoneTree, as the event-store seed describes: streams are ordered key
 * ranges, an append checks the expected version and adds each version key only if it is absent
 * (tryAdd), a global order comes from an atomic counter, and idempotency keys make retried
 * appends harmless. Everything an append writes (events, stream head, global index entries,
 * counter, idempotency key) commits in ONE transaction: one WAL record, so after a crash it is
 * all there or not at all.
 *
 * Key layout (one keyspace, a record kind first):
 *
 *   es:stream:<streamId>:<version>   -> { type, data, seq, requestId? }   the events
 *   es:head:<streamId>:0             -> { version }                       the stream's last version
 *   es:global:"":<seq>               -> { streamId, version }             global order
 *   es:counter:"":0                  -> { seq }                           the last global seq
 *   es:idem:<requestId>:0            -> { streamId, version, seq }        first event of a request
 *
 * Run: bun examples/event_store.ts [dataDir]
 */
import {
  defineKeyspace,
  type OpenOptions,
  type Transaction,
  TransactionConflictError,
  ZoneTree,
} from "../mod.ts";

/** The keyspace of the store. */
export const eventKeyspace = defineKeyspace({
  name: "event-store",
  key: "es:<kind:str>:<id:str>:<n:u64be>",
  value: "json",
});

/** An event to append. */
export interface NewEvent {
  type: string;
  data: unknown;
}

/** A stored event. */
export interface StoredEvent extends NewEvent {
  streamId: string;
  version: number;
  seq: number;
  requestId?: string;
}

/** What an append did. */
export interface AppendResult {
  /** Version of the first appended event (of the original append, for a repeated request). */
  firstVersion: number;
  /** Global seq of the first appended event. */
  firstSeq: number;
  /** True when the requestId had been appended before: nothing was written this time. */
  duplicate: boolean;
}

/** The stream's version differs from the expected one. */
export class WrongExpectedVersionError extends Error {
  constructor(readonly streamId: string, readonly expected: number, readonly actual: number) {
    super(`stream ${streamId}: expected version ${expected}, but it is at ${actual}`);
    this.name = "WrongExpectedVersionError";
  }
}

type Tree = ZoneTree<
  { kind: string; id: string; n: bigint },
  unknown,
  [string, string, number | bigint],
  unknown
>;
type Tx = Transaction<
  { kind: string; id: string; n: bigint },
  unknown,
  [string, string, number | bigint]
>;

/** Adds `key` inside `tx` only if it is absent: tryAdd with the transaction's conflict check. */
function txTryAdd(tx: Tx, key: [string, string, number | bigint], value: unknown): boolean {
  if (tx.get(key) !== undefined) return false;
  tx.upsert(key, value);
  return true;
}

/** An event store over one tree. */
export class EventStore {
  private constructor(readonly tree: Tree) {}

  /** Opens (or creates) the store in `dir`. */
  static async open(
    dir: string,
    options: Omit<OpenOptions, "dir" | "keyspace"> = {},
  ): Promise<EventStore> {
    const tree = await ZoneTree.open({ ...options, dir, keyspace: eventKeyspace });
    return new EventStore(tree as unknown as Tree);
  }

  /** The stream's last version (0: no events). */
  version(streamId: string): number {
    return (this.tree.get(["head", streamId, 0]) as { version: number } | undefined)?.version ?? 0;
  }

  /**
   * Appends `events` to `streamId` if it is at `expectedVersion` (0 for a new stream). With a
   * `requestId` that was appended before, returns the first append's result and writes nothing.
   * Retries transaction conflicts (another task appended meanwhile) up to `retries` times; the
   * expected version is checked again on each try.
   */
  append(
    streamId: string,
    expectedVersion: number,
    events: readonly NewEvent[],
    requestId?: string,
    retries = 10,
  ): AppendResult {
    for (let attempt = 0;; attempt++) {
      try {
        return this.#tryAppend(streamId, expectedVersion, events, requestId);
      } catch (e) {
        if (!(e instanceof TransactionConflictError) || attempt >= retries) throw e;
      }
    }
  }

  #tryAppend(
    streamId: string,
    expectedVersion: number,
    events: readonly NewEvent[],
    requestId?: string,
  ): AppendResult {
    if (events.length === 0) throw new Error("append: no events");
    const tx = this.tree.transaction() as unknown as Tx;
    if (requestId !== undefined) {
      const seen = tx.get(["idem", requestId, 0]) as { version: number; seq: number } | undefined;
      if (seen) {
        tx.rollback();
        return { firstVersion: seen.version, firstSeq: seen.seq, duplicate: true };
      }
    }
    const head = (tx.get(["head", streamId, 0]) as { version: number } | undefined)?.version ?? 0;
    if (head !== expectedVersion) {
      tx.rollback();
      throw new WrongExpectedVersionError(streamId, expectedVersion, head);
    }
    const counter = (tx.get(["counter", "", 0]) as { seq: number } | undefined)?.seq ?? 0;
    events.forEach((event, i) => {
      const version = head + 1 + i;
      const seq = counter + 1 + i;
      const stored = {
        type: event.type,
        data: event.data,
        seq,
        ...(requestId ? { requestId } : {}),
      };
      // A version key is written once: if it exists the head is stale, which the head check
      // above already rules out (and the commit re-checks).
      if (!txTryAdd(tx, ["stream", streamId, version], stored)) {
        throw new WrongExpectedVersionError(streamId, expectedVersion, version);
      }
      tx.upsert(["global", "", seq], { streamId, version });
    });
    tx.upsert(["head", streamId, 0], { version: head + events.length });
    tx.upsert(["counter", "", 0], { seq: counter + events.length });
    if (requestId !== undefined) {
      tx.upsert(["idem", requestId, 0], { streamId, version: head + 1, seq: counter + 1 });
    }
    tx.commit();
    return { firstVersion: head + 1, firstSeq: counter + 1, duplicate: false };
  }

  /** The events of one stream from `fromVersion` on, in version order (a seek, then a scan). */
  *readStream(streamId: string, fromVersion = 1): Generator<StoredEvent> {
    for (
      const [key, value] of this.tree.range({
        gte: ["stream", streamId, fromVersion],
        prefix: ["stream", streamId],
      })
    ) {
      yield {
        ...(value as Omit<StoredEvent, "streamId" | "version">),
        streamId,
        version: Number(key.n),
      };
    }
  }

  /** Every event in global order from `fromSeq` on. */
  *readAll(fromSeq = 1): Generator<StoredEvent> {
    for (
      const [key, value] of this.tree.range({
        gte: ["global", "", fromSeq],
        prefix: ["global", ""],
      })
    ) {
      const { streamId, version } = value as { streamId: string; version: number };
      const event = this.tree.get(["stream", streamId, version]) as Omit<
        StoredEvent,
        "streamId" | "version"
      >;
      yield { ...event, streamId, version, seq: Number(key.n) };
    }
  }

  /** Stream ids, in order. */
  *streams(): Generator<string> {
    for (const key of this.tree.keys({ prefix: ["head"] })) yield key.id;
  }

  /**
   * Checks the invariants a crash must not break; returns the problems found (empty: none).
   * Per-stream versions are 1..head with no gap; the global index and the stream events match
   * one to one (seq 1..counter); every idempotency key points at an existing event.
   */
  verify(): string[] {
    const problems: string[] = [];
    const seqs = new Map<number, string>();
    let events = 0;
    for (const streamId of this.streams()) {
      const head = this.version(streamId);
      let expected = 1;
      for (const e of this.readStream(streamId)) {
        if (e.version !== expected) {
          problems.push(`${streamId}: version ${e.version} where ${expected} was expected`);
        }
        expected = e.version + 1;
        seqs.set(e.seq, `${streamId}@${e.version}`);
        events++;
      }
      if (expected - 1 !== head) {
        problems.push(`${streamId}: head says ${head}, last event is ${expected - 1}`);
      }
    }
    const counter = (this.tree.get(["counter", "", 0]) as { seq: number } | undefined)?.seq ?? 0;
    let globals = 0;
    for (const [key, value] of this.tree.range({ prefix: ["global", ""] })) {
      globals++;
      const seq = Number(key.n);
      const { streamId, version } = value as { streamId: string; version: number };
      if (seqs.get(seq) !== `${streamId}@${version}`) {
        problems.push(
          `global ${seq} -> ${streamId}@${version}, but that event has seq ${
            JSON.stringify([...seqs].find(([, v]) => v === `${streamId}@${version}`)?.[0])
          }`,
        );
      }
      if (seq !== globals) problems.push(`global seq ${seq} where ${globals} was expected`);
    }
    if (globals !== events) problems.push(`${globals} global entries for ${events} events`);
    if (counter !== globals) problems.push(`counter ${counter}, ${globals} global entries`);
    for (const [key, value] of this.tree.range({ prefix: ["idem"] })) {
      const { streamId, version } = value as { streamId: string; version: number };
      const event = this.tree.get(["stream", streamId, version]) as
        | { requestId?: string }
        | undefined;
      if (!event) {
        problems.push(`idempotency key ${key.id} points at missing ${streamId}@${version}`);
      } else if (event.requestId !== key.id) {
        problems.push(`idempotency key ${key.id} points at an event of ${event.requestId}`);
      }
    }
    return problems;
  }

  /** Flushes the WAL. */
  flush(): Promise<void> {
    return this.tree.flush();
  }

  /** Closes the store. */
  close(): Promise<void> {
    return this.tree.close();
  }
}

if (import.meta.main) {
  const nodeFs = await import("node:fs");
  const os = await import("node:os");
  const dir = process.argv[2] ?? nodeFs.mkdtempSync(`${os.tmpdir()}/zt-event-store-`);
  const store = await EventStore.open(dir);
  const order = store.append(
    "order-123",
    0,
    [{ type: "OrderPlaced", data: { total: 42 } }],
    "req-1",
  );
  store.append("order-123", 1, [{ type: "OrderPaid", data: { amount: 42 } }, {
    type: "OrderShipped",
    data: {},
  }], "req-2");
  store.append("cart-9", 0, [{ type: "ItemAdded", data: { sku: "A" } }]);
  // A retried request: nothing is written twice.
  const retry = store.append(
    "order-123",
    0,
    [{ type: "OrderPlaced", data: { total: 42 } }],
    "req-1",
  );
  console.log(
    `retry of req-1: duplicate=${retry.duplicate}, same first version=${
      retry.firstVersion === order.firstVersion
    }`,
  );
  try {
    store.append("order-123", 1, [{ type: "OrderCancelled", data: {} }]);
  } catch (e) {
    console.log(`stale writer rejected: ${(e as Error).message}`);
  }
  for (const e of store.readStream("order-123")) {
    console.log(`order-123 v${e.version} ${e.type} (global ${e.seq})`);
  }
  for (const e of store.readAll()) {
    console.log(`global ${e.seq}: ${e.streamId} v${e.version} ${e.type}`);
  }
  const problems = store.verify();
  console.log(problems.length === 0 ? "invariants hold" : problems.join("\n"));
  await store.close();
  if (process.argv[2] === undefined) nodeFs.rmSync(dir, { recursive: true, force: true });
  if (problems.length > 0) process.exit(1);
}
