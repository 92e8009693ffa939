/** Value codecs of API.md §1: json, utf8, bytes, scalars, structs, custom; fixed-width detection. */
import { describe, expect, test } from "bun:test";
import { SchemaError, ValueEncodingError } from "../../src/api/errors.ts";
import { defineKeyspace, jsonValue } from "../../src/keyspace/define_keyspace.ts";
import type { Prng } from "../../src/util/prng.ts";
import { seedFor, withSeed } from "./helpers.ts";

function valueError(fn: () => unknown): ValueEncodingError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ValueEncodingError);
    expect((e as ValueEncodingError).code).toBe("VALUE_ENCODING");
    return e as ValueEncodingError;
  }
  throw new Error("expected a ValueEncodingError");
}

const codecOf = (value: unknown) => defineKeyspace({ key: "<u8>", value: value as "json" }).value;

describe("json (the default)", () => {
  const json = defineKeyspace({ key: "<u8>" }).value;
  test("round-trips JSON values and is variable-width", () => {
    for (const v of [null, 1, "s", [1, { a: "b" }], { nested: { x: [true, false] } }, "😀\0"]) {
      expect(json.decode(json.encode(v))).toEqual(v);
    }
    expect(json.fixedWidth).toBeUndefined();
    expect(json.id).toBe("json");
    expect(new TextDecoder().decode(json.encode({ a: 1 }))).toBe('{"a":1}');
  });
  test("rejects BigInt, undefined, functions and cycles", () => {
    expect(valueError(() => json.encode(1n)).message).toContain("cannot be encoded as JSON");
    expect(valueError(() => json.encode(undefined)).message).toBe(
      "value: cannot be encoded as JSON: undefined",
    );
    valueError(() => json.encode(() => 1));
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    valueError(() => json.encode(cyclic));
  });
  test("decoding bytes that are not JSON is a ValueEncodingError", () => {
    valueError(() => json.decode(new TextEncoder().encode("{nope")));
    valueError(() => json.decode(new Uint8Array([0xff])));
  });
  test("jsonValue<T>() is the json codec", () => {
    const ks = defineKeyspace({ key: "<u8>", value: jsonValue<{ a: number }>() });
    expect(ks.value.id).toBe("json");
    expect(ks.value.decode(ks.value.encode({ a: 1 }))).toEqual({ a: 1 });
  });
});

describe("utf8 and bytes", () => {
  test("utf8 round-trips strings, keeps a BOM, rejects non-strings and lone surrogates", () => {
    const c = codecOf("utf8");
    for (const s of ["", "héllo", "\ufeffbom", "😀", "a\0b"]) expect(c.decode(c.encode(s))).toBe(s);
    expect(valueError(() => c.encode(5)).message).toBe("value: expected a string, got 5");
    if (typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === "function") {
      valueError(() => c.encode("\ud800"));
    }
    valueError(() => c.decode(new Uint8Array([0xc3])));
  });
  test("bytes copies in and out", () => {
    const c = codecOf("bytes");
    const input = new Uint8Array([1, 2, 3]);
    const enc = c.encode(input);
    input[0] = 9;
    expect(enc).toEqual(new Uint8Array([1, 2, 3]));
    const dec = c.decode(enc) as Uint8Array;
    dec[1] = 9;
    expect(enc[1]).toBe(2);
    valueError(() => c.encode("abc"));
  });
});

