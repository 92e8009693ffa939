// The keyspace compiler under Deno: same encodings, identities, errors and order as under Bun.
// Run: deno test -A tests/deno/keyspace.deno.ts
import assert from "node:assert/strict";
import { KeyEncodingError, SchemaError, ValueEncodingError } from "../../src/api/errors.ts";
import { defineKeyspace, keyspaceFromSpec } from "../../src/keyspace/define_keyspace.ts";
import { loadKeyspace, parseKeyspaceSchema } from "../../src/keyspace/schema_file.ts";
import { compareBytes } from "../../src/util/bytes.ts";
import {
  checkOrderProperty,
  type FieldSpec,
  GENERATORS,
  seedFor,
  templateOf,
  withSeed,
} from "../keyspace/helpers.ts";

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join(" ");
const schemaPath = (name: string) => new URL(`../../schemas/${name}`, import.meta.url).pathname;

Deno.test("shipped schemas load with the same identities as under Bun", async () => {
  const expected: Record<string, [string, string]> = {
    "readings.json": ["zt1:6ffec4edeeb7d6bf", "variable-key-fixed-value"],
    "events.json": ["zt1:8020f4f3c425a74b", "variable-key-variable-value"],
    "metrics.json": ["zt1:9890edecd1e28eb9", "fixed-key-fixed-value"],
    "queue.json": ["zt1:95352a2d783b4862", "variable-key-variable-value"],
  };
  for (const [file, [identity, layout]] of Object.entries(expected)) {
    const ks = await loadKeyspace(schemaPath(file));
    assert.equal(ks.identity, identity, file);
    assert.equal(ks.layout, layout, file);
    assert.equal(keyspaceFromSpec(ks.spec).identity, identity, file);
  }
});

Deno.test("readings keys and struct values round-trip", () => {
  const readings = defineKeyspace({
    key: "sensor:<str>:ts:<u64be>",
    value: { temp: "f64", humidity: "f32" },
  });
  const key = readings.key.encode({ sensor: "s-7", ts: 1700000000000 });
  assert.equal(hex(key), "73 2d 37 00 01 00 00 01 8b cf e5 68 00");
  assert.deepEqual(readings.key.decode(key), { sensor: "s-7", ts: 1700000000000n });
  assert.deepEqual(readings.key.decode(readings.key.encode(["s-7", 1700000000000n])), {
    sensor: "s-7",
    ts: 1700000000000n,
  });
  const value = readings.value.encode({ temp: 21.5, humidity: 0.25 });
  assert.equal(value.length, 12);
  assert.deepEqual(readings.value.decode(value), { temp: 21.5, humidity: 0.25 });
  const prefix = readings.key.encodeBound({ sensor: "s-7" });
  assert.equal(prefix.complete, false);
  assert.deepEqual(key.subarray(0, prefix.bytes.length), prefix.bytes);
});

Deno.test("metric keys are 12 bytes and latest-first inside a metric", () => {
  const metrics = defineKeyspace({ key: "metric:<u32be>:ts:<u64be:desc>", value: "f64" });
  assert.equal(metrics.key.fixedWidth, 12);
  const newer = metrics.key.encode({ metric: 1, ts: 200 });
  const older = metrics.key.encode({ metric: 1, ts: 100 });
  const otherMetric = metrics.key.encode({ metric: 2, ts: 300 });
  assert.ok(metrics.key.compare(newer, older) < 0);
  assert.ok(metrics.key.compare(older, otherMetric) < 0);
  assert.ok(metrics.key.compare(older, older) === 0);
});

Deno.test("memcmp order == natural order == compare for every type (seeded)", () => {
  for (const type of Object.keys(GENERATORS)) {
    for (const desc of [false, true]) {
      const fields: FieldSpec[] = [{ name: "a", type, desc }, {
        name: "b",
        type: "str",
        desc: !desc,
      }];
      const ks = defineKeyspace({ key: templateOf(fields) as string });
      withSeed(
        seedFor(9000 + type.length * 2 + Number(desc)),
        (p) => checkOrderProperty(ks, fields, p, 1000),
      );
    }
  }
});

Deno.test("bad keys are KeyEncodingErrors naming the field", () => {
  const ks = defineKeyspace({ key: "sensor:<str>:ts:<u64be>" });
  assert.throws(() => ks.key.encode({ sensor: "s", ts: -1 }), (e: unknown) => {
    assert.ok(e instanceof KeyEncodingError);
    assert.equal(e.code, "KEY_ENCODING");
    assert.equal(e.message, 'key field "ts": -1 is below 0');
    assert.equal(e.field, "ts");
    return true;
  });
  assert.throws(() => ks.key.encode({ sensor: "s" } as never), /key field "ts" is missing/);
  assert.throws(() => ks.key.encode({ sensor: "s", ts: 1, x: 1 } as never), /unknown field "x"/);
  assert.throws(() => ks.key.encode(["s", 1, 2] as never), /3 items/);
  assert.throws(() => ks.key.encode({ sensor: "\ud800", ts: 1 }), /lone surrogate/);
  assert.throws(() => ks.key.encodePrefix({ ts: 1 } as never), /prefix gives field "ts"/);
});

Deno.test("bad templates and schema files are SchemaErrors with column, file and path", () => {
  assert.throws(() => defineKeyspace({ key: "a:<u65be>" as string }), (e: unknown) => {
    assert.ok(e instanceof SchemaError);
    assert.match(e.message, /unknown type "u65be" at column 4/);
    return true;
  });
  assert.throws(
    () => parseKeyspaceSchema({ key: "<u8>", value: { t: "str" } }, "f.json"),
    /^SchemaError: f\.json: at \$\.value\.t: expected a fixed-width scalar type/,
  );
});

Deno.test("value codecs reject what they cannot encode", () => {
  const json = defineKeyspace({ key: "<u8>" });
  assert.throws(() => json.value.encode(1n), ValueEncodingError);
  const struct = defineKeyspace({ key: "<u8>", value: { a: "u8" } });
  assert.throws(() => struct.value.encode({} as never), /value field "a": is missing/);
});

Deno.test("a str key keeps a BOM, NULs and astral characters; uuid comes back lower case", () => {
  const ks = defineKeyspace({ key: "<s:str>/<id:uuid>" });
  for (const s of ["\ufeff", "a\0b", "😀\u{10ffff}", ""]) {
    const got = ks.key.decode(ks.key.encode([s, "ABCDEF01-2345-6789-ABCD-EF0123456789"]));
    assert.deepEqual(got, { s, id: "abcdef01-2345-6789-abcd-ef0123456789" });
  }
  const a = ks.key.encode(["\uffff", "00000000-0000-0000-0000-000000000000"]);
  const b = ks.key.encode(["😀", "00000000-0000-0000-0000-000000000000"]);
  assert.ok(compareBytes(a, b) < 0, "code point order: U+FFFF before U+1F600");
});
