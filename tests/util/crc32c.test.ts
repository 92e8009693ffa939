// crc32c (slicing-by-16): the standard check value, agreement with a bitwise reference at every
// alignment and length class, and continuation (crc of a ++ b from the crc of a).
import { expect, test } from "bun:test";
import { crc32c } from "../../src/util/crc32c.ts";
import { Prng } from "../../src/util/prng.ts";

function reference(bytes: Uint8Array, start: number, end: number, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = start; i < end; i++) {
    c ^= bytes[i];
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

test("crc32c gives the CRC-32C check value of '123456789'", () => {
  expect(crc32c(new TextEncoder().encode("123456789"))).toBe(0xe3069283);
  expect(crc32c(new Uint8Array(0))).toBe(0);
});

test("crc32c agrees with the bitwise reference for random ranges and seeds (seed 11)", () => {
  const rng = new Prng(11);
  const buf = rng.bytes(5000);
  for (let t = 0; t < 2000; t++) {
    const start = rng.int(64);
    const end = start + rng.int(t < 500 ? 40 : 4900);
    const seed = rng.u32();
    expect(crc32c(buf, start, end, seed)).toBe(reference(buf, start, end, seed));
  }
});

test("crc32c continues a checksum: crc(a ++ b) = crc(b, crc(a))", () => {
  const buf = new Prng(12).bytes(3000);
  const whole = crc32c(buf);
  for (let m = 0; m <= 3000; m += 37) expect(crc32c(buf, m, 3000, crc32c(buf, 0, m))).toBe(whole);
});
