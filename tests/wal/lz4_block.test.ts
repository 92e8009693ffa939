// src/util/lz4_block.ts (the WAL's compressor): its blocks decode with lz4Decompress (lz4js),
// it never writes outside its output window, and it declines when output would not be smaller.
import { expect, test } from "bun:test";
import { lz4Decompress } from "../../src/util/lz4.ts";
import { lz4BlockBound, lz4CompressInto } from "../../src/util/lz4_block.ts";
import { Prng } from "../../src/util/prng.ts";

function sample(prng: Prng, n: number): Uint8Array {
  const out = new Uint8Array(n);
  const alphabet = 1 + prng.int(256);
  let i = 0;
  while (i < n) {
    if (i > 8 && prng.int(3) === 0) {
      // A copy of earlier bytes: something for the matcher to find, sometimes overlapping.
      const dist = 1 + prng.int(Math.min(i, 70_000));
      const len = Math.min(n - i, 1 + prng.int(300));
      for (let k = 0; k < len; k++, i++) out[i] = out[i - dist];
    } else {
      const len = Math.min(n - i, 1 + prng.int(40));
      for (let k = 0; k < len; k++) out[i++] = prng.int(alphabet);
    }
  }
  return out;
}

test("random inputs round-trip through lz4Decompress and stay inside their window", () => {
  const seed = 4242;
  const prng = new Prng(seed);
  let compressed = 0;
  for (let round = 0; round < 400; round++) {
    const n = prng.int(4) === 0 ? prng.int(200_000) : prng.int(2000);
    const lead = prng.int(20);
    const src = new Uint8Array(lead + n + 7).fill(0xee);
    src.set(sample(prng, n), lead);
    const dstStart = prng.int(16);
    const dst = new Uint8Array(dstStart + lz4BlockBound(n) + 8).fill(0xaa);
    const written = lz4CompressInto(src, lead, lead + n, dst, dstStart);
    const why = `seed ${seed} round ${round} n ${n}`;
    expect(dst.subarray(0, dstStart).every((b) => b === 0xaa), why).toBe(true);
    if (written < 0) continue;
    compressed++;
    expect(written, why).toBeLessThan(n);
    expect(dst.subarray(dstStart + written).every((b) => b === 0xaa), why).toBe(true);
    const back = lz4Decompress(dst.subarray(dstStart, dstStart + written), n);
    expect(back, why).toEqual(src.subarray(lead, lead + n));
  }
  expect(compressed).toBeGreaterThan(200);
});

test("incompressible and tiny inputs are declined; a zero run compresses hard", () => {
  const prng = new Prng(1);
  const noise = prng.bytes(100_000);
  expect(lz4CompressInto(noise, 0, noise.length, new Uint8Array(lz4BlockBound(100_000)), 0)).toBe(
    -1,
  );
  expect(lz4CompressInto(new Uint8Array(10), 0, 10, new Uint8Array(64), 0)).toBe(-1);
  const zeros = new Uint8Array(1 << 20);
  const dst = new Uint8Array(lz4BlockBound(zeros.length));
  const n = lz4CompressInto(zeros, 0, zeros.length, dst, 0);
  expect(n).toBeGreaterThan(0);
  expect(n).toBeLessThan(5000);
  expect(lz4Decompress(dst.subarray(0, n), zeros.length)).toEqual(zeros);
});
