/**
 * The generated encode/decode (generate_key_codec.ts) behave exactly like the generic path:
 * same bytes, same decoded keys, same errors, for valid and malformed inputs alike.
 */
import { expect, test } from "bun:test";
import { compileKeyCodec } from "../../src/keyspace/compile_key_codec.ts";
import { parseTemplate } from "../../src/keyspace/parse_template.ts";
import { defineKeyspace } from "../../mod.ts";
import type { Prng } from "../../src/util/prng.ts";
import { type FieldSpec, GENERATORS, seedFor, templateOf, withSeed } from "./helpers.ts";

const TYPES = Object.keys(GENERATORS);

function outcome(fn: () => unknown): unknown {
  try {
    return { ok: fn() };
  } catch (e) {
    return {
      error: (e as Error).name,
      code: (e as { code?: string }).code,
      message: (e as Error).message,
    };
  }
}

/** A key in some shape: valid object/tuple/scalar, or damaged (missing, extra, undefined, wrong type). */
function randomInput(p: Prng, fields: FieldSpec[]): unknown {
  const values = fields.map((f) => GENERATORS[f.type](p));
  const r = p.next();
  if (r < 0.1 && values.length > 0) {
    values[p.int(values.length)] = p.pick([undefined, "x", -1, 1.5, null, {}]);
  }
  const asObject = () => Object.fromEntries(fields.map((f, i) => [f.name, values[i]]));
  if (r < 0.35) return fields.length === 1 ? values[0] : values;
  if (r < 0.4) return values.slice(0, p.int(values.length + 1));
  if (r < 0.45) return [...values, 1];
  if (r < 0.5) return { ...asObject(), extra: p.pick([undefined, 1]) };
  if (r < 0.55) return p.pick([5, "s", null, undefined, new Uint8Array(2)]);
  return asObject();
}

function randomBytes(p: Prng, good: Uint8Array): Uint8Array {
  const r = p.next();
  if (r < 0.6) return good;
  if (r < 0.75) return good.subarray(0, p.int(good.length + 1));
  const out = new Uint8Array([...good, ...(r < 0.85 ? [p.u32() & 0xff] : [])]);
  if (out.length > 0) out[p.int(out.length)] = p.u32() & 0xff;
  return out;
}

test("generated and generic key codecs agree on random layouts and inputs", () => {
  withSeed(seedFor(8000), (p) => {
    for (let round = 0; round < 150; round++) {
      const fields: FieldSpec[] = Array.from({ length: 1 + p.int(4) }, (_, i) => ({
        name: `n${i}`,
        type: p.pick(TYPES),
        desc: p.next() < 0.3,
      }));
      const parsed = parseTemplate(templateOf(fields));
      const fast = compileKeyCodec(parsed);
      const slow = compileKeyCodec(parsed, { generate: false });
      for (let i = 0; i < 100; i++) {
        const input = randomInput(p, fields);
        const a = outcome(() => fast.encode(input as never));
        const b = outcome(() => slow.encode(input as never));
        expect(a).toEqual(b);
        const good = (a as { ok?: Uint8Array }).ok;
        if (good === undefined) continue;
        const bytes = randomBytes(p, good);
        expect(outcome(() => fast.decode(bytes))).toEqual(outcome(() => slow.decode(bytes)));
      }
    }
  });
});

test("keyspaces with the same fields share one compiled codec; any difference gets its own", () => {
  const a = defineKeyspace({ key: "sensor:<str>:ts:<u64be>", value: "bytes" });
  const b = defineKeyspace({ name: "other", key: "sensor:<str>:ts:<u64be>", value: "u32be" });
  // Same functions: the JIT's compiled code for them serves every tree of the layout.
  expect(b.key).toBe(a.key);
  expect(b.key.decode).toBe(a.key.decode);
  const differ = [
    "sensor:<str>:ts:<u64be:desc>",
    "sensor:<str>:at:<u64be>",
    "sensor:<str>:ts:<i64be>",
    "device:<str>:ts:<u64be>",
  ].map((key) => defineKeyspace({ key, value: "bytes" }).key);
  for (const k of differ) expect(k).not.toBe(a.key);
  expect(new Set(differ).size).toBe(differ.length);
  const parsed = parseTemplate("sensor:<str>:ts:<u64be>");
  expect(compileKeyCodec(parsed, { generate: false })).not.toBe(a.key);
  expect(compileKeyCodec(parsed, { generate: false }).decode).not.toBe(a.key.decode);
  // Shared scratch state (the last bound's field count) stays per call.
  expect(a.key.encodeBound({ sensor: "s" }).complete).toBe(false);
  expect(b.key.encodeBound(["s", 5]).complete).toBe(true);
  expect(a.key.encodeBound(["s"]).complete).toBe(false);
  const desc = differ[0];
  expect(desc.compare(desc.encode(["s", 1]), desc.encode(["s", 2]))).toBeGreaterThan(0);
  expect(a.key.compare(a.key.encode(["s", 1]), a.key.encode(["s", 2]))).toBeLessThan(0);
});
