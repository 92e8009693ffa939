/**
 * Value codecs (API.md §1 "Value codecs"): json (default), utf8, bytes, fixed-width scalars,
 * fixed-size structs, and user-supplied custom codecs. Values need no order, so scalars use
 * plain big-endian encodings (not the order-preserving key encodings):
 *
 * | spec                 | bytes | encoding                                                  |
 * |----------------------|-------|-----------------------------------------------------------|
 * | "json"               | var   | UTF-8 of `JSON.stringify(value)`                          |
 * | "utf8"               | var   | UTF-8 of the string (lone surrogates rejected)            |
 * | "bytes"              | var   | the bytes                                                 |
 * | u8 u16be u32be       | 1 2 4 | unsigned big-endian                                       |
 * | i8 i16be i32be       | 1 2 4 | two's complement big-endian                               |
 * | u64be i64be          | 8     | unsigned / two's complement big-endian (bigint out)       |
 * | f64 f32              | 8 4   | IEEE-754 big-endian (NaN and -0 kept; f32 rounds)         |
 * | bool                 | 1     | 0x00 / 0x01                                               |
 * | uuid                 | 16    | the 16 bytes                                              |
 * | bytes:N              | N     | the bytes                                                 |
 * | { a: "f64", b: .. }  | sum   | the fields' scalar encodings, in the object's key order   |
 *
 * Struct field order is the spec object's own key order (`Object.keys`: integer-like names
 * first, then the others in insertion order; JSON files keep their written order for
 * non-integer names). The order is part of the codec id, hence of the keyspace identity.
 *
 * Invariants: `encode` throws ValueEncodingError (never returns partial bytes) for a value the
 * codec cannot represent; fixed-width codecs always produce `fixedWidth` bytes; `decode`
 * copies, so callers may keep or mutate what it returns.
 *
 * @module
 */
import { SchemaError, ValueEncodingError, ZoneTreeError } from "../api/errors.ts";
import { readUuid, writeUuid } from "./field_codec.ts";
import { bytesN, VALUE_SCALAR_TYPES } from "./key_field_type.ts";
import { describeValue } from "./key_errors.ts";
import type { CustomValueCodec, JsonSpec } from "./template_types.ts";
import { copyBytes, copyOf, newCopyArray } from "../util/bytes.ts";

/** The value side of a compiled keyspace. */
export interface ValueCodec<V = unknown> {
  /** Encodes a value. Throws ValueEncodingError when the codec cannot represent it. */
  encode(value: V): Uint8Array;
  /** Decodes stored bytes. Throws ValueEncodingError when they are not a valid encoding. */
  decode(bytes: Uint8Array): V;
  /** Encoded length of every value for scalar, struct and fixed custom codecs; else undefined. */
  readonly fixedWidth: number | undefined;
  /** Stable codec id, part of the keyspace identity: `json`, `f64`, `struct{...}`, `custom:"id"`. */
  readonly id: string;
}

/** The JSON-serializable form of a value codec spec (a custom codec is named by its id only). */
export type ValueSpecJson = string | Record<string, string> | { custom: string };

/**
 * The `"json"` value codec, typed: `value: jsonValue<Event>()` makes the keyspace's value type
 * `Event` instead of `unknown`. At runtime it is just the string `"json"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineKeyspace, jsonValue } from "@zonetree/zonetree";
 *
 * interface Event { type: string; at: number }
 * const events = defineKeyspace({ key: "stream:<str>:<u64be>", value: jsonValue<Event>() });
 * const bytes = events.value.encode({ type: "created", at: 1 });
 * const back: Event = events.value.decode(bytes); // typed as Event, not unknown
 * assert.deepEqual(back, { type: "created", at: 1 });
 * ```
 */
export function jsonValue<T>(): JsonSpec<T> {
  return "json" as JsonSpec<T>;
}

const STRUCT_FIELDS_MAX = 256;

