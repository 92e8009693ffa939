/**
 * What a small array costs per runtime, and what pooled copies (`src/util/bytes.ts`) save:
 *
 *   deno run -A bench/small_copies.ts
 *   bun bench/small_copies.ts
 *
 * First 300,000 allocations each of: a fresh 16-byte `Uint8Array` filled in a loop, a 16-byte
 * view of a shared 8 KiB buffer, and `copyOf` of 16 and 100 bytes with pooling off and on. Then
 * a tree of 300,000 records (16-byte keys, 100-byte values, in memory) scanned with `range` and
 * `keys`, and read with 300,000 `get`s, with pooling off and on (in that order, in one process;
 * the runtime's default is printed). Three rounds each; ms per round.
 */
import { defineKeyspace, memoryFileSystem, ZoneTree } from "../mod.ts";
import { copyOf, RUNTIME_POOLS_COPIES, setPooledCopies } from "../src/util/bytes.ts";
import { RUNTIME } from "./bench_common.ts";
import { counterData } from "./peers/data.ts";

const N = 300_000;
console.log(`${RUNTIME}: copies pooled by default: ${RUNTIME_POOLS_COPIES}`);

const src = new Uint8Array(1 << 20).map((_, i) => i * 7);
let sink = 0;
function time(label: string, f: () => void): void {
  const ms: string[] = [];
  for (let r = 0; r < 3; r++) {
    const t = performance.now();
    f();
    ms.push((performance.now() - t).toFixed(1));
  }
  console.log(`${label.padEnd(34)} ${ms.join(" / ")} ms`);
}

time("new Uint8Array(16) + loop", () => {
  for (let i = 0; i < N; i++) {
    const o = new Uint8Array(16);
    for (let k = 0; k < 16; k++) o[k] = src[i + k];
    sink += o[3];
  }
});
time("16-byte view of an 8 KiB buffer", () => {
  let slab = new ArrayBuffer(8192);
  let used = 0;
  for (let i = 0; i < N; i++) {
    if (used + 16 > 8192) {
      slab = new ArrayBuffer(8192);
      used = 0;
    }
    const o = new Uint8Array(slab, used, 16);
    used += 16;
    sink += o.length;
  }
});
for (const pooled of [false, true]) {
  setPooledCopies(pooled);
  for (const n of [16, 100]) {
    time(`copyOf ${n} bytes, pooled ${pooled}`, () => {
      for (let i = 0; i < N; i++) sink += copyOf(src, i, i + n)[1];
    });
  }
}

const { keys, values } = counterData(N, 100, 1);
const tree = await ZoneTree.open({
  dir: "/bench",
  fs: memoryFileSystem(),
  keyspace: defineKeyspace({ key: "<bytes:16>", value: "bytes" }),
  maintenance: "manual",
});
for (let b = 0; b < N; b += 1000) {
  const ops = [];
  for (let i = b; i < b + 1000; i++) ops.push({ put: keys[i], value: values[i] });
  tree.batch(ops);
}
for (const pooled of [false, true]) {
  setPooledCopies(pooled);
  time(`range of ${N}, pooled ${pooled}`, () => {
    for (const [k, v] of tree.range({})) sink += k[0] + v[0];
  });
  time(`keys of ${N}, pooled ${pooled}`, () => {
    for (const k of tree.keys({})) sink += k[0];
  });
  time(`${N} gets, pooled ${pooled}`, () => {
    for (let i = 0; i < N; i++) sink += tree.get(keys[(i * 7919) % N])![0];
  });
}
setPooledCopies(RUNTIME_POOLS_COPIES);
await tree.close();
if (sink === 0.5) console.log(sink);
