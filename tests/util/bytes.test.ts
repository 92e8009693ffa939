import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  copyBytes,
  copyOf,
  newCopyArray,
  POOLED_COPY_MAX,
  RUNTIME_POOLS_COPIES,
  setPooledCopies,
} from "../../src/util/bytes.ts";

describe("copyOf", () => {
  // Both sides of the loop/slice threshold (64), every remainder of the loop's four-byte
  // steps, at offsets inside a larger buffer.
  const src = Uint8Array.from({ length: 600 }, (_, i) => (i * 37 + 11) & 0xff);
  for (const n of [0, 1, 2, 3, 4, 5, 6, 7, 15, 16, 17, 63, 64, 65, 100, 127, 128, 129, 300]) {
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

describe("pooled copies (Deno's mode, forced on here)", () => {
  let was = false;
  beforeAll(() => {
    was = setPooledCopies(true);
  });
  afterAll(() => {
    setPooledCopies(was);
  });

  test("RUNTIME_POOLS_COPIES is false under Bun (small arrays are cheap here)", () => {
    expect(RUNTIME_POOLS_COPIES).toBe(false);
  });

  test("small copies share a slab, each with bytes of its own, 8-aligned", () => {
    const src = Uint8Array.from({ length: 600 }, (_, i) => (i * 37 + 11) & 0xff);
    const copies: [Uint8Array, number, number][] = [];
    for (let k = 0; k < 200; k++) {
      const start = (k * 13) % 300;
      const n = [0, 1, 15, 16, 100, 127, 128, 129, 200, 256][k % 10];
      const out = copyOf(src, start, start + n);
      expect(out.length).toBe(n);
      expect(out.byteOffset % 8).toBe(0);
      if (n > 0) expect(out.buffer.byteLength).toBe(8192);
      copies.push([out, start, n]);
    }
    // Writing every copy changes neither the source nor any other copy.
    for (const [out] of copies) out.fill(0xee);
    for (const [out, start, n] of copies) {
      out.set(src.subarray(start, start + n));
    }
    for (const [out, start, n] of copies) {
      expect(Array.from(out)).toEqual(Array.from(src.subarray(start, start + n)));
    }
    expect(src[0]).toBe(11);
  });

  test("copies over the pooled size, and copyBytes of them, have their own buffer", () => {
    const src = new Uint8Array(1000).fill(7);
    const big = copyOf(src, 0, POOLED_COPY_MAX + 1);
    expect(big.byteOffset).toBe(0);
    expect(big.buffer.byteLength).toBe(POOLED_COPY_MAX + 1);
    const small = copyBytes(src.subarray(0, 40));
    expect(small.buffer.byteLength).toBe(8192);
    expect(copyBytes(src).buffer.byteLength).toBe(1000);
    expect(Array.from(newCopyArray(24))).toEqual(new Array(24).fill(0));
  });

  test("a caller transferring a copy's buffer away detaches only that slab", () => {
    const src = Uint8Array.from({ length: 64 }, (_, i) => i);
    const a = copyOf(src, 0, 16);
    const slab = a.buffer as ArrayBuffer;
    const moved = structuredClone(slab, { transfer: [slab] });
    expect(a.length).toBe(0); // detached with its slab
    expect(moved.byteLength).toBe(8192);
    const b = copyOf(src, 16, 48);
    expect(b.length).toBe(32);
    expect(Array.from(b)).toEqual(Array.from(src.subarray(16, 48)));
    expect(b.buffer).not.toBe(a.buffer);
    // An empty copy is a view of the slab too: transferring its buffer detaches its neighbours,
    // and later copies, empty or not, come from a new slab.
    const fresh = copyOf(src, 0, 64);
    const empty = copyOf(src, 3, 3);
    const emptySlab = empty.buffer as ArrayBuffer;
    structuredClone(emptySlab, { transfer: [emptySlab] });
    expect(fresh.length).toBe(0); // same slab
    expect(copyOf(src, 5, 5).length).toBe(0);
    expect(Array.from(copyOf(src, 1, 4))).toEqual([1, 2, 3]);
  });
});
