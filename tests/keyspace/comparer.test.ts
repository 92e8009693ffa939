/** The compiled comparer agrees with memcmp on every input, fixed-width fast path included. */
import { expect, test } from "bun:test";
import { compareMemcmp, compileComparer } from "../../src/keyspace/compile_comparer.ts";
import { compareBytes } from "../../src/util/bytes.ts";
import { seedFor, withSeed } from "./helpers.ts";

const sign = (x: number) => (x > 0 ? 1 : x < 0 ? -1 : 0);

function randomBytes(
  p: { int(n: number): number; next(): number; u32(): number },
  n: number,
): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = p.next() < 0.6 ? p.int(3) : p.u32() & 0xff; // many ties
  return out;
}

test("fixed-width comparers of widths 1..40 agree with memcmp, also on other lengths", () => {
  withSeed(seedFor(6000), (p) => {
    for (let width = 1; width <= 40; width++) {
      const compare = compileComparer(width);
      for (let i = 0; i < 400; i++) {
        const a = randomBytes(p, width);
        const b = p.next() < 0.3 ? a.slice() : randomBytes(p, width);
        if (p.next() < 0.3) b[p.int(width)] = a[p.int(width)];
        expect(sign(compare(a, b))).toBe(sign(compareBytes(a, b)));
        const shorter = a.subarray(0, p.int(width + 1));
        expect(sign(compare(shorter, b))).toBe(sign(compareBytes(shorter, b)));
        expect(sign(compare(b, shorter))).toBe(sign(compareBytes(b, shorter)));
      }
    }
  });
});

test("the variable-width memcmp agrees with compareBytes, including 0xff bytes and prefixes", () => {
  withSeed(seedFor(6001), (p) => {
    for (let i = 0; i < 20000; i++) {
      const a = randomBytes(p, p.int(12));
      const b = p.next() < 0.5
        ? randomBytes(p, p.int(12))
        : new Uint8Array([...a.subarray(0, p.int(a.length + 1)), ...randomBytes(p, p.int(3))]);
      if (p.next() < 0.1) a.fill(0xff);
      expect(sign(compareMemcmp(a, b))).toBe(sign(compareBytes(a, b)));
    }
  });
  expect(compileComparer(undefined)).toBe(compareMemcmp);
  expect(compileComparer(1000)).toBe(compareMemcmp);
});

test("subarray views with offsets compare by their own bytes", () => {
  const buf = new Uint8Array([9, 0, 0, 0, 1, 9, 0, 0, 0, 2]);
  const compare = compileComparer(4);
  expect(compare(buf.subarray(1, 5), buf.subarray(6, 10))).toBeLessThan(0);
  expect(compare(buf.subarray(6, 10), buf.subarray(6, 10))).toBe(0);
});
