/**
 * ZoneTree driver, written against the public API of docs/API.md through `mod.ts` only. Counter
 * keys are one `<bytes:16>` field, so a key is the bare Uint8Array and keeps its memcmp order.
 * Time-series keys use the real keyspace `sensor:<str>:ts:<u64be>`, as a user would: the harness
 * bytes (`sensor 00 00 <u64be>`) become typed keys `[sensor, ts]` in `prepareBatch`, and range
 * bounds typed bounds in `prepareRange`, before the timer, so the timed `batch` and `range` pay
 * our key encoding (the peers get their key bytes ready-made), and ranges yield decoded keys.
 * Stored keys are then 21 bytes, not the 28 that a `<bytes>` field would need to escape the
 * harness bytes' zeros.
 * Durable: `wal: "sync"` (each upsert/batch is synced before it returns). Non-durable: the default
 * `wal: "async-compressed"` (buffered, LZ4, written and synced in the background). Before disk
 * bytes are measured the mutable segment is moved forward and merged (`maintenance.merge()`).
 * Until the engine exports `ZoneTree` this module throws on import and the runner skips it.
 */
import { createRequire } from "node:module";
import * as zonetree from "../../../mod.ts";
import { definedOnly, type Driver, type OpenOptions, type RangeOptions } from "./driver.ts";

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

const TS_LAYOUT = "sensor:<str>:ts:<u64be>";

/**
 * Sensor names by a hash of their bytes: each sensor's name is one string, made once, as a
 * user's sensor ids come from a registry rather than being rebuilt for every reading.
 */
const sensorNames = new Map<number, string>();

/** Whether `name` is the Latin-1 text of `bytes[0, end)`. */
function sameName(name: string, bytes: Uint8Array, end: number): boolean {
  if (name.length !== end) return false;
  for (let i = 0; i < end; i++) if (name.charCodeAt(i) !== bytes[i]) return false;
  return true;
}

/**
 * The typed key (or prefix, without a timestamp) of harness bytes `sensor 00 00 [<u64be>]`.
 * Made before the timer; it allocates only the tuple (no DataView, no spread array, no new
 * string per reading): what it leaves behind is collected during the timed load, and the
 * memory freed then is returned to the OS while our workloads run.
 */
function tsTuple(bytes: Uint8Array): [string] | [string, number] {
  let end = 0;
  let h = 0;
  while (bytes[end] !== 0) h = (Math.imul(h, 31) + bytes[end++]) | 0;
  let sensor = sensorNames.get(h);
  if (sensor === undefined || !sameName(sensor, bytes, end)) {
    // One flat string, as a user's strings are (from JSON, a database, a literal). Built with
    // `+=` a character at a time it would be a rope, and the engine's first read of it (timed)
    // would pay for assembling it: ~370 ns a key, 14% of a load's profile.
    sensor = String.fromCharCode(...bytes.subarray(0, end));
    sensorNames.set(h, sensor);
  }
  if (bytes.length === end + 2) return [sensor];
  const o = end + 2;
  const hi = ((bytes[o] << 24) | (bytes[o + 1] << 16) | (bytes[o + 2] << 8) | bytes[o + 3]) >>> 0;
  const lo = ((bytes[o + 4] << 24) | (bytes[o + 5] << 16) | (bytes[o + 6] << 8) | bytes[o + 7]) >>> 0;
  return [sensor, hi * 0x1_0000_0000 + lo];
}

/**
 * Harness range bounds as typed bounds. `tsPrefixEnd` (`sensor 00 01`) as an upper bound means
 * "after every reading of the sensor": `lte` with the prefix.
 */
function tsBounds(opts: RangeOptions): Record<string, unknown> {
  const out: Record<string, unknown> = { reverse: opts.reverse, limit: opts.limit };
  if (opts.gte) out.gte = tsTuple(opts.gte);
  if (opts.lt) {
    const lt = opts.lt;
    const prefixEnd = lt.length >= 2 && lt[lt.length - 2] === 0 && lt[lt.length - 1] === 1;
    if (prefixEnd) out.lte = tsTuple(Uint8Array.of(...lt.subarray(0, lt.length - 1), 0));
    else out.lt = tsTuple(lt);
  }
  return definedOnly(out);
}

export function createDriver(): Driver {
  // deno-lint-ignore no-explicit-any
  let tree: any;
  let timeSeries = false;
  return {
    name: "zonetree",
    version,
    modes: {
      durable: 'wal: "sync": each upsert/batch synced before it returns',
      nonDurable: 'wal: "async-compressed" (default): buffered, LZ4, synced in the background',
    },
    async open(dir: string, opts: OpenOptions) {
      timeSeries = opts.layout === TS_LAYOUT;
      const keyspace = api.defineKeyspace({
        key: timeSeries ? TS_LAYOUT : opts.keyWidth ? `<bytes:${opts.keyWidth}>` : "<bytes>",
        value: "bytes",
      });
      tree = await api.ZoneTree.open({
        dir,
        keyspace,
        wal: opts.durable ? "sync" : "async-compressed",
      });
    },
    prepareBatch(entries) {
      if (!timeSeries) return undefined;
      return entries.map(([k, v]) => ({ put: tsTuple(k), value: v }));
    },
    putBatch(entries, prepared) {
      if (prepared !== undefined) {
        tree.batch(prepared);
        return;
      }
      const ops = new Array(entries.length);
      for (let i = 0; i < entries.length; i++) {
        ops[i] = { put: entries[i][0], value: entries[i][1] };
      }
      tree.batch(ops);
    },
    put(key, value) {
      tree.upsert(timeSeries ? tsTuple(key) : key, value);
    },
    get(key) {
      return tree.get(timeSeries ? tsTuple(key) : key);
    },
    prepareRange(opts) {
      return timeSeries ? tsBounds(opts) : undefined;
    },
    range(opts, visit, prepared) {
      const bounds = prepared ?? (timeSeries ? tsBounds(opts) : definedOnly(opts));
      for (const [k, v] of tree.range(bounds)) visit(k, v);
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
