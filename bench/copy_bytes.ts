/**
 * How to copy a short run of bytes into a new array (a key or value handed to a caller): a byte
 * loop, a loop of four bytes a step, `slice`, and the engine's `copyOf` (`src/util/bytes.ts`),
 * which takes the four-byte loop up to its `COPY_LOOP_MAX` bytes and `slice` above.
 *
 *   bun bench/copy_bytes.ts
 *   deno run -A bench/copy_bytes.ts
 *
 * 1,000,000 copies per size and way, from consecutive places of a 64 MiB buffer (as a scan
 * reads), three rounds, ns per copy of the best round. Seen in Bun 1.4.5 on the 2-core VM
 * (2026-12-07), byte loop / four a step / slice: 24 bytes 27 / 25 / 33 ns; 64 bytes 38 / 32 /
 * 32 ns; 100 bytes 53 / 44 / 34 ns; 200 bytes 106 / 80 / 47 ns. A full scan of a 1M-record
 * in-memory tree of 100-byte values took a median 141 / 146 ms forward / reverse against 165 /
 * 177 ms when `copyOf` moved from a byte loop up to 128 bytes to this (`A=<f1cbad0 checkout>
 * B=. bun bench/ab_checkouts.ts scan`, 8 rounds).
 */
import { copyOf } from "../src/util/bytes.ts";
import { RUNTIME } from "./bench_common.ts";

const SRC = new Uint8Array(64 << 20).map((_, i) => i * 7);
const N = 1_000_000;
const STEP = 112;
let sink = 0;

function byteLoop(src: Uint8Array, s: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = src[s + i];
  return out;
}

function fourAStep(src: Uint8Array, s: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    out[i] = src[s + i];
    out[i + 1] = src[s + i + 1];
    out[i + 2] = src[s + i + 2];
    out[i + 3] = src[s + i + 3];
  }
  for (; i < n; i++) out[i] = src[s + i];
  return out;
}

function slice(src: Uint8Array, s: number, n: number): Uint8Array {
  return src.slice(s, s + n);
}

function engine(src: Uint8Array, s: number, n: number): Uint8Array {
  return copyOf(src, s, s + n);
}

const ways = { "byte loop": byteLoop, "four a step": fourAStep, slice, copyOf: engine };
console.log(`${RUNTIME}: ns per copy (best of 3 rounds of ${N.toLocaleString("en-US")})`);
for (const n of [8, 16, 24, 40, 64, 100, 200]) {
  const row: string[] = [];
  for (const [name, copy] of Object.entries(ways)) {
    let best = Infinity;
    for (let r = 0; r < 3; r++) {
      const t = performance.now();
      for (let i = 0, s = 0; i < N; i++, s = (s + STEP) % (SRC.length - 256)) {
        sink += copy(SRC, s, n)[n - 1];
      }
      best = Math.min(best, performance.now() - t);
    }
    row.push(`${name} ${(best * 1e6 / N).toFixed(0)}`);
  }
  console.log(`${String(n).padStart(3)} bytes: ${row.join(", ")}`);
}
if (sink === 0.5) console.log(sink);
