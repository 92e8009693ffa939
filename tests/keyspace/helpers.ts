/**
 * Shared helpers of the keyspace tests (bun suites in this folder and the Deno suite):
 * seeded random key generators with edge-value bias, the natural order of each field type,
 * and the order/round-trip property check. Every failure message carries the seed; set
 * `ZT_SEED` to rerun one seed.
 */
import { Prng } from "../../src/util/prng.ts";
import { compareBytes } from "../../src/util/bytes.ts";
import type { Keyspace } from "../../src/keyspace/define_keyspace.ts";

/** The seed of a property test: `ZT_SEED` from the environment, else `fallback`. */
export function seedFor(fallback: number): number {
  const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env
    .ZT_SEED;
  return env !== undefined ? Number(env) : fallback;
}

/** Runs `fn`, prefixing any failure with the seed that reproduces it. */
export function withSeed(seed: number, fn: (prng: Prng) => void): void {
  try {
    fn(new Prng(seed));
  } catch (e) {
    const err = e as Error;
    err.message = `[seed ${seed}; rerun with ZT_SEED=${seed}] ${err.message}`;
    throw err;
  }
}

// ---- generators ------------------------------------------------------------------------------

/** A random value generator for one field type. */
export type Gen = (p: Prng) => unknown;

function intGen(min: number, max: number): Gen {
  const edges = [min, min + 1, -1, 0, 1, max - 1, max].filter((x) => x >= min && x <= max);
  return (p) => p.next() < 0.2 ? p.pick(edges) : min + Math.floor(p.next() * (max - min + 1));
}

function u64(p: Prng): bigint {
  return (BigInt(p.u32()) << 32n) | BigInt(p.u32());
}

const U64_EDGES = [
  0n,
  1n,
  2n ** 32n - 1n,
  2n ** 32n,
  2n ** 53n - 1n,
  2n ** 53n,
  2n ** 63n,
  2n ** 64n - 1n,
];
const I64_EDGES = [
  -(2n ** 63n),
  -(2n ** 53n),
  -(2n ** 32n),
  -1n,
  0n,
  1n,
  2n ** 53n - 1n,
  2n ** 63n - 1n,
];

/** u64 as number (safe range) or bigint; small values often, to make ties. */
function u64Gen(p: Prng): number | bigint {
  const r = p.next();
  if (r < 0.15) return p.pick(U64_EDGES);
  if (r < 0.35) return p.int(50); // number input, many ties
  if (r < 0.55) return Math.floor(p.next() * Number.MAX_SAFE_INTEGER);
  return u64(p);
}

function i64Gen(p: Prng): number | bigint {
  const r = p.next();
  if (r < 0.15) return p.pick(I64_EDGES);
  if (r < 0.35) return p.int(50) - 25;
  if (r < 0.55) return Math.floor((p.next() - 0.5) * 2 * Number.MAX_SAFE_INTEGER);
  return BigInt.asIntN(64, u64(p));
}

const F64_EDGES = [
  0,
  -0,
  1,
  -1,
  Infinity,
  -Infinity,
  Number.MIN_VALUE,
  -Number.MIN_VALUE,
  Number.MAX_VALUE,
  -Number.MAX_VALUE,
  0.1,
  -0.1,
  2 ** 53,
];
const f64Scratch = new DataView(new ArrayBuffer(8));
function f64Gen(p: Prng): number {
  const r = p.next();
  if (r < 0.2) return p.pick(F64_EDGES);
  if (r < 0.4) return (p.int(20) - 10) / 4;
  for (;;) {
    f64Scratch.setUint32(0, p.u32());
    f64Scratch.setUint32(4, p.u32());
    const x = f64Scratch.getFloat64(0);
    if (!Number.isNaN(x)) return x;
  }
}

/** Characters that stress UTF-8 order: NUL, ASCII, 2- and 3-byte, U+E000-U+FFFF, astral, BOM. */
const CHARS = [
  "",
  "\0",
  "a",
  "b",
  "z",
  "\x7f",
  "\x80",
  "é",
  "ÿ",
  "߿",
  "ࠀ",
  "中",
  "\ufeff",
  "\ue000",
  "\uffff",
  "😀",
  "𐀀",
  "\u{10ffff}",
];
function strGen(p: Prng): string {
  const n = p.int(6);
  let s = "";
  for (let i = 0; i < n; i++) s += p.next() < 0.5 ? p.pick(["a", "b", "\0"]) : p.pick(CHARS);
  return s;
}

function bytesGen(p: Prng, n?: number): Uint8Array {
  const len = n ?? p.int(6);
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = p.next() < 0.5 ? p.pick([0, 1, 0xff]) : p.u32() & 0xff;
  return out;
}