/** Compiles a value codec spec. Throws SchemaError for an invalid spec. */
export function compileValueCodec(spec: unknown): { codec: ValueCodec; json: ValueSpecJson } {
  if (spec === undefined || spec === "json") return { codec: JSON_CODEC, json: "json" };
  if (spec === "utf8") return { codec: UTF8_CODEC, json: "utf8" };
  if (spec === "bytes") return { codec: BYTES_CODEC, json: "bytes" };
  if (typeof spec === "string") {
    const scalar = scalarCodec(spec, "value");
    if (scalar === undefined) {
      throw new SchemaError(`value codec ${JSON.stringify(spec)} is unknown (${codecNames()})`);
    }
    return { codec: single(spec, scalar), json: spec };
  }
  if (typeof spec === "object" && spec !== null && !Array.isArray(spec)) {
    const s = spec as Record<string, unknown>;
    if (typeof s.encode === "function" || typeof s.decode === "function") {
      const codec = customCodec(s as unknown as CustomValueCodec<unknown>);
      return { codec, json: { custom: String(s.id) } };
    }
    return structCodec(s);
  }
  throw new SchemaError(
    `value codec must be a name, a struct object or a custom codec, got ${describeValue(spec)}`,
  );
}

function codecNames(): string {
  return `json, utf8, bytes, ${
    VALUE_SCALAR_TYPES.join(", ")
  }, bytes:N, a struct object or a custom codec`;
}

function valueError(path: string, what: string, cause?: unknown): ValueEncodingError {
  return new ValueEncodingError(`${path}: ${what}`, { cause });
}

// ---- variable-width codecs ----------------------------------------------------------------

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return decoder.decode(bytes);
  } catch (e) {
    throw valueError("value", `cannot decode ${what}: invalid UTF-8`, e);
  }
}

const JSON_CODEC: ValueCodec = {
  id: "json",
  fixedWidth: undefined,
  encode(value: unknown): Uint8Array {
    if (typeof value === "number" && !Number.isFinite(value)) {
      // JSON.stringify would store null: the value would not read back.
      throw valueError("value", `cannot be encoded as JSON: ${value} (JSON has no NaN or Infinity)`);
    }
    let text: string | undefined;
    try {
      text = JSON.stringify(value);
    } catch (e) {
      throw valueError("value", `cannot be encoded as JSON: ${(e as Error).message}`, e);
    }
    if (text === undefined) {
      throw valueError("value", `cannot be encoded as JSON: ${describeValue(value)}`);
    }
    return encoder.encode(text);
  },
  decode(bytes: Uint8Array): unknown {
    const text = decodeUtf8(bytes, "JSON");
    try {
      return JSON.parse(text);
    } catch (e) {
      throw valueError("value", "cannot decode JSON", e);
    }
  },
};

type WellFormed = { isWellFormed?: () => boolean };

const UTF8_CODEC: ValueCodec = {
  id: "utf8",
  fixedWidth: undefined,
  encode(value: unknown): Uint8Array {
    if (typeof value !== "string") {
      throw valueError("value", `expected a string, got ${describeValue(value)}`);
    }
    if ((value as WellFormed).isWellFormed?.() === false) {
      throw valueError("value", "string has a lone surrogate (not valid UTF-16)");
    }
    return encoder.encode(value);
  },
  decode: (bytes: Uint8Array) => decodeUtf8(bytes, "utf8"),
};

/**
 * Whether `codec` is the `"bytes"` codec, whose `decode` is a plain copy: a reader that has a
 * fresh copy of the stored bytes (`RecordCursor.copyValue`) may hand that out instead.
 */
export function decodesToCopy(codec: unknown): boolean {
  return codec === BYTES_CODEC;
}

const BYTES_CODEC: ValueCodec = {
  id: "bytes",
  fixedWidth: undefined,
  encode(value: unknown): Uint8Array {
    if (!(value instanceof Uint8Array)) {
      throw valueError("value", `expected a Uint8Array, got ${describeValue(value)}`);
    }
    return copyBytes(value);
  },
  decode: (bytes: Uint8Array) => copyBytes(bytes),
};

