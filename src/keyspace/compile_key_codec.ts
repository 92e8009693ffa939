/**
 * The compiled key codec of a layout: turns keys (objects by field name, tuples, or the bare
 * scalar of a one-field layout) and prefixes into order-preserving bytes and back.
 *
 * Encoded key = the fields' encodings concatenated, in layout order. Literal template text is
 * not stored (it is the same in every key; it is part of the identity instead), so
 * `metric:<u32be>:ts:<u64be:desc>` encodes to 12 bytes.
 *
 * Invariants:
 * - every input is validated (shape, then each field) before a byte is returned; a bad key is a
 *   KeyEncodingError naming the field;
 * - `encode` allocates only its output; for a fixed-width layout every key has `fixedWidth`
 *   bytes;
 * - `encodePrefix(p)` is a byte prefix of `encode(k)` for every key `k` that starts with the
 *   fields of `p`;
 * - `decode(encode(k))` equals `k` (64-bit integers come back as bigint, -0 as 0, uuids in
 *   lowercase), and `compare` agrees with memcmp.
 *
 * @module
 */
import { KeyEncodingError } from "../api/errors.ts";
import type { FieldCodec } from "./codec_contract.ts";
import { readCursor } from "./codec_contract.ts";
import { compileComparer, type KeyComparer } from "./compile_comparer.ts";
import { fieldCodec } from "./field_codec.ts";
import type { KeyField } from "./key_field_type.ts";
import { describeValue } from "./key_errors.ts";
import { generateDecode, generateEncode } from "./generate_key_codec.ts";
import type { ParsedTemplate } from "./parse_template.ts";
import type { AnyKey, AnyKeyInput } from "./template_types.ts";
import { newCopyArray } from "../util/bytes.ts";

/** Encoded bytes of a key or prefix, and whether every field was given. */
export interface KeyBound {
  /** The encoded bytes (all keys with this prefix start with them). */
  readonly bytes: Uint8Array;
  /** True when every field of the layout was given (the bytes are a whole key). */
  readonly complete: boolean;
}

/**
 * The key side of a compiled keyspace. `K` is the decoded key type, `KIn` what `encode`
 * accepts, `P` what prefixes and bounds accept (a full key or any leading subset of fields).
 */
export interface KeyCodec<K = AnyKey, KIn = AnyKeyInput, P = AnyKeyInput> {
  /** Encodes a whole key (object by field names, tuple, or the bare scalar of a one-field layout). */
  encode(key: KIn): Uint8Array;
  /** Encodes a prefix (any leading subset of fields); every key with it starts with these bytes. */
  encodePrefix(prefix: P): Uint8Array;
  /** Encodes a whole key or a prefix, saying which it was (for range bounds and seeks). */
  encodeBound(keyOrPrefix: P): KeyBound;
  /** Decodes an encoded key into the object form (the bare scalar for a one-field layout). */
  decode(bytes: Uint8Array): K;
  /** Compares two encoded keys: negative, zero or positive, in memcmp order. */
  compare(a: Uint8Array, b: Uint8Array): number;
  /** The fields in layout order. */
  readonly fields: readonly KeyField[];
  /** Encoded length of every key when all fields are fixed-width; otherwise undefined. */
  readonly fixedWidth: number | undefined;
}

/** Most compiled key codecs kept for reuse (distinct field lists; the oldest goes first). */
const CODEC_CACHE_MAX = 64;

/**
 * Compiled codecs by field list (names, types, order) and code generation. A codec holds no
 * state beyond the synchronous scratch of one call, so keyspaces with the same fields share
 * one: its generated functions are then the same function objects, and the JIT's optimized
 * code for them carries over to every tree opened with the layout, instead of each
 * `defineKeyspace` (a reopen, a partition per time bucket, a throwaway tree) compiling new
 * functions that start again in the interpreter.
 */
const codecCache = new Map<string, KeyCodec>();

/**
 * Compiles the key codec for a parsed template, or returns the one compiled earlier for the same
 * fields. `generate: false` keeps the generic encode and decode instead of the generated ones
 * (tests compare the two).
 */
