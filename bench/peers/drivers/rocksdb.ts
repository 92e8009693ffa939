/**
 * rocksdb (the `rocksdb` npm package, a leveldown-style binding) driver. Its API is callback
 * based and asynchronous (libuv thread pool), with Buffers in and out. Batches are one `batch()`
 * call, single records one awaited `put()`, reads one awaited `get()` (there is no synchronous
 * get), ranges its iterator (which fetches entries from C++ in chunks of `highWaterMark` bytes).
 * Durable: `{ sync: true }` on every write (WAL fsynced before the callback). Non-durable: the
 * default `sync: false` (WAL written to the OS, no fsync). The binding stringifies anything that
 * is not a Buffer, so keys and values are wrapped as Buffer views (no copy) on the way in.
 */
import { createRequire } from "node:module";
import { type Bytes, definedOnly, type Driver, type OpenOptions, promisify } from "./driver.ts";

const require = createRequire(import.meta.url);
const version: string = require("rocksdb/package.json").version;
// deno-lint-ignore no-explicit-any
type Db = any;

/** A Buffer over the same bytes (the binding stringifies a plain Uint8Array). */
function buf(u: Bytes): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

export function createDriver(): Driver {
  const rocksdb = require("rocksdb");
  let db: Db;
  let writeOptions = { sync: false };
  const asBuffer = { asBuffer: true };
  return {
    name: "rocksdb",
    version,
    modes: {
      durable: "batch/put with { sync: true }: WAL fsynced before the callback",
      nonDurable: "default { sync: false }: WAL written to the OS, no fsync",
    },
    async open(dir: string, opts: OpenOptions) {
      writeOptions = { sync: opts.durable };
      db = rocksdb(dir);
      await promisify((cb) => db.open({ createIfMissing: true }, cb));
    },
    putBatch(entries) {
      const ops = new Array(entries.length);
      for (let i = 0; i < entries.length; i++) {
        ops[i] = {
          type: "put",
          key: buf(entries[i][0]),
          value: buf(entries[i][1]),
        };
      }
      return promisify<void>((cb) => db.batch(ops, writeOptions, cb));
    },
    put(key, value) {
      return promisify<void>((cb) => db.put(buf(key), buf(value), writeOptions, cb));
    },
    get(key) {
      return new Promise<Bytes | undefined>((resolve, reject) => {
        db.get(
          buf(key),
          asBuffer,
          (err: { code?: string } | null, value: Bytes) => {
            if (err) {
              err.code === "LEVEL_NOT_FOUND" || /NotFound/.test(String(err))
                ? resolve(undefined)
                : reject(err);
            } else resolve(value);
          },
        );
      });
    },
    range(opts, visit) {
      const bounds = {
        gte: opts.gte && buf(opts.gte),
        lt: opts.lt && buf(opts.lt),
      };
      const it = db.iterator({
        ...definedOnly({ ...opts, ...bounds }),
        highWaterMark: 64 * 1024,
      });
      return new Promise<void>((resolve, reject) => {
        const step = (err: unknown, key?: Bytes, value?: Bytes): void => {
          if (err || key === undefined) {
            it.end((
              endErr: unknown,
            ) => (err || endErr ? reject(err ?? endErr) : resolve()));
            return;
          }
          visit(key, value!);
          it.next(step);
        };
        it.next(step);
      });
    },
    async compact() {
      await promisify((cb) => db.compactRange(Buffer.alloc(1, 0), Buffer.alloc(64, 0xff), cb));
    },
    async close() {
      await promisify((cb) => db.close(cb));
    },
  };
}