describe("scalars", () => {
  const cases: [string, unknown[], number][] = [
    ["u8", [0, 255], 1],
    ["u16be", [0, 65535], 2],
    ["u32be", [0, 2 ** 32 - 1], 4],
    ["i8", [-128, 127, -1], 1],
    ["i16be", [-32768, 32767, -2], 2],
    ["i32be", [-(2 ** 31), 2 ** 31 - 1, -3], 4],
    ["u64be", [0n, 2n ** 64n - 1n, 7n], 8],
    ["i64be", [-(2n ** 63n), 2n ** 63n - 1n, -1n], 8],
    ["f64", [0, -0, 1.5, -Infinity, NaN, Number.MIN_VALUE], 8],
    ["f32", [0, -0, 1.5, Infinity, NaN], 4],
    ["bool", [true, false], 1],
    ["uuid", ["01234567-89ab-cdef-0123-456789abcdef"], 16],
    ["bytes:3", [new Uint8Array([0, 1, 2])], 3],
  ];
  for (const [type, values, width] of cases) {
    test(`${type} round-trips and is ${width} bytes wide`, () => {
      const c = codecOf(type);
      expect(c.fixedWidth).toBe(width);
      expect(c.id).toBe(type);
      for (const v of values) {
        const enc = c.encode(v);
        expect(enc.length).toBe(width);
        expect(Object.is(c.decode(enc), v) || c.decode(enc) instanceof Uint8Array).toBe(true);
      }
    });
  }
  test("values are plain big-endian (not the order-preserving key encoding)", () => {
    expect(codecOf("i16be").encode(-2)).toEqual(new Uint8Array([0xff, 0xfe]));
    expect(codecOf("u32be").encode(0x01020304)).toEqual(new Uint8Array([1, 2, 3, 4]));
    expect(codecOf("i64be").encode(-1)).toEqual(new Uint8Array(8).fill(0xff));
    expect(codecOf("f64").encode(1)).toEqual(new Uint8Array([0x3f, 0xf0, 0, 0, 0, 0, 0, 0]));
    expect(codecOf("f32").decode(codecOf("f32").encode(0.1))).toBeCloseTo(0.1, 6);
  });
  test("64-bit scalars accept numbers and return bigints", () => {
    expect(codecOf("u64be").decode(codecOf("u64be").encode(5))).toBe(5n);
    expect(codecOf("i64be").decode(codecOf("i64be").encode(-5))).toBe(-5n);
  });
  test("random 64-bit and 32-bit values round-trip", () => {
    withSeed(seedFor(7000), (p: Prng) => {
      const u64 = codecOf("u64be");
      const i32 = codecOf("i32be");
      for (let i = 0; i < 3000; i++) {
        const big = (BigInt(p.u32()) << 32n) | BigInt(p.u32());
        expect(u64.decode(u64.encode(big))).toBe(big);
        const n = p.u32() | 0;
        expect(i32.decode(i32.encode(n))).toBe(n);
      }
    });
  });
  test("out-of-range and wrong-type scalars are ValueEncodingErrors", () => {
    expect(valueError(() => codecOf("u8").encode(256)).message).toBe("value: 256 is above 255");
    expect(valueError(() => codecOf("u8").encode("1")).message).toBe(
      'value: expected a number, got string "1"',
    );
    valueError(() => codecOf("i8").encode(-129));
    valueError(() => codecOf("u32be").encode(1.5));
    valueError(() => codecOf("u64be").encode(-1n));
    valueError(() => codecOf("u64be").encode(2 ** 60));
    valueError(() => codecOf("i64be").encode(2n ** 63n));
    valueError(() => codecOf("bool").encode(0));
    valueError(() => codecOf("uuid").encode("x"));
    valueError(() => codecOf("bytes:3").encode(new Uint8Array(2)));
    valueError(() => codecOf("f64").encode("1"));
    expect(valueError(() => codecOf("u8").decode(new Uint8Array(2))).message).toBe(
      "value: cannot decode: 2 bytes, expected 1",
    );
  });
});

