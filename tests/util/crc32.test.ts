// crc32 (IEEE, native through node:zlib where the runtime has it) and its JavaScript fallback:
// the check value, agreement with a bitwise reference and with each other for random ranges and
// running values, continuation.
import { expect, test } from "bun:test";
import { crc32, crc32IsNative, crc32Js } from "../../src/util/crc32.ts";
import { Prng } from "../../src/util/prng.ts";

function reference(bytes: Uint8Array, start: number, end: number, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = start; i < end; i++) {
    c ^= bytes[i];
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

test("crc32 gives the CRC-32 check value of '123456789', natively in Bun", () => {
  const check = new TextEncoder().encode("123456789");
  expect(crc32(check)).toBe(0xcbf43926);
  expect(crc32Js(check)).toBe(0xcbf43926);
  expect(crc32(new Uint8Array(0))).toBe(0);
  expect(crc32IsNative).toBe(true); // Bun has node:zlib crc32 (tests/deno checks Deno's)
});

test("crc32 and the JavaScript fallback agree with the bitwise reference (seed 12)", () => {
  const rng = new Prng(12);
  const buf = rng.bytes(5000);
  for (let t = 0; t < 1500; t++) {
    const start = rng.int(64);
    const end = start + rng.int(t < 500 ? 40 : 4900);
    const seed = t % 3 === 0 ? 0 : rng.u32();
    const want = reference(buf, start, end, seed);
    expect(crc32(buf, start, end, seed)).toBe(want);
    expect(crc32Js(buf, start, end, seed)).toBe(want);
  }
});

test("crc32 continues: the crc of a ++ b from the crc of a", () => {
  const rng = new Prng(13);
  const buf = rng.bytes(3000);
  for (const cut of [0, 1, 15, 16, 17, 1000, 2999, 3000]) {
    expect(crc32(buf, cut, buf.length, crc32(buf, 0, cut))).toBe(crc32(buf));
  }
});
