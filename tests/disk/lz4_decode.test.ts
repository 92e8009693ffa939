// The bounds-checked LZ4 decoder used by the disk read path: same output as lz4js on real
// blocks, and `false` (never an exception, a hang or an out-of-bounds write) on any damage.
import { expect, test } from "bun:test";
import { lz4Compress, lz4Decompress } from "../../src/util/lz4.ts";
import { lz4DecodeInto } from "../../src/util/lz4_decode.ts";
import { Prng } from "../../src/util/prng.ts";

function sample(rng: Prng, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    // Runs, repeats at short and long distances, and noise: exercises every copy path.
    const r = rng.next();
    out[i] = r < 0.3 && i > 0
      ? out[i - 1]
      : r < 0.6 && i > 300
      ? out[i - 300]
      : r < 0.8
      ? 0x61 + rng.int(3)
      : rng.int(256);
  }
  return out;
}

test("lz4DecodeInto decodes what lz4Compress wrote, like lz4js does", () => {
  const rng = new Prng(11);
  for (const n of [16, 100, 4096, 40000, 200000]) {
    const raw = sample(rng, n);
    const packed = lz4Compress(raw);
    if (packed === undefined) continue;
    const dst = new Uint8Array(n);
    expect(lz4DecodeInto(packed, 0, packed.length, dst)).toBe(true);
    expect(dst).toEqual(raw);
    expect(lz4Decompress(packed, n)).toEqual(raw);
  }
});

test("lz4DecodeInto returns false for a wrong size, truncation or damaged bytes", () => {
  const rng = new Prng(12);
  const raw = sample(rng, 3000);
  const packed = lz4Compress(raw)!.slice();
  expect(lz4DecodeInto(packed, 0, packed.length, new Uint8Array(2999))).toBe(false);
  expect(lz4DecodeInto(packed, 0, packed.length, new Uint8Array(3001))).toBe(false);
  for (let n = 0; n < packed.length; n++) {
    expect(lz4DecodeInto(packed, 0, n, new Uint8Array(3000))).toBe(false);
  }
  for (let i = 0; i < packed.length; i++) {
    for (const x of [0x01, 0x80, 0xff]) {
      const bad = packed.slice();
      bad[i] ^= x;
      const dst = new Uint8Array(3000);
      // Either rejected, or (a flip inside a literal) decoded to a same-size output: never a throw.
      lz4DecodeInto(bad, 0, bad.length, dst);
    }
  }
});
