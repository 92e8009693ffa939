/**
 * Keyspace identity and the byte format are stable: golden values pinned here must never
 * change for the same layout (databases store the identity and the bytes). Any change to them
 * needs a new encoding version.
 */
import { describe, expect, test } from "bun:test";
import { SchemaError } from "../../src/api/errors.ts";
import { defineKeyspace, keyspaceFromSpec } from "../../src/keyspace/define_keyspace.ts";
import { fnv1a64Hex, identityOf } from "../../src/keyspace/keyspace_identity.ts";

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join(" ");

describe("identity", () => {
  test("FNV-1a 64 matches the reference vectors", () => {
    const enc = new TextEncoder();
    expect(fnv1a64Hex(enc.encode(""))).toBe("cbf29ce484222325");
    expect(fnv1a64Hex(enc.encode("a"))).toBe("af63dc4c8601ec8c");
    expect(fnv1a64Hex(enc.encode("foobar"))).toBe("85944171f73967e8");
  });

  test("golden canonical layouts and identities", () => {
    const readings = defineKeyspace({
      key: "sensor:<str>:ts:<u64be>",
      value: { temp: "f64", humidity: "f32" },
    });
    expect(readings.canonical).toBe(
      'zt-keyspace/1;key="sensor:"<sensor:str>":ts:"<ts:u64be>;value=struct{"temp":"f64","humidity":"f32"}',
    );
    expect(readings.identity).toBe("zt1:6ffec4edeeb7d6bf");
    expect(defineKeyspace({ key: "metric:<u32be>:ts:<u64be:desc>", value: "f64" }).identity).toBe(
      "zt1:9890edecd1e28eb9",
    );
    expect(defineKeyspace({ key: "stream:<str>:<u64be>" }).identity).toBe("zt1:8020f4f3c425a74b");
    expect(identityOf(readings.canonical)).toBe(readings.identity);
  });

  test("the name is informational: not part of the identity", () => {
    const a = defineKeyspace({ name: "a", key: "<u8>" });
    const b = defineKeyspace({ name: "b", key: "<u8>" });
    expect(a.identity).toBe(b.identity);
  });

  test("explicit names equal to implicit ones give the same identity", () => {
    expect(defineKeyspace({ key: "ts:<ts:u64be>" }).identity).toBe(
      defineKeyspace({ key: "ts:<u64be>" }).identity,
    );
  });

  test("types, names, desc, literals and value codec all change the identity", () => {
    const variants = [
      "sensor:<str>:ts:<u64be>",
      "sensor:<str>:ts:<i64be>",
      "sensor:<str>:ts:<u64be:desc>",
      "sensor:<str:desc>:ts:<u64be>",
      "sensor:<str>:time:<u64be>",
      "sensor:<str>:ts:<when:u64be>",
      "sensor:<str>-ts:<u64be>",
      "Sensor:<sensor:str>:ts:<u64be>",
      "sensor:<str>:ts:<u64be>:",
      "sensor:<bytes>:ts:<u64be>",
      "<sensor:str><ts:u64be>",
    ];
    const ids = new Set(variants.map((key) => defineKeyspace({ key }).identity));
    expect(ids.size).toBe(variants.length);
    const values = ["json", "utf8", "bytes", "f64", "f32", { a: "f64" }, { b: "f64" }, {
      a: "f64",
      b: "u8",
    }, { b: "u8", a: "f64" }];
    const vids = new Set(
      values.map((value) => defineKeyspace({ key: "<u8>", value: value as "json" }).identity),
    );
    expect(vids.size).toBe(values.length);
    const custom = (id: string, fixedWidth?: number) =>
      defineKeyspace({
        key: "<u8>",
        value: { id, fixedWidth, encode: () => new Uint8Array(), decode: () => 0 },
      }).identity;
    expect(new Set([custom("a"), custom("b"), custom("a", 4)]).size).toBe(3);
  });

  test("the default value codec is json", () => {
    expect(defineKeyspace({ key: "<u8>" }).identity).toBe(
      defineKeyspace({ key: "<u8>", value: "json" }).identity,
    );
  });
});