describe("structs", () => {
  const ks = defineKeyspace({ key: "<u8>", value: { temp: "f64", humidity: "f32", n: "u16be" } });
  test("encode the fields in the spec's key order, fixed width", () => {
    expect(ks.value.fixedWidth).toBe(14);
    expect(ks.value.id).toBe('struct{"temp":"f64","humidity":"f32","n":"u16be"}');
    const enc = ks.value.encode({ humidity: 0.5, n: 258, temp: 1 });
    expect([...enc]).toEqual([0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x3f, 0, 0, 0, 1, 2]);
    expect(ks.value.decode(enc)).toEqual({ temp: 1, humidity: 0.5, n: 258 });
  });
  test("a missing, extra or wrong field is a ValueEncodingError naming it", () => {
    expect(valueError(() => ks.value.encode({ temp: 1, humidity: 2 } as never)).message).toBe(
      'value field "n": is missing',
    );
    expect(valueError(() => ks.value.encode({ temp: 1, humidity: 2, n: 1, x: 0 } as never)).message)
      .toContain(
        'unknown field "x"',
      );
    expect(valueError(() => ks.value.encode({ temp: "1", humidity: 2, n: 1 } as never)).message)
      .toBe(
        'value field "temp": expected a number, got string "1"',
      );
    valueError(() => ks.value.encode(null as never));
    valueError(() => ks.value.encode([1, 2, 3] as never));
  });
  test("invalid struct specs are SchemaErrors", () => {
    expect(() => codecOf({})).toThrow(SchemaError);
    expect(() => codecOf({ a: "str" })).toThrow(
      /struct value field "a": expected a fixed-width scalar type/,
    );
    expect(() => codecOf({ a: "json" })).toThrow(SchemaError);
    expect(() => codecOf({ a: 5 })).toThrow(SchemaError);
    expect(() => codecOf("yaml")).toThrow(/value codec "yaml" is unknown/);
    expect(() => codecOf(5)).toThrow(SchemaError);
  });
});

describe("custom codecs", () => {
  const point = {
    id: "point/v1",
    fixedWidth: 2,
    encode: (p: { x: number; y: number }) => new Uint8Array([p.x, p.y]),
    decode: (b: Uint8Array) => ({ x: b[0], y: b[1] }),
  };
  test("round-trip, with the id and width in the codec id", () => {
    const c = codecOf(point);
    expect(c.fixedWidth).toBe(2);
    expect(c.id).toBe('custom:"point/v1"/2');
    expect(c.decode(c.encode({ x: 1, y: 2 }))).toEqual({ x: 1, y: 2 });
    expect(codecOf({ ...point, fixedWidth: undefined }).fixedWidth).toBeUndefined();
  });
  test("a codec that throws, returns a non-Uint8Array or the wrong width is a ValueEncodingError", () => {
    const err = valueError(() =>
      codecOf({
        ...point,
        encode: () => {
          throw new Error("boom");
        },
      }).encode(1)
    );
    expect(err.message).toContain("encode failed: boom");
    expect(err.cause).toBeInstanceOf(Error);
    valueError(() => codecOf({ ...point, encode: () => "x" }).encode(1));
    valueError(() => codecOf({ ...point, encode: () => new Uint8Array(3) }).encode(1));
    valueError(() =>
      codecOf({
        ...point,
        decode: () => {
          throw new Error("bad");
        },
      }).decode(new Uint8Array(2))
    );
    valueError(() => codecOf(point).decode(new Uint8Array(3)));
  });
  test("invalid custom codec specs are SchemaErrors", () => {
    expect(() => codecOf({ ...point, id: "" })).toThrow(SchemaError);
    expect(() => codecOf({ ...point, fixedWidth: 0 })).toThrow(SchemaError);
    expect(() => codecOf({ ...point, decode: undefined })).toThrow(SchemaError);
  });
});

test("layout names which sides are fixed-width", () => {
  expect(defineKeyspace({ key: "<u8>", value: "f64" }).layout).toBe("fixed-key-fixed-value");
  expect(defineKeyspace({ key: "<u8>" }).layout).toBe("fixed-key-variable-value");
  expect(defineKeyspace({ key: "<str>", value: { a: "u8" } }).layout).toBe(
    "variable-key-fixed-value",
  );
  expect(defineKeyspace({ key: "<bytes>", value: "utf8" }).layout).toBe(
    "variable-key-variable-value",
  );
});
