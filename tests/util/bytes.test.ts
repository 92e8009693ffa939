import { describe, expect, test } from "bun:test";
import { copyBytes, copyOf } from "../../src/util/bytes.ts";

describe("copyOf", () => {
  // Both sides of the loop/slice threshold (128), at offsets inside a larger buffer.
  const src = Uint8Array.from({ length: 600 }, (_, i) => (i * 37 + 11) & 0xff);
  for (const n of [0, 1, 15, 16, 100, 127, 128, 129, 300]) {
    test(`${n} bytes: equal to the run, and its own memory`, () => {
      for (const start of [0, 7, 600 - n]) {
        const out = copyOf(src, start, start + n);
        expect(out.length).toBe(n);
        expect(out.byteOffset).toBe(0);
        expect(out.buffer.byteLength).toBe(n);
        expect(Array.from(out)).toEqual(Array.from(src.subarray(start, start + n)));
        if (n > 0) {
          out[0] ^= 0xff;
          expect(src[start]).not.toBe(out[0]);
        }
      }
    });
  }
});

describe("copyBytes", () => {
  test("equal to its input, and its own memory", () => {
    for (const n of [0, 1, 100, 300]) {
      const src = Uint8Array.from({ length: n }, (_, i) => (i * 13 + 5) & 0xff);
      const out = copyBytes(src.subarray(0));
      expect(Array.from(out)).toEqual(Array.from(src));
      expect(out.buffer).not.toBe(src.buffer);
      if (n > 0) {
        out[0] ^= 0xff;
        expect(src[0]).not.toBe(out[0]);
      }
    }
  });
});
