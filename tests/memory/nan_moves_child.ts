/**
 * Child process of `run_tree.test.ts`: loads readings whose values read as NaN doubles, with late
 * readings that move records up across pages, and prints how many values came back changed.
 * Its own process, so the moving loop is compiled fresh (a compiled copy through a
 * Float64Array rewrites NaNs; the test runner's process may have compiled it differently).
 */
import { KIND_PUT } from "../../src/iter/record.ts";
import { MutableSegment } from "../../src/memory/mutable_segment.ts";
import { compareBytes } from "../../src/util/bytes.ts";

// The first value sets the room (16 bytes), so all three are kept inline.
const VALUES = [
  Uint8Array.of(1, 2, 3, 4, 5, 6, 0xf8, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0, 0x7f),
  Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
  Uint8Array.of(0, 0, 0, 0, 0, 0, 0xf0, 0xff, 9),
];
/** Key of sensor `s` (a 1-byte prefix) at time `t` (an 8-byte big-endian suffix). */
function key(s: number, t: number): Uint8Array {
  const k = new Uint8Array(9);
  k[0] = s + 1;
  new DataView(k.buffer).setUint32(5, t);
  return k;
}
const seg = new MutableSegment(1, compareBytes, { runSuffixWidth: 8 });
const want = new Map<string, Uint8Array>();
let op = 1;
const put = (k: Uint8Array, v: Uint8Array) => {
  seg.put(k, v, op++, KIND_PUT, 0);
  want.set(k.join(), v);
};
// Readings each followed by a late one 30 readings behind: records move up across page
// boundaries, often enough that the moving loop is compiled.
for (let t = 0; t < 2000; t++) {
  for (let s = 0; s < 3; s++) {
    put(key(s, 2 * t), VALUES[t % 3]);
    if (t >= 30) put(key(s, 2 * (t - 30) + 1), VALUES[(t + 1) % 3]);
  }
}
let changed = 0;
let seen = 0;
const c = seg.cursor(false);
while (c.next()) {
  seen++;
  if (c.value.join() !== want.get(c.key.join())?.join()) changed++;
}
console.log(JSON.stringify({ runs: seg.isRuns, seen, changed }));
