/** Bad keys are KeyEncodingErrors naming the field (API.md §1 "Key values"). */
import { describe, expect, test } from "bun:test";
import { KeyEncodingError } from "../../src/api/errors.ts";
import { defineKeyspace } from "../../src/keyspace/define_keyspace.ts";

function keyError(fn: () => unknown): KeyEncodingError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(KeyEncodingError);
    expect((e as KeyEncodingError).code).toBe("KEY_ENCODING");
    return e as KeyEncodingError;
  }
  throw new Error("expected a KeyEncodingError");
}

function encodeOne(type: string, value: unknown): KeyEncodingError {
  const ks = defineKeyspace({ key: `x:<${type}>` as string });
  return keyError(() => ks.key.encode(value as never));
}

describe("field values", () => {
  const cases: [string, unknown, string][] = [
    ["u8", -1, 'key field "x": -1 is below 0'],
    ["u8", 256, 'key field "x": 256 is above 255'],
    ["u8", 1.5, 'key field "x": 1.5 is not an integer'],
    ["u8", NaN, 'key field "x": NaN is not allowed'],
    ["u8", "1", 'key field "x": expected a number, got string "1"'],
    ["u8", 1n, 'key field "x": expected a number, got 1n'],
    ["u16be", 65536, 'key field "x": 65536 is above 65535'],
    ["u32be", 2 ** 32, 'key field "x": 4294967296 is above 4294967295'],
    ["i8", -129, 'key field "x": -129 is below -128'],
    ["i16be", 32768, 'key field "x": 32768 is above 32767'],
    ["i32be", -(2 ** 31) - 1, 'key field "x": -2147483649 is below -2147483648'],
    ["u64be", -1, 'key field "x": -1 is below 0'],
    ["u64be", -1n, 'key field "x": -1n is below 0n'],
    ["u64be", 2n ** 64n, 'key field "x": 18446744073709551616n is above 18446744073709551615n'],
    ["u64be", 2 ** 60, 'key field "x": 1152921504606847000 is not a safe integer; pass a bigint'],
    ["u64be", 0.5, 'key field "x": 0.5 is not an integer'],
    ["u64be", "7", 'key field "x": expected a number or bigint, got string "7"'],
    [
      "i64be",
      -(2n ** 63n) - 1n,
      'key field "x": -9223372036854775809n is below -9223372036854775808n',
    ],
    ["i64be", 2n ** 63n, 'key field "x": 9223372036854775808n is above 9223372036854775807n'],
    ["f64", NaN, 'key field "x": NaN is not allowed'],
    ["f64", "1", 'key field "x": expected a number, got string "1"'],
    ["bool", 1, 'key field "x": expected a boolean, got 1'],
    ["uuid", "not-a-uuid", 'key field "x": "not-a-uuid" is not a uuid (8-4-4-4-12 hex digits)'],
    ["uuid", "0123456789abcdef0123456789abcdef0123", "is not a uuid"],
    ["uuid", "g1234567-89ab-cdef-0123-456789abcdef", "is not a uuid"],
    ["uuid", 5, 'key field "x": expected a uuid string, got 5'],
    ["bytes:4", new Uint8Array(3), 'key field "x": expected 4 bytes, got 3'],
    ["bytes:4", "abcd", 'key field "x": expected a Uint8Array of 4 bytes, got string "abcd"'],
    ["bytes:4", [1, 2], "key has 2 items but the layout has 1 field (x)"],
    ["str", 5, 'key field "x": expected a string, got 5'],
    ["str", "ab\ud800c", 'key field "x": lone surrogate U+D800 at index 2'],
    ["str", "\udc00", 'key field "x": lone surrogate U+DC00 at index 0'],
    ["str", "a\ud83d", 'key field "x": lone surrogate U+D83D at index 1'],
    ["bytes", "abc", 'key field "x": expected a Uint8Array, got string "abc"'],
  ];
  for (const [type, value, message] of cases) {
    test(`${type} rejects ${String(value).slice(0, 20)}`, () => {
      const err = encodeOne(type, value);
      expect(err.message).toContain(message);
      if (!message.startsWith("key has")) expect(err.field).toBe("x");
    });
  }
});

