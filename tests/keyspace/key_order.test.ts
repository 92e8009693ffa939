/**
 * Property tests of the key encoding: for thousands of seeded random keys per type and per
 * composite layout, memcmp order of the encoded bytes == natural order == key.compare, and
 * decode(encode(k)) == k. A failure prints its seed (rerun with ZT_SEED=<seed>).
 */
import { describe, expect, test } from "bun:test";
import { defineKeyspace } from "../../src/keyspace/define_keyspace.ts";
import {
  checkOrderProperty,
  type FieldSpec,
  GENERATORS,
  seedFor,
  templateOf,
  withSeed,
} from "./helpers.ts";

const TYPES = Object.keys(GENERATORS);
const KEYS_PER_LAYOUT = 3000;

describe("single-field layouts", () => {
  for (const type of TYPES) {
    for (const desc of [false, true]) {
      test(`${type}${desc ? ":desc" : ""} encodes in natural order and round-trips`, () => {
        const fields: FieldSpec[] = [{ name: "k", type, desc }];
        const ks = defineKeyspace({ key: templateOf(fields) as string });
        withSeed(seedFor(1000 + TYPES.indexOf(type) * 2 + Number(desc)), (p) => {
          checkOrderProperty(ks, fields, p, KEYS_PER_LAYOUT);
        });
      });
    }
  }
});

describe("two-field layouts", () => {
  // Each type followed by a field that can hold any byte pattern: a variable field must still
  // order correctly whatever comes after it (the terminator/escape scheme), also under desc.
  for (const type of TYPES) {
    test(`${type} then bytes:3 / str, asc and desc, order correctly`, () => {
      withSeed(seedFor(2000 + TYPES.indexOf(type)), (p) => {
        for (
          const [desc, next] of [[false, "bytes:3"], [true, "bytes:3"], [true, "str"], [
            false,
            "u64be",
          ]] as const
        ) {
          const fields: FieldSpec[] = [{ name: "a", type, desc }, {
            name: "b",
            type: next,
            desc: false,
          }];
          const ks = defineKeyspace({ key: templateOf(fields) as string });
          checkOrderProperty(ks, fields, p, 1500);
        }
      });
    });
  }
});

test("str:desc followed by another field orders latest-first inside a prefix", () => {
  const fields: FieldSpec[] = [
    { name: "s", type: "str", desc: true },
    { name: "t", type: "u64be", desc: false },
    { name: "b", type: "bytes", desc: true },
  ];
  const ks = defineKeyspace({ key: templateOf(fields) as string });
  withSeed(seedFor(3001), (p) => checkOrderProperty(ks, fields, p, 5000));
  // The cases that break naive schemes: a prefix string, an embedded NUL, a 0xff-ish next field.
  const sorted = [
    ["ab", 0n, new Uint8Array()],
    ["a\0", 5n, new Uint8Array([0])],
    ["a", 0n, new Uint8Array()],
    ["a", 2n ** 64n - 1n, new Uint8Array([0xff])],
    ["", 7n, new Uint8Array()],
  ];
  const enc = sorted.map((k) => ks.key.encode(k as [string, bigint, Uint8Array]));
  for (let i = 0; i + 1 < enc.length; i++) {
    expect(ks.key.compare(enc[i], enc[i + 1])).toBeLessThan(0);
  }
});

test("random composite layouts of 1-5 fields keep memcmp == natural order", () => {
  withSeed(seedFor(4000), (p) => {
    for (let round = 0; round < 60; round++) {
      const count = 1 + p.int(5);
      const fields: FieldSpec[] = Array.from({ length: count }, (_, i) => ({
        name: `f${i}x`,
        type: p.pick(TYPES),
        desc: p.next() < 0.4,
      }));
      const ks = defineKeyspace({ key: templateOf(fields) as string });
      try {
        checkOrderProperty(ks, fields, p, 1000);
      } catch (e) {
        (e as Error).message = `layout ${templateOf(fields)} (round ${round}): ${
          (e as Error).message
        }`;
        throw e;
      }
    }
  });
});

test("encodePrefix is a byte prefix of every key that starts with those fields", () => {
  const fields: FieldSpec[] = [
    { name: "a", type: "str", desc: false },
    { name: "b", type: "i32be", desc: true },
    { name: "c", type: "bytes", desc: false },
  ];
  const ks = defineKeyspace({ key: templateOf(fields) as string });
  withSeed(seedFor(5000), (p) => {
    for (let i = 0; i < 2000; i++) {
      const key = fields.map((f) => GENERATORS[f.type](p));
      const full = ks.key.encode(key as [string, number, Uint8Array]);
      for (let g = 0; g <= fields.length; g++) {
        const bound = ks.key.encodeBound(key.slice(0, g) as [string, number, Uint8Array]);
        expect(bound.complete).toBe(g === fields.length);
        expect(full.subarray(0, bound.bytes.length)).toEqual(bound.bytes);
        const obj = Object.fromEntries(fields.slice(0, g).map((f, j) => [f.name, key[j]]));
        expect(ks.key.encodePrefix(obj as { a: string })).toEqual(bound.bytes);
      }
    }
  });
});