describe("spec and keyspaceFromSpec", () => {
  test("rebuild a keyspace with the same identity from its JSON spec", () => {
    for (
      const def of [
        { name: "r", key: "sensor:<str>:ts:<u64be>", value: { temp: "f64", humidity: "f32" } },
        { key: "metric:<u32be>:ts:<u64be:desc>", value: "f64" },
        { key: "<id:bytes:16>" },
      ]
    ) {
      const ks = defineKeyspace(def as { key: string });
      const again = keyspaceFromSpec(JSON.parse(JSON.stringify(ks.spec)));
      expect(again.identity).toBe(ks.identity);
      expect(again.spec).toEqual(ks.spec);
    }
  });
  test("spec of a keyspace is frozen and JSON-serializable", () => {
    const ks = defineKeyspace({ name: "q", key: "queue:<str>:seq:<u64be>" });
    expect(ks.spec).toEqual({ name: "q", key: "queue:<str>:seq:<u64be>", value: "json" });
    expect(Object.isFrozen(ks)).toBe(true);
    expect(Object.isFrozen(ks.key)).toBe(true);
    expect(Object.isFrozen(ks.key.fields[0])).toBe(true);
  });
  test("a custom codec cannot be rebuilt from its spec", () => {
    const ks = defineKeyspace({
      key: "<u8>",
      value: { id: "mine", encode: () => new Uint8Array(), decode: () => 1 },
    });
    expect(ks.spec.value).toEqual({ custom: "mine" });
    expect(() => keyspaceFromSpec(ks.spec)).toThrow(SchemaError);
    expect(() => keyspaceFromSpec(ks.spec)).toThrow(/custom codec "mine"/);
  });
});

describe("golden key bytes (docs/FORMATS.md)", () => {
  const cases: [string, unknown, string][] = [
    ["<u8>", 5, "05"],
    ["<u16be>", 0x0102, "01 02"],
    ["<u32be>", 1, "00 00 00 01"],
    ["<i8>", -1, "7f"],
    ["<i16be>", 0, "80 00"],
    ["<i32be>", -2, "7f ff ff fe"],
    ["<u64be>", 1700000000000, "00 00 01 8b cf e5 68 00"],
    ["<i64be>", -1n, "7f ff ff ff ff ff ff ff"],
    ["<f64>", 1, "bf f0 00 00 00 00 00 00"],
    ["<f64>", -1, "40 0f ff ff ff ff ff ff"],
    ["<f64>", -0, "80 00 00 00 00 00 00 00"],
    ["<bool>", true, "01"],
    [
      "<uuid>",
      "01234567-89AB-cdef-0123-456789abcdef",
      "01 23 45 67 89 ab cd ef 01 23 45 67 89 ab cd ef",
    ],
    ["<bytes:2>", new Uint8Array([0, 0xff]), "00 ff"],
    ["<str>", "a\0é", "61 00 ff c3 a9 00 01"],
    ["<str>", "", "00 01"],
    ["<bytes>", new Uint8Array([0, 1]), "00 ff 01 00 01"],
    ["<str:desc>", "a", "9e ff fe"],
    ["<u8:desc>", 5, "fa"],
  ];
  for (const [template, key, bytes] of cases) {
    test(`${template} ${JSON.stringify(String(key))} -> ${bytes}`, () => {
      expect(hex(defineKeyspace({ key: template }).key.encode(key as never))).toBe(bytes);
    });
  }
  test("literals are not stored: the metric layout is 12 bytes", () => {
    const ks = defineKeyspace({ key: "metric:<u32be>:ts:<u64be:desc>", value: "f64" });
    expect(hex(ks.key.encode({ metric: 1, ts: 2 }))).toBe("00 00 00 01 ff ff ff ff ff ff ff fd");
  });
  test("uuid accepts upper case and returns lower case", () => {
    const ks = defineKeyspace({ key: "<uuid>" });
    expect(ks.key.decode(ks.key.encode("ABCDEF01-2345-6789-ABCD-EF0123456789"))).toBe(
      "abcdef01-2345-6789-abcd-ef0123456789",
    );
  });
  test("-0 is stored as 0 (equal keys), Infinity sorts last, NaN is rejected", () => {
    const ks = defineKeyspace({ key: "<f64>" });
    expect(ks.key.encode(-0)).toEqual(ks.key.encode(0));
    expect(Object.is(ks.key.decode(ks.key.encode(-0)), 0)).toBe(true);
    expect(ks.key.compare(ks.key.encode(Infinity), ks.key.encode(Number.MAX_VALUE)))
      .toBeGreaterThan(0);
  });
  test("a str key keeps a leading BOM, embedded NULs and astral characters", () => {
    const ks = defineKeyspace({ key: "<str>" });
    for (const s of ["\ufeffx", "\0", "\0\0a\0", "😀𐀀\u{10ffff}", "\uffff"]) {
      expect(ks.key.decode(ks.key.encode(s))).toBe(s);
    }
  });
});
