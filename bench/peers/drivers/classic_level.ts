/**
 * classic-level (LevelDB) driver, with `view` encodings so keys and values stay raw bytes.
 * Writes are asynchronous (the work runs on the libuv thread pool): batches are one `batch()`
 * call, single records one awaited `put()`. Durable: `{ sync: true }` on every write, so LevelDB
 * fsyncs its log before the call resolves. Non-durable: the default `sync: false`, the log is
 * written to the OS and never fsynced per write. Point reads use `getSync` (README: "can be
 * significantly faster than db.get()"); ranges read with `iterator().nextv(1000)`.
 */
import { ClassicLevel } from "classic-level";
import { createRequire } from "node:module";
import { type Bytes, definedOnly, type Driver, type OpenOptions } from "./driver.ts";

const version: string = createRequire(import.meta.url)("classic-level/package.json").version;
const VIEW = { keyEncoding: "view", valueEncoding: "view" } as const;

export function createDriver(): Driver {
  let db: ClassicLevel<Bytes, Bytes>;
  let writeOptions = { sync: false };
  return {
    name: "classic-level",
    version,
    modes: {
      durable: "batch/put with { sync: true }: LevelDB fsyncs its log before resolving",
      nonDurable: "default { sync: false }: log written to the OS, no fsync",
    },
    async open(dir: string, opts: OpenOptions) {
      writeOptions = { sync: opts.durable };
      db = new ClassicLevel<Bytes, Bytes>(dir, VIEW);
      await db.open();
    },
    putBatch(entries) {
      const ops = new Array(entries.length);
      for (let i = 0; i < entries.length; i++) {
        ops[i] = { type: "put", key: entries[i][0], value: entries[i][1] };
      }
      return db.batch(ops, writeOptions);
    },
    put(key, value) {
      return db.put(key, value, writeOptions);
    },
    get(key) {
      return db.getSync(key);
    },
    async range(opts, visit) {
      const it = db.iterator(definedOnly(opts));
      try {
        for (;;) {
          const entries = await it.nextv(1000);
          if (entries.length === 0) break;
          for (const [k, v] of entries) visit(k, v);
        }
      } finally {
        await it.close();
      }
    },
    async compact() {
      await db.compactRange(new Uint8Array(0), new Uint8Array(64).fill(0xff));
    },
    async close() {
      await db.close();
    },
  };
}