export function compileKeyCodec(
  parsed: ParsedTemplate,
  options: { generate?: boolean } = {},
): KeyCodec {
  const generate = options.generate ?? true;
  const cacheKey = `${generate ? "g" : "n"}${JSON.stringify(parsed.fields)}`;
  const cached = codecCache.get(cacheKey);
  if (cached !== undefined) return cached;
  const codec = Object.freeze(buildKeyCodec(parsed, generate));
  if (codecCache.size >= CODEC_CACHE_MAX) codecCache.delete(codecCache.keys().next().value!);
  codecCache.set(cacheKey, codec);
  return codec;
}

function buildKeyCodec(parsed: ParsedTemplate, generate: boolean): KeyCodec {
  const shape = new KeyShape(parsed.fields);
  const codecs = parsed.fields.map(fieldCodec);
  const widths = codecs.map((c) => c.width);
  const fixedWidth = widths.every((w) => w > 0) ? widths.reduce((a, b) => a + b, 0) : undefined;
  const write = (key: unknown, given: number) => writeFields(codecs, shape, key, given, fixedWidth);
  const genericEncode = (key: unknown): Uint8Array => {
    const given = shape.given(key, false);
    if (given < codecs.length) throw shape.missing(given);
    return write(key, given);
  };
  const genericDecode = (bytes: Uint8Array) => decodeFields(codecs, shape.names, bytes, fixedWidth);
  const encode =
    (generate ? generateEncode(codecs, shape.names, fixedWidth, genericEncode) : undefined) ??
      genericEncode;
  const decode =
    (generate ? generateDecode(codecs, shape.names, fixedWidth, genericDecode) : undefined) ??
      genericDecode;
  let lastGiven = 0;
  const encodeLeading = (keyOrPrefix: unknown): Uint8Array => {
    lastGiven = shape.given(keyOrPrefix, true);
    return write(keyOrPrefix, lastGiven);
  };
  return {
    encode,
    encodePrefix: encodeLeading,
    encodeBound(keyOrPrefix: unknown): KeyBound {
      const bytes = encodeLeading(keyOrPrefix);
      return { bytes, complete: lastGiven === codecs.length };
    },
    decode: decode as (bytes: Uint8Array) => AnyKey,
    compare: compileComparer(fixedWidth) satisfies KeyComparer,
    fields: Object.freeze(parsed.fields.map((f) => Object.freeze({ ...f }))),
    fixedWidth,
  };
}

/** Key forms, as found by {@link KeyShape.given}. */
const SCALAR = 0;
const TUPLE = 1;
const OBJECT = 2;

/**
 * Recognises the form of a key or prefix (scalar, tuple, object) and how many leading fields
 * it gives, rejecting extra, unknown and out-of-order fields. Remembers the form of the last
 * key it looked at, for {@link KeyShape.valueAt} (encoding is synchronous).
 */
class KeyShape {
  readonly names: readonly string[];
  private form = SCALAR;

  constructor(fields: readonly KeyField[]) {
    this.names = fields.map((f) => f.name);
  }

  /** The value of field `i` of the key last passed to `given`. */
  valueAt(key: unknown, i: number): unknown {
    if (this.form === OBJECT) return (key as Record<string, unknown>)[this.names[i]];
    if (this.form === TUPLE) return (key as unknown[])[i];
    return key;
  }

  /** How many leading fields `key` gives. Throws KeyEncodingError for a malformed key. */
  given(key: unknown, prefix: boolean): number {
    const n = this.names.length;
    if (Array.isArray(key)) {
      this.form = TUPLE;
      return this.givenTuple(key, prefix);
    }
    if (typeof key === "object" && key !== null && !(key instanceof Uint8Array)) {
      this.form = OBJECT;
      return this.givenObject(key as Record<string, unknown>, prefix);
    }
    if (n !== 1) {
      throw new KeyEncodingError(
        `key must be an object or a tuple of fields (${this.names.join(", ")}), got ${
          describeValue(key)
        }`,
      );
    }
    this.form = SCALAR;
    if (key === undefined) throw this.missing(0);
    return 1;
  }