// ---- fixed-width scalars and structs ------------------------------------------------------

/** A fixed-width scalar: validates and writes at `pos`, reads at `pos`. */
interface Scalar {
  readonly width: number;
  write(out: Uint8Array, pos: number, v: unknown): void;
  read(b: Uint8Array, pos: number): unknown;
}

const scratch = new DataView(new ArrayBuffer(8));

function putU32(out: Uint8Array, pos: number, u: number): void {
  out[pos] = u >>> 24;
  out[pos + 1] = u >>> 16;
  out[pos + 2] = u >>> 8;
  out[pos + 3] = u;
}

function getU32(b: Uint8Array, pos: number): number {
  return ((b[pos] << 24) | (b[pos + 1] << 16) | (b[pos + 2] << 8) | b[pos + 3]) >>> 0;
}

function checkNumber(path: string, v: unknown): asserts v is number {
  if (typeof v !== "number") throw valueError(path, `expected a number, got ${describeValue(v)}`);
}

function intScalar(path: string, width: number, min: number, max: number): Scalar {
  const signed = min < 0;
  const shift = 32 - width * 8;
  return {
    width,
    write(out, pos, v) {
      checkNumber(path, v);
      if (!Number.isInteger(v)) throw valueError(path, `${describeValue(v)} is not an integer`);
      if (v < min) throw valueError(path, `${v} is below ${min}`);
      if (v > max) throw valueError(path, `${v} is above ${max}`);
      for (let i = 0; i < width; i++) out[pos + i] = v >>> ((width - 1 - i) * 8);
    },
    read(b, pos) {
      let u = 0;
      for (let i = 0; i < width; i++) u = (u << 8) | b[pos + i];
      // Sign-extend from `width` bytes (shift = 0 for 32-bit values).
      return signed ? (u << shift) >> shift : u >>> 0;
    },
  };
}

function int64Scalar(path: string, signed: boolean): Scalar {
  const min = signed ? -(2n ** 63n) : 0n;
  const max = signed ? 2n ** 63n - 1n : 2n ** 64n - 1n;
  return {
    width: 8,
    write(out, pos, v) {
      let big: bigint;
      if (typeof v === "number") {
        if (!Number.isSafeInteger(v)) {
          throw valueError(path, `${describeValue(v)} is not a safe integer; pass a bigint`);
        }
        big = BigInt(v);
      } else if (typeof v === "bigint") {
        big = v;
      } else {
        throw valueError(path, `expected a number or bigint, got ${describeValue(v)}`);
      }
      if (big < min) throw valueError(path, `${big}n is below ${min}n`);
      if (big > max) throw valueError(path, `${big}n is above ${max}n`);
      if (signed) scratch.setBigInt64(0, big);
      else scratch.setBigUint64(0, big);
      putU32(out, pos, scratch.getUint32(0));
      putU32(out, pos + 4, scratch.getUint32(4));
    },
    read(b, pos) {
      scratch.setUint32(0, getU32(b, pos));
      scratch.setUint32(4, getU32(b, pos + 4));
      return signed ? scratch.getBigInt64(0) : scratch.getBigUint64(0);
    },
  };
}

function floatScalar(path: string, width: 4 | 8): Scalar {
  return {
    width,
    write(out, pos, v) {
      checkNumber(path, v);
      if (width === 8) {
        scratch.setFloat64(0, v);
        putU32(out, pos, scratch.getUint32(0));
        putU32(out, pos + 4, scratch.getUint32(4));
      } else {
        scratch.setFloat32(0, v);
        putU32(out, pos, scratch.getUint32(0));
      }
    },
    read(b, pos) {
      scratch.setUint32(0, getU32(b, pos));
      if (width === 4) return scratch.getFloat32(0);
      scratch.setUint32(4, getU32(b, pos + 4));
      return scratch.getFloat64(0);
    },
  };
}

