/**
 * ZoneTree driver, written against the public API of docs/API.md through `mod.ts` only. Keys are
 * a single bytes field (`<bytes:16>` for the counter workloads, variable `<bytes>` for the
 * time-series keys), so a key is the bare Uint8Array and keeps its memcmp order.
 * Durable: `wal: "sync"` (each upsert/batch is synced before it returns). Non-durable: the default
 * `wal: "async-compressed"` (buffered, LZ4, written and synced in the background). Before disk
 * bytes are measured the mutable segment is moved forward and merged (`maintenance.merge()`).
 * Until the engine exports `ZoneTree` this module throws on import and the runner skips it.
 */
import { createRequire } from "node:module";
import * as zonetree from "../../../mod.ts";
import { definedOnly, type Driver, type OpenOptions } from "./driver.ts";

// deno-lint-ignore no-explicit-any
const api = zonetree as any;
if (
  typeof api.ZoneTree?.open !== "function" ||
  typeof api.defineKeyspace !== "function"
) {
  throw new Error(
    "mod.ts does not export ZoneTree.open and defineKeyspace yet",
  );
}
const version: string = createRequire(import.meta.url)("../../../package.json").version;

export function createDriver(): Driver {
  // deno-lint-ignore no-explicit-any
  let tree: any;
  return {
    name: "zonetree",
    version,
    modes: {
      durable: 'wal: "sync": each upsert/batch synced before it returns',
      nonDurable: 'wal: "async-compressed" (default): buffered, LZ4, synced in the background',
    },
    async open(dir: string, opts: OpenOptions) {
      const keyspace = api.defineKeyspace({
        key: opts.keyWidth ? `<bytes:${opts.keyWidth}>` : "<bytes>",
        value: "bytes",
      });
      tree = await api.ZoneTree.open({
        dir,
        keyspace,
        wal: opts.durable ? "sync" : "async-compressed",
      });
    },
    putBatch(entries) {
      const ops = new Array(entries.length);
      for (let i = 0; i < entries.length; i++) {
        ops[i] = { put: entries[i][0], value: entries[i][1] };
      }
      tree.batch(ops);
    },
    put(key, value) {
      tree.upsert(key, value);
    },
    get(key) {
      return tree.get(key);
    },
    range(opts, visit) {
      for (const [k, v] of tree.range(definedOnly(opts))) visit(k, v);
    },
    async compact() {
      tree.maintenance.moveMutableSegmentForward();
      await tree.maintenance.merge();
    },
    async close() {
      await tree.close();
    },
  };
}
