/**
 * lmdb-js driver. Reads are synchronous (`getBinary`, `getRange`), as lmdb-js recommends.
 * Durable: `overlappingSync: false`, so each commit syncs the file before it returns; batches are
 * one `transactionSync`, single records one `putSync` (one synced commit each).
 * Non-durable: `noSync: true` (LMDB never fsyncs; the OS writes the file back). Batches are one
 * `transactionSync` each; single records use the asynchronous `put` that lmdb-js recommends for
 * throughput: it queues the write and commits all writes of one event turn as one transaction on a
 * worker thread; `settle()` waits for that commit.
 */
import { open, type RootDatabase } from "lmdb";
import { createRequire } from "node:module";
import type { Bytes, Driver, OpenOptions, RangeOptions } from "./driver.ts";

const version: string = createRequire(import.meta.url)("lmdb/package.json").version;

export function createDriver(): Driver {
  let db: RootDatabase<Bytes, Bytes>;
  let durable = false;
  let pending: Promise<unknown> | undefined;
  return {
    name: "lmdb",
    version,
    modes: {
      durable: "overlappingSync:false; putSync / transactionSync commit + fdatasync per call",
      nonDurable: "noSync:true; batches transactionSync, singles async put (event-turn txn)",
    },
    open(dir: string, opts: OpenOptions) {
      durable = opts.durable;
      db = open<Bytes, Bytes>({
        path: dir,
        keyEncoding: "binary",
        encoding: "binary",
        compression: false,
        ...(durable ? { overlappingSync: false } : { noSync: true }),
      });
    },
    putBatch(entries) {
      db.transactionSync(() => {
        for (const [k, v] of entries) db.putSync(k, v);
      });
    },
    put(key, value) {
      if (durable) db.putSync(key, value);
      else pending = db.put(key, value);
    },
    async settle() {
      await pending;
      pending = undefined;
    },
    get(key) {
      return db.getBinary(key) ?? undefined;
    },
    range(opts: RangeOptions, visit) {
      // Forward: start inclusive, end exclusive. Reverse walks from start down to end, so the
      // upper bound is the start (made exclusive) and the lower bound the end (made inclusive).
      const range = opts.reverse
        ? {
          start: opts.lt,
          end: opts.gte,
          reverse: true,
          exclusiveStart: !!opts.lt,
          inclusiveEnd: true,
        }
        : { start: opts.gte, end: opts.lt };
      for (
        const { key, value } of db.getRange(
          { ...range, limit: opts.limit } as never,
        )
      ) {
        visit(key as Bytes, value as Bytes);
      }
    },
    async close() {
      await db.close();
    },
  };
}