function otherScalar(type: string, path: string): Scalar | undefined {
  if (type === "bool") {
    return {
      width: 1,
      write(out, pos, v) {
        if (typeof v !== "boolean") {
          throw valueError(path, `expected a boolean, got ${describeValue(v)}`);
        }
        out[pos] = v ? 1 : 0;
      },
      read(b, pos) {
        if (b[pos] > 1) throw valueError(path, `cannot decode: byte ${b[pos]} is not a bool`);
        return b[pos] === 1;
      },
    };
  }
  if (type === "uuid") {
    return {
      width: 16,
      write(out, pos, v) {
        if (typeof v !== "string" || !writeUuid(out, pos, v, 0)) {
          throw valueError(
            path,
            `expected a uuid string (8-4-4-4-12 hex digits), got ${describeValue(v)}`,
          );
        }
      },
      read: (b, pos) => readUuid(b, pos, 0),
    };
  }
  const n = bytesN(type);
  if (n < 0) return undefined;
  return {
    width: n,
    write(out, pos, v) {
      if (!(v instanceof Uint8Array)) {
        throw valueError(path, `expected a Uint8Array of ${n} bytes, got ${describeValue(v)}`);
      }
      if (v.length !== n) throw valueError(path, `expected ${n} bytes, got ${v.length}`);
      out.set(v, pos);
    },
    read: (b, pos) => copyOf(b, pos, pos + n),
  };
}

/** The scalar codec for `type`, with `path` (e.g. `value field "temp"`) in its errors. */
function scalarCodec(type: string, path: string): Scalar | undefined {
  switch (type) {
    case "u8":
      return intScalar(path, 1, 0, 0xff);
    case "u16be":
      return intScalar(path, 2, 0, 0xffff);
    case "u32be":
      return intScalar(path, 4, 0, 0xffff_ffff);
    case "i8":
      return intScalar(path, 1, -0x80, 0x7f);
    case "i16be":
      return intScalar(path, 2, -0x8000, 0x7fff);
    case "i32be":
      return intScalar(path, 4, -0x8000_0000, 0x7fff_ffff);
    case "u64be":
      return int64Scalar(path, false);
    case "i64be":
      return int64Scalar(path, true);
    case "f64":
      return floatScalar(path, 8);
    case "f32":
      return floatScalar(path, 4);
  }
  return otherScalar(type, path);
}

function checkLength(bytes: Uint8Array, width: number): void {
  if (bytes.length !== width) {
    throw valueError("value", `cannot decode: ${bytes.length} bytes, expected ${width}`);
  }
}

/** A codec for one scalar value. */
function single(type: string, s: Scalar): ValueCodec {
  return {
    id: type,
    fixedWidth: s.width,
    encode(value: unknown): Uint8Array {
      const out = newCopyArray(s.width);
      s.write(out, 0, value);
      return out;
    },
    decode(bytes: Uint8Array): unknown {
      checkLength(bytes, s.width);
      return s.read(bytes, 0);
    },
  };
}

function structCodec(
  spec: Record<string, unknown>,
): { codec: ValueCodec; json: Record<string, string> } {
  const names = Object.keys(spec);
  if (names.length === 0) throw new SchemaError("struct value codec has no fields");
  if (names.length > STRUCT_FIELDS_MAX) {
    throw new SchemaError(`struct value codec has more than ${STRUCT_FIELDS_MAX} fields`);
  }
  const scalars: Scalar[] = [];
  const json: Record<string, string> = {};
  for (const name of names) {
    const type = spec[name];
    const s = typeof type === "string" && name !== "__proto__"
      ? scalarCodec(type, `value field "${name}"`)
      : undefined;
    if (s === undefined) {
      throw new SchemaError(
        `struct value field "${name}": expected a fixed-width scalar type (${
          VALUE_SCALAR_TYPES.join(", ")
        }, bytes:N), got ${describeValue(type)}`,
      );
    }
    scalars.push(s);
    json[name] = type as string;
  }
  const width = scalars.reduce((sum, s) => sum + s.width, 0);
  const codec: ValueCodec = {
    id: `struct${JSON.stringify(json)}`,
    fixedWidth: width,
    encode: (value: unknown) => encodeStruct(names, scalars, width, value),
    decode(bytes: Uint8Array): unknown {
      checkLength(bytes, width);
      const out: Record<string, unknown> = {};
      let pos = 0;
      for (let i = 0; i < names.length; i++) {
        out[names[i]] = scalars[i].read(bytes, pos);
        pos += scalars[i].width;
      }
      return out;
    },
  };
  return { codec, json };
}

