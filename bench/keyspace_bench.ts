/**
 * Keyspace throughput: encode, decode and compare for a variable-width layout
 * (`sensor:<str>:ts:<u64be>`) and a fixed-width one (`metric:<u32be>:ts:<u64be:desc>`), against
 * baselines in the same run: `Buffer.compare` and a plain JS byte loop on the same bytes, and
 * string / JSON keys compared with `<`.
 *
 * Every benchmark does 1000 operations per iteration (so the numbers are per 1000 ops).
 * Run: `bun bench/keyspace_bench.ts` or `deno run -A bench/keyspace_bench.ts`.
 */
import { Buffer } from "node:buffer";
import { bench, do_not_optimize, group, run, summary } from "mitata";
import { defineKeyspace } from "../src/keyspace/define_keyspace.ts";
import { compareBytes } from "../src/util/bytes.ts";
import { Prng } from "../src/util/prng.ts";

const OPS = 1000;
const prng = new Prng(42);
const BASE_TS = 1_700_000_000_000;

const sensors = defineKeyspace({
  key: "sensor:<str>:ts:<u64be>",
  value: { temp: "f64", humidity: "f32" },
});
const metrics = defineKeyspace({ key: "metric:<u32be>:ts:<u64be:desc>", value: "f64" });

// Keys with realistic sharing: few sensors/metrics, close timestamps, so compares often run
// past the first field (the expensive case).
const sensorKeys = Array.from({ length: OPS }, () => ({
  sensor: `sensor-${prng.int(50)}`,
  ts: BASE_TS + prng.int(1_000_000),
}));
const metricKeys = Array.from(
  { length: OPS },
  () => ({ metric: prng.int(50), ts: BASE_TS + prng.int(1_000_000) }),
);
const sensorTuples = sensorKeys.map((k) => [k.sensor, k.ts] as const);

const sensorBytes = sensorKeys.map((k) => sensors.key.encode(k));
const metricBytes = metricKeys.map((k) => metrics.key.encode(k));
const sensorBuffers = sensorBytes.map((b) => Buffer.from(b));
const metricBuffers = metricBytes.map((b) => Buffer.from(b));

// String keys a user might build instead: zero-padded so `<` orders them (desc ts inverted).
const pad = (n: number, w: number) => String(n).padStart(w, "0");
const sensorStrings = sensorKeys.map((k) => `sensor:${k.sensor}:ts:${pad(k.ts, 16)}`);
const metricStrings = metricKeys.map((k) =>
  `metric:${pad(k.metric, 10)}:ts:${pad(9_999_999_999_999_999 - k.ts, 16)}`
);
const sensorJson = sensorKeys.map((k) => JSON.stringify([k.sensor, k.ts]));

// Pairs to compare: random pairs of the 1000 keys, and neighbours in sorted order (long common
// prefixes, as in binary search, merges and sorting).
const randomPairs = new Uint32Array(OPS * 2);
for (let i = 0; i < OPS * 2; i++) randomPairs[i] = prng.int(OPS);
function neighbourPairs<T>(keys: readonly T[], cmp: (a: T, b: T) => number): Uint32Array {
  const order = keys.map((_, i) => i).sort((x, y) => cmp(keys[x], keys[y]));
  const out = new Uint32Array(OPS * 2);
  for (let i = 0; i < OPS; i++) {
    out[2 * i] = order[i];
    out[2 * i + 1] = order[Math.min(i + 1, OPS - 1)];
  }
  return out;
}

type Cmp<T> = (a: T, b: T) => number;
/**
 * A compare loop of its own for each comparer (built with `new Function`, so every benchmark
 * has its own call site: a call site shared by several comparers would go megamorphic and
 * penalise the inlinable ones). The pairs are laid out as two flat arrays of keys (`left[i]`
 * against `right[i]`) so the loop itself costs about 1 ns per compare; an indirection through
 * an index array cost ~9 ns in Bun and drowned the comparers in harness time.
 */
function compareLoop<T>(cmp: Cmp<T>, keys: readonly T[], pairs: Uint32Array): () => number {
  const left: T[] = [];
  const right: T[] = [];
  for (let i = 0; i < pairs.length; i += 2) {
    left.push(keys[pairs[i]]);
    right.push(keys[pairs[i + 1]]);
  }
  return new Function(
    "cmp",
    "left",
    "right",
    "return function () { let acc = 0; const n = left.length; for (let i = 0; i < n; i++) acc += cmp(left[i], right[i]); return acc; };",
  )(cmp, left, right);
}

const lt = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const noop: Cmp<unknown> = () => 0;

/** The compare loops of one layout and pairing, by label. */
function compareLoops(
  ks: typeof metrics | typeof sensors,
  bytes: Uint8Array[],
  buffers: Buffer[],
  strings: string[],
  pairs: Uint32Array,
): Record<string, () => number> {
  return {
    "keyspace.key.compare": compareLoop(ks.key.compare, bytes, pairs),
    "Buffer.compare (same bytes)": compareLoop(Buffer.compare, buffers, pairs),
    "JS byte loop (util compareBytes)": compareLoop(compareBytes, bytes, pairs),
    "string keys with <": compareLoop(lt, strings, pairs),
    "no-op comparer (harness overhead)": compareLoop(noop, bytes, pairs),
  };
}