  private givenTuple(key: readonly unknown[], prefix: boolean): number {
    const n = this.names.length;
    if (key.length > n) {
      throw new KeyEncodingError(
        `key has ${key.length} items but the layout has ${n} field${n === 1 ? "" : "s"} (${
          this.names.join(", ")
        })`,
      );
    }
    let g = 0;
    while (g < key.length && key[g] !== undefined) g++;
    const later = definedFrom(key, g + 1);
    if (later >= 0) throw this.gapError(g, later, prefix);
    return g;
  }

  private givenObject(key: Record<string, unknown>, prefix: boolean): number {
    const names = this.names;
    let g = 0;
    while (g < names.length && key[names[g]] !== undefined) g++;
    let present = 0;
    for (const k in key) if (key[k] !== undefined) present++;
    if (present !== g) throw this.objectError(key, g, prefix);
    return g;
  }

  private objectError(key: Record<string, unknown>, g: number, prefix: boolean): KeyEncodingError {
    for (const k in key) {
      if (key[k] !== undefined && !this.names.includes(k)) {
        return new KeyEncodingError(
          `key has unknown field "${k}" (fields: ${this.names.join(", ")})`,
          k,
        );
      }
    }
    const later = this.names.findIndex((name, i) => i > g && key[name] !== undefined);
    return this.gapError(g, later, prefix);
  }

  /** Field `g` is missing but field `later` is given. */
  private gapError(g: number, later: number, prefix: boolean): KeyEncodingError {
    if (!prefix) return this.missing(g);
    const name = this.names[g];
    return new KeyEncodingError(
      `prefix gives field "${this.names[later]}" but not "${name}" before it ` +
        "(a prefix is a leading subset of the fields)",
      name,
    );
  }

  /** The error for a whole key that lacks field `g`. */
  missing(g: number): KeyEncodingError {
    const name = this.names[g];
    return new KeyEncodingError(`key field "${name}" is missing`, name);
  }
}

/** Index of the first item at or after `from` that is not undefined, or -1. */
function definedFrom(items: readonly unknown[], from: number): number {
  for (let i = from; i < items.length; i++) if (items[i] !== undefined) return i;
  return -1;
}

/** Encodes the first `given` fields of `key` (its form already recognised by `shape`). */
function writeFields(
  codecs: readonly FieldCodec[],
  shape: KeyShape,
  key: unknown,
  given: number,
  fixedWidth: number | undefined,
): Uint8Array {
  let length = 0;
  if (fixedWidth !== undefined && given === codecs.length) {
    length = fixedWidth;
  } else {
    for (let i = 0; i < given; i++) length += codecs[i].size(shape.valueAt(key, i));
  }
  const out = newCopyArray(length);
  let pos = 0;
  for (let i = 0; i < given; i++) pos = codecs[i].write(out, pos, shape.valueAt(key, i));
  return out;
}

/** Decodes a whole encoded key; throws KeyEncodingError when the bytes are not one. */
function decodeFields(
  codecs: readonly FieldCodec[],
  names: readonly string[],
  bytes: Uint8Array,
  fixedWidth: number | undefined,
): unknown {
  const end = bytes.length;
  if (fixedWidth !== undefined && end !== fixedWidth) {
    throw new KeyEncodingError(`cannot decode key: ${end} bytes, expected ${fixedWidth}`);
  }
  if (codecs.length === 1) {
    const value = codecs[0].read(bytes, 0, end);
    if (fixedWidth === undefined) checkEnd(readCursor.pos, end);
    return value;
  }
  const out: Record<string, unknown> = {};
  let pos = 0;
  for (let i = 0; i < codecs.length; i++) {
    const c = codecs[i];
    if (c.width > 0 && pos + c.width > end) {
      throw new KeyEncodingError(`cannot decode key: truncated in field "${names[i]}"`, names[i]);
    }
    out[names[i]] = c.read(bytes, pos, end);
    pos = c.width > 0 ? pos + c.width : readCursor.pos;
  }
  checkEnd(pos, end);
  return out;
}

function checkEnd(pos: number, end: number): void {
  if (pos !== end) {
    throw new KeyEncodingError(`cannot decode key: ${end - pos} bytes after the last field`);
  }
}
