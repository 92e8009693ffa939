// The bounds-checked LZ4 decoder used by the disk read path: same output as lz4js on real
// blocks, and `false` (never an exception, a hang or an out-of-bounds write) on any damage.
import { expect, test } from "bun:test";
import { lz4Compress, lz4Decompress } from "../../src/util/lz4.ts";
import { lz4DecodeInto, lz4PlausiblePrefix } from "../../src/util/lz4_decode.ts";
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

test("lz4PlausiblePrefix passes every prefix of a real block and few of random bytes", () => {
  const rng = new Prng(13);
  for (const n of [100, 4096, 40000]) {
    const raw = sample(rng, n);
    const packed = lz4Compress(raw)!;
    for (let end = 0; end <= packed.length; end += 1 + (end >> 4)) {
      expect(lz4PlausiblePrefix(packed, 0, end, n), `n ${n} prefix ${end}`).toBe(true);
    }
    expect(lz4PlausiblePrefix(packed, 0, packed.length, n)).toBe(true);
    // A decoded length too small for the block is impossible.
    expect(lz4PlausiblePrefix(packed, 0, packed.length, n >> 1)).toBe(false);
  }
  // Random bytes that begin with a literal run: an offset must reach back no further than the
  // bytes produced so far, which random offsets seldom do twice (measured: ~1% pass, mostly
  // those whose first literal run covers the 256 bytes).
  let passed = 0;
  for (let i = 0; i < 2000; i++) {
    const b = rng.bytes(256);
    b[0] |= 0x10;
    if (lz4PlausiblePrefix(b, 0, b.length, 1 << 20)) passed++;
  }
  expect(passed).toBeLessThan(100);
});