const layouts = [
  [
    "metric:<u32be>:ts:<u64be:desc> (fixed, 12 bytes)",
    metrics,
    metricBytes,
    metricBuffers,
    metricStrings,
  ],
  ["sensor:<str>:ts:<u64be> (variable)", sensors, sensorBytes, sensorBuffers, sensorStrings],
] as const;
const compareCases: [string, Record<string, () => number>][] = [];
for (const [name, ks, bytes, buffers, strings] of layouts) {
  const sorted = neighbourPairs(bytes, compareBytes);
  for (
    const [pairing, pairs] of [["random pairs", randomPairs], [
      "sorted neighbours",
      sorted,
    ]] as const
  ) {
    const title = `compare x${OPS}, ${pairing}: ${name}`;
    const loops = compareLoops(ks, bytes, buffers, strings, pairs);
    compareCases.push([title, loops]);
    group(title, () => {
      summary(() => {
        for (const [label, loop] of Object.entries(loops)) {
          bench(label, () => do_not_optimize(loop()));
        }
      });
    });
  }
}

group(`compare x${OPS}, random pairs: JSON keys`, () => {
  const loop = compareLoop(lt, sensorJson, randomPairs);
  bench("JSON.stringify([sensor, ts]) keys with <", () => do_not_optimize(loop()));
});

group(`encode x${OPS}`, () => {
  summary(() => {
    bench("metric key.encode(object)", () => {
      for (let i = 0; i < OPS; i++) do_not_optimize(metrics.key.encode(metricKeys[i]));
    });
    bench("sensor key.encode(object)", () => {
      for (let i = 0; i < OPS; i++) do_not_optimize(sensors.key.encode(sensorKeys[i]));
    });
    bench("sensor key.encode(tuple)", () => {
      for (let i = 0; i < OPS; i++) do_not_optimize(sensors.key.encode(sensorTuples[i]));
    });
    bench("baseline: string key template", () => {
      for (let i = 0; i < OPS; i++) {
        do_not_optimize(`sensor:${sensorKeys[i].sensor}:ts:${pad(sensorKeys[i].ts, 16)}`);
      }
    });
    bench("baseline: JSON.stringify key", () => {
      for (let i = 0; i < OPS; i++) {
        do_not_optimize(JSON.stringify([sensorKeys[i].sensor, sensorKeys[i].ts]));
      }
    });
  });
});

group(`decode x${OPS}`, () => {
  summary(() => {
    bench("metric key.decode", () => {
      for (let i = 0; i < OPS; i++) do_not_optimize(metrics.key.decode(metricBytes[i]));
    });
    bench("sensor key.decode", () => {
      for (let i = 0; i < OPS; i++) do_not_optimize(sensors.key.decode(sensorBytes[i]));
    });
    bench("baseline: JSON.parse key", () => {
      for (let i = 0; i < OPS; i++) do_not_optimize(JSON.parse(sensorJson[i]));
    });
  });
});

group(`value codec x${OPS}`, () => {
  const v = { temp: 21.5, humidity: 0.5 };
  const enc = sensors.value.encode(v);
  bench("struct {temp: f64, humidity: f32} encode", () => {
    for (let i = 0; i < OPS; i++) do_not_optimize(sensors.value.encode(v));
  });
  bench("struct decode", () => {
    for (let i = 0; i < OPS; i++) do_not_optimize(sensors.value.decode(enc));
  });
});

await run();

/**
 * A second view of the compare numbers that survives a busy machine: the minimum over many
 * repetitions (contention only ever adds time), with the harness overhead (the no-op
 * comparer) subtracted, so the ratio is comparer cost against comparer cost.
 */
function minMicros(fn: () => number, repetitions = 2000): number {
  let best = Infinity;
  for (let r = 0; r < repetitions; r++) {
    const t = performance.now();
    do_not_optimize(fn());
    best = Math.min(best, performance.now() - t);
  }
  return best * 1000;
}

console.log("\nmin of 2000 runs, µs per 1000 compares (net = minus the no-op harness loop):");
for (const [title, loops] of compareCases) {
  const overhead = minMicros(loops["no-op comparer (harness overhead)"]);
  const ours = minMicros(loops["keyspace.key.compare"]);
  const buffer = minMicros(loops["Buffer.compare (same bytes)"]);
  const net = (x: number) => Math.max(x - overhead, 0.01);
  console.log(
    `${title}\n  key.compare ${ours.toFixed(1)} (net ${net(ours).toFixed(1)}), ` +
      `Buffer.compare ${buffer.toFixed(1)} (net ${net(buffer).toFixed(1)}), harness ${
        overhead.toFixed(1)
      }; ` +
      `Buffer/key.compare: ${(buffer / ours).toFixed(2)}x gross, ${
        (net(buffer) / net(ours)).toFixed(2)
      }x net`,
  );
}