function uuidGen(p: Prng): string {
  let hex = "";
  for (let i = 0; i < 32; i++) {
    hex += p.next() < 0.3 ? p.pick(["0", "f"]) : (p.u32() & 15).toString(16);
  }
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
    hex.slice(20)
  }`;
}

/** Generator of each key field type. */
export const GENERATORS: Record<string, Gen> = {
  u8: intGen(0, 0xff),
  u16be: intGen(0, 0xffff),
  u32be: intGen(0, 0xffff_ffff),
  i8: intGen(-0x80, 0x7f),
  i16be: intGen(-0x8000, 0x7fff),
  i32be: intGen(-0x8000_0000, 0x7fff_ffff),
  u64be: u64Gen,
  i64be: i64Gen,
  f64: f64Gen,
  bool: (p) => p.next() < 0.5,
  uuid: uuidGen,
  "bytes:3": (p) => bytesGen(p, 3),
  str: strGen,
  bytes: (p) => bytesGen(p),
};

// ---- natural order ---------------------------------------------------------------------------

/** Code point order of two strings (= UTF-8 byte order; differs from JS `<` for astral chars). */
export function compareCodePoints(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const d = x[i].codePointAt(0)! - y[i].codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

/** Natural order of two values of one field type (64-bit ints compared as bigint). */
export function compareNatural(type: string, a: unknown, b: unknown): number {
  if (type === "str") return compareCodePoints(a as string, b as string);
  if (type === "bytes" || type.startsWith("bytes:")) {
    return compareBytes(a as Uint8Array, b as Uint8Array);
  }
  if (type === "u64be" || type === "i64be") {
    const x = BigInt(a as number | bigint);
    const y = BigInt(b as number | bigint);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (type === "uuid") {
    return compareCodePoints((a as string).toLowerCase(), (b as string).toLowerCase());
  }
  const x = a as number;
  const y = b as number;
  return x < y ? -1 : x > y ? 1 : 0; // -0 == 0, as the f64 encoding stores it
}

/** The decoded form of an input value: 64-bit ints as bigint, -0 as 0, uuids lowercase. */
export function normalize(type: string, v: unknown): unknown {
  if (type === "u64be" || type === "i64be") return BigInt(v as number | bigint);
  if (type === "f64" && v === 0) return 0;
  if (type === "uuid") return (v as string).toLowerCase();
  return v;
}

// ---- the property ------------------------------------------------------------------------------

/** A field of a composite layout under test. */
export interface FieldSpec {
  name: string;
  type: string;
  desc: boolean;
}

/** Natural order of two composite keys given as tuples, field by field, honouring `desc`. */
export function compareKeys(fields: readonly FieldSpec[], a: unknown[], b: unknown[]): number {
  for (let i = 0; i < fields.length; i++) {
    const d = compareNatural(fields[i].type, a[i], b[i]);
    if (d !== 0) return fields[i].desc ? -d : d;
  }
  return 0;
}

const sign = (x: number): number => (x > 0 ? 1 : x < 0 ? -1 : 0);

function show(v: unknown): string {
  return JSON.stringify(
    v,
    (_k, x) =>
      typeof x === "bigint"
        ? `${x}n`
        : x instanceof Uint8Array
        ? `bytes[${[...x]}]`
        : Object.is(x, -0)
        ? "-0"
        : x,
  );
}

/**
 * Generates `count` random keys for `ks` (tuples by `fields`), then checks: decode(encode(k))
 * equals the normalized key; and for neighbours in natural order and for random pairs,
 * sign(memcmp) == sign(natural order) == sign(ks.key.compare). Throws a descriptive Error.
 */
export function checkOrderProperty(
  ks: Keyspace,
  fields: readonly FieldSpec[],
  prng: Prng,
  count: number,
): void {
  const single = fields.length === 1;
  const keys = Array.from({ length: count }, () => fields.map((f) => GENERATORS[f.type](prng)));
  const encoded = keys.map((k) => ks.key.encode((single ? k[0] : k) as never));
  for (let i = 0; i < count; i++) checkRoundTrip(ks, fields, keys[i], encoded[i]);
  const order = keys.map((_, i) => i).sort((x, y) => compareKeys(fields, keys[x], keys[y]));
  for (let j = 0; j + 1 < count; j++) checkPair(ks, fields, keys, encoded, order[j], order[j + 1]);
  for (let j = 0; j < count; j++) {
    checkPair(ks, fields, keys, encoded, prng.int(count), prng.int(count));
  }
}

function checkRoundTrip(
  ks: Keyspace,
  fields: readonly FieldSpec[],
  key: unknown[],
  bytes: Uint8Array,
): void {
  const decoded = ks.key.decode(bytes);
  const values = fields.length === 1
    ? [decoded]
    : fields.map((f) => (decoded as Record<string, unknown>)[f.name]);
  for (let i = 0; i < fields.length; i++) {
    const want = normalize(fields[i].type, key[i]);
    const got = values[i];
    const same = want instanceof Uint8Array
      ? got instanceof Uint8Array && compareBytes(want, got) === 0
      : Object.is(want, got);
    if (!same) {
      throw new Error(`round trip of ${show(key)}: field ${fields[i].name} gave ${show(got)}`);
    }
  }
}

function checkPair(
  ks: Keyspace,
  fields: readonly FieldSpec[],
  keys: unknown[][],
  encoded: Uint8Array[],
  i: number,
  j: number,
): void {
  const natural = sign(compareKeys(fields, keys[i], keys[j]));
  const bytes = sign(compareBytes(encoded[i], encoded[j]));
  const cmp = sign(ks.key.compare(encoded[i], encoded[j]));
  if (natural !== bytes || bytes !== cmp) {
    throw new Error(
      `order of ${show(keys[i])} vs ${
        show(keys[j])
      }: natural ${natural}, memcmp ${bytes}, compare ${cmp} ` +
        `(bytes ${show(encoded[i])} vs ${show(encoded[j])})`,
    );
  }
}

/** The template of a layout from field specs: `<name:type[:desc]>` joined by `/`. */
export function templateOf(fields: readonly FieldSpec[]): string {
  return fields.map((f) => {
    const [word, n] = f.type.split(":");
    return `<${f.name}:${word}${n ? `:${n}` : ""}${f.desc ? ":desc" : ""}>`;
  }).join("/");
}