describe("key shape", () => {
  const ks = defineKeyspace({ key: "sensor:<str>:ts:<u64be>" });

  test("a missing field is named", () => {
    const err = keyError(() => ks.key.encode({ sensor: "s" } as never));
    expect(err.message).toBe('key field "ts" is missing');
    expect(err.field).toBe("ts");
    expect(keyError(() => ks.key.encode({ ts: 1 } as never)).message).toBe(
      'key field "sensor" is missing',
    );
    expect(keyError(() => ks.key.encode({ sensor: "s", ts: undefined } as never)).field).toBe("ts");
    expect(keyError(() => ks.key.encode(["s"] as never)).field).toBe("ts");
  });

  test("an extra field is named", () => {
    const err = keyError(() => ks.key.encode({ sensor: "s", ts: 1, tz: "utc" } as never));
    expect(err.message).toBe('key has unknown field "tz" (fields: sensor, ts)');
    expect(err.field).toBe("tz");
    keyError(() => ks.key.encodePrefix({ sensor: "s", nope: 1 } as never));
  });

  test("too many tuple items", () => {
    expect(keyError(() => ks.key.encode(["s", 1, 2] as never)).message).toBe(
      "key has 3 items but the layout has 2 fields (sensor, ts)",
    );
  });

  test("a scalar or null for a multi-field layout", () => {
    expect(keyError(() => ks.key.encode(5 as never)).message).toContain(
      "key must be an object or a tuple",
    );
    keyError(() => ks.key.encode(null as never));
    keyError(() => ks.key.encode(undefined as never));
    keyError(() => ks.key.encode(new Uint8Array(2) as never));
  });

  test("a prefix must be a leading subset of fields", () => {
    expect(keyError(() => ks.key.encodePrefix({ ts: 1 } as never)).message).toBe(
      'prefix gives field "ts" but not "sensor" before it (a prefix is a leading subset of the fields)',
    );
    keyError(() => ks.key.encodePrefix([undefined, 1] as never));
    expect(ks.key.encodePrefix(["s", undefined])).toEqual(ks.key.encodePrefix(["s"]));
  });

  test("prefix values are validated too", () => {
    expect(keyError(() => ks.key.encodePrefix({ sensor: 5 } as never)).field).toBe("sensor");
  });

  test("one-field layouts take the bare scalar, a 1-tuple or an object", () => {
    const one = defineKeyspace({ key: "id:<u32be>" });
    expect(one.key.encode(7)).toEqual(new Uint8Array([0, 0, 0, 7]));
    expect(one.key.encode([7] as never)).toEqual(new Uint8Array([0, 0, 0, 7]));
    expect(one.key.encode({ id: 7 } as never)).toEqual(new Uint8Array([0, 0, 0, 7]));
    expect(one.key.encodeBound({})).toEqual({ bytes: new Uint8Array(), complete: false });
    expect(one.key.encodeBound([])).toEqual({ bytes: new Uint8Array(), complete: false });
    expect(one.key.encodeBound(7)).toEqual({ bytes: new Uint8Array([0, 0, 0, 7]), complete: true });
    expect(keyError(() => one.key.encode(undefined as never)).message).toBe(
      'key field "id" is missing',
    );
    expect(keyError(() => one.key.encode({ other: 7 } as never)).message).toContain(
      'unknown field "other"',
    );
    const bytes = defineKeyspace({ key: "<blob:bytes>" });
    expect(bytes.key.decode(bytes.key.encode(new Uint8Array([1, 0])))).toEqual(
      new Uint8Array([1, 0]),
    );
  });
});

describe("decode rejects bytes that are not a key", () => {
  test("wrong length for a fixed-width layout", () => {
    const ks = defineKeyspace({ key: "metric:<u32be>:ts:<u64be:desc>" });
    expect(keyError(() => ks.key.decode(new Uint8Array(11))).message).toBe(
      "cannot decode key: 11 bytes, expected 12",
    );
  });
  test("missing terminator, bad escape, trailing bytes, truncation, bad bool, bad UTF-8", () => {
    const ks = defineKeyspace({ key: "a:<str>:b:<bool>" });
    keyError(() => ks.key.decode(new Uint8Array([0x61])));
    keyError(() => ks.key.decode(new Uint8Array([0x61, 0, 7, 0, 1, 1])));
    keyError(() => ks.key.decode(new Uint8Array([0x61, 0, 1, 1, 9])));
    keyError(() => ks.key.decode(new Uint8Array([0x61, 0, 1])));
    expect(keyError(() => ks.key.decode(new Uint8Array([0x61, 0, 1, 2]))).message).toContain(
      "is not a bool",
    );
    expect(keyError(() => ks.key.decode(new Uint8Array([0xc3, 0x28, 0, 1, 1]))).message).toContain(
      "invalid UTF-8",
    );
    expect(keyError(() => ks.key.decode(new Uint8Array([0xed, 0xa0, 0x80, 0, 1, 1]))).message)
      .toContain("invalid UTF-8");
  });
});

test("nothing is returned for a key with one bad field among good ones", () => {
  const ks = defineKeyspace({ key: "<a:str>/<b:u8>/<c:str>" });
  expect(keyError(() => ks.key.encode({ a: "ok", b: 300, c: "ok" })).field).toBe("b");
  expect(keyError(() => ks.key.encode({ a: "ok", b: 3, c: "\ud800" })).field).toBe("c");
});