function encodeStruct(
  names: string[],
  scalars: Scalar[],
  width: number,
  value: unknown,
): Uint8Array {
  if (
    typeof value !== "object" || value === null || Array.isArray(value) ||
    value instanceof Uint8Array
  ) {
    throw valueError(
      "value",
      `expected an object with fields ${names.join(", ")}, got ${describeValue(value)}`,
    );
  }
  const v = value as Record<string, unknown>;
  const out = newCopyArray(width);
  let pos = 0;
  for (let i = 0; i < names.length; i++) {
    const x = v[names[i]];
    if (x === undefined) throw valueError(`value field "${names[i]}"`, "is missing");
    scalars[i].write(out, pos, x);
    pos += scalars[i].width;
  }
  let present = 0;
  for (const k in v) if (v[k] !== undefined) present++;
  if (present !== names.length) {
    const extra = Object.keys(v).find((k) => v[k] !== undefined && !names.includes(k));
    throw valueError("value", `unknown field "${extra}" (fields: ${names.join(", ")})`);
  }
  return out;
}

function customCodec(spec: CustomValueCodec<unknown>): ValueCodec {
  const { id, fixedWidth } = spec;
  if (typeof id !== "string" || id === "") {
    throw new SchemaError("custom value codec needs a non-empty string id");
  }
  if (typeof spec.encode !== "function" || typeof spec.decode !== "function") {
    throw new SchemaError(`custom value codec "${id}" needs encode and decode functions`);
  }
  if (fixedWidth !== undefined && !(Number.isInteger(fixedWidth) && fixedWidth > 0)) {
    throw new SchemaError(
      `custom value codec "${id}": fixedWidth must be a positive integer, got ${
        describeValue(fixedWidth)
      }`,
    );
  }
  const path = `value (custom codec "${id}")`;
  return {
    id: `custom:${JSON.stringify(id)}${fixedWidth === undefined ? "" : `/${fixedWidth}`}`,
    fixedWidth,
    encode(value: unknown): Uint8Array {
      const out = callUser(() => spec.encode(value), path, "encode");
      if (!(out instanceof Uint8Array)) {
        throw valueError(path, `encode returned ${describeValue(out)}, not a Uint8Array`);
      }
      if (fixedWidth !== undefined && out.length !== fixedWidth) {
        throw valueError(path, `encode returned ${out.length} bytes, expected ${fixedWidth}`);
      }
      return out;
    },
    decode(bytes: Uint8Array): unknown {
      if (fixedWidth !== undefined) checkLength(bytes, fixedWidth);
      // User code gets bytes over a plain ArrayBuffer: views of a SharedArrayBuffer are refused
      // by some APIs (crypto.subtle, for one), and the arena chunks of the engine's B+tree
      // segments are shared (the helper reads them to lay a read-only segment out again, see
      // `BPlusTree.startRelayout`), so a value read from one is copied here first.
      const own = bytes.buffer instanceof ArrayBuffer ? bytes : copyBytes(bytes);
      return callUser(() => spec.decode(own), path, "decode");
    },
  };
}

/** Runs a user codec function; its own errors become ValueEncodingError (with the cause). */
function callUser<T>(fn: () => T, path: string, what: string): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ZoneTreeError) throw e;
    throw valueError(path, `${what} failed: ${e instanceof Error ? e.message : String(e)}`, e);
  }
}
