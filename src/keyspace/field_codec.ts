/**
 * Order-preserving codecs for one key field: the bytes of a field compare (memcmp) in the
 * natural order of its values. Fixed-width types live here; `str` and `bytes` (escaped,
 * terminated) live in `escaped_codec.ts`.
 *
 * Byte layouts (big-endian, most significant byte first; `desc` XORs every byte with 0xff):
 *
 * | type            | bytes | encoding                                                         |
 * |-----------------|-------|------------------------------------------------------------------|
 * | u8 u16be u32be  | 1 2 4 | unsigned big-endian                                              |
 * | i8 i16be i32be  | 1 2 4 | two's complement with the sign bit flipped (= value + 2^(n-1))   |
 * | u64be           | 8     | unsigned big-endian                                              |
 * | i64be           | 8     | two's complement with the sign bit flipped                       |
 * | f64             | 8     | IEEE-754 bits; x >= 0: sign bit flipped; x < 0: all bits flipped |
 * |                 |       | (-0 is stored as 0; NaN is rejected)                             |
 * | bool            | 1     | 0x00 false, 0x01 true                                            |
 * | uuid            | 16    | the 16 bytes of the hex digits, in order                         |
 * | bytes:N         | N     | the bytes as given                                               |
 *
 * Invariants: `write` validates the value (KeyEncodingError naming the field; the caller then
 * drops the half-written output), writes exactly `width` bytes, and never allocates; `read` is
 * the exact inverse and throws KeyEncodingError on bytes that no value encodes to (a bool byte
 * other than 0/1).
 *
 * @module
 */
import { bytesN, FIXED_WIDTHS, type KeyField, type KeyFieldType } from "./key_field_type.ts";
import { keyDecodeError, keyFieldError, keyTypeError } from "./key_errors.ts";
import { bytesCodec, strCodec } from "./escaped_codec.ts";
import type { FieldCodec } from "./codec_contract.ts";
import { copyOf } from "../util/bytes.ts";

export type { FieldCodec };

/** Builds the codec for one field of a parsed template. */
export function fieldCodec(field: KeyField): FieldCodec {
  const mask = field.desc ? 0xff : 0;
  const name = field.name;
  const type: KeyFieldType = field.type;
  switch (type) {
    case "u8":
      return int32Codec(field, 1, 0, 0xff, false, mask);
    case "u16be":
      return int32Codec(field, 2, 0, 0xffff, false, mask);
    case "u32be":
      return int32Codec(field, 4, 0, 0xffff_ffff, false, mask);
    case "i8":
      return int32Codec(field, 1, -0x80, 0x7f, true, mask);
    case "i16be":
      return int32Codec(field, 2, -0x8000, 0x7fff, true, mask);
    case "i32be":
      return int32Codec(field, 4, -0x8000_0000, 0x7fff_ffff, true, mask);
    case "u64be":
      return int64Codec(field, false, mask);
    case "i64be":
      return int64Codec(field, true, mask);
    case "f64":
      return f64Codec(field, mask);
    case "bool":
      return boolCodec(field, mask);
    case "uuid":
      return uuidCodec(field, mask);
    case "str":
      return strCodec(field, mask);
    case "bytes":
      return bytesCodec(field, mask);
  }
  const n = bytesN(type);
  if (n < 0) throw keyFieldError(name, `unknown type "${type}"`);
  return fixedBytesCodec(field, n, mask);
}

function fixed(
  field: KeyField,
  write: FieldCodec["write"],
  read: FieldCodec["read"],
): FieldCodec {
  const width = FIXED_WIDTHS[field.type] ?? bytesN(field.type);
  return { field, width, size: () => width, write, read };
}

/** Writes the low `width` bytes of `u` big-endian, XOR `mask`. */
function putUint(out: Uint8Array, pos: number, u: number, width: number, mask: number): void {
  if (width === 4) {
    out[pos] = (u >>> 24) ^ mask;
    out[pos + 1] = (u >>> 16) ^ mask;
    out[pos + 2] = (u >>> 8) ^ mask;
    out[pos + 3] = u ^ mask;
  } else if (width === 2) {
    out[pos] = (u >>> 8) ^ mask;
    out[pos + 1] = u ^ mask;
  } else {
    out[pos] = u ^ mask;
  }
}

/** Reads `width` bytes big-endian, XOR `mask`, as an unsigned number. */
function getUint(b: Uint8Array, pos: number, width: number, mask: number): number {
  if (width === 4) {
    return (((b[pos] ^ mask) << 24) | ((b[pos + 1] ^ mask) << 16) | ((b[pos + 2] ^ mask) << 8) |
      (b[pos + 3] ^ mask)) >>> 0;
  }
  if (width === 2) return ((b[pos] ^ mask) << 8) | (b[pos + 1] ^ mask);
  return b[pos] ^ mask;
}

/** Throws unless `v` is an integer number in [min, max]. */
function checkInt(name: string, v: unknown, min: number, max: number): asserts v is number {
  if (typeof v !== "number") throw keyTypeError(name, "a number", v);
  if (!Number.isInteger(v)) {
    throw keyFieldError(name, Number.isNaN(v) ? "NaN is not allowed" : `${v} is not an integer`);
  }
  if (v < min) throw keyFieldError(name, `${v} is below ${min}`);
  if (v > max) throw keyFieldError(name, `${v} is above ${max}`);
}

function int32Codec(
  field: KeyField,
  width: number,
  min: number,
  max: number,
  signed: boolean,
  mask: number,
): FieldCodec {
  const name = field.name;
  const bias = signed ? -min : 0; // offset binary: the sign bit flipped
  return fixed(
    field,
    (out, pos, v) => {
      checkInt(name, v, min, max);
      putUint(out, pos, v + bias, width, mask);
      return pos + width;
    },
    (b, pos) => getUint(b, pos, width, mask) - bias,
  );
}

const TWO_32 = 0x1_0000_0000;
const U64_MAX = 0xffff_ffff_ffff_ffffn;
const I64_MIN = -0x8000_0000_0000_0000n;
const I64_MAX = 0x7fff_ffff_ffff_ffffn;
/** Scratch space for float bits and bigint halves: reused, never escapes a call. */
const scratch = new DataView(new ArrayBuffer(8));

function int64Codec(field: KeyField, signed: boolean, mask: number): FieldCodec {
  const name = field.name;
  const flip = signed ? 0x8000_0000 : 0;
  return fixed(
    field,
    (out, pos, v) => {
      let hi: number;
      let lo: number;
      if (typeof v === "number") {
        checkSafe(name, v, signed);
        hi = Math.floor(v / TWO_32); // negative numbers: the two's complement high word
        lo = v - hi * TWO_32;
      } else if (typeof v === "bigint") {
        checkBig(name, v, signed);
        if (signed) scratch.setBigInt64(0, v);
        else scratch.setBigUint64(0, v);
        hi = scratch.getUint32(0);
        lo = scratch.getUint32(4);
      } else {
        throw keyTypeError(name, "a number or bigint", v);
      }
      putUint(out, pos, hi ^ flip, 4, mask);
      putUint(out, pos + 4, lo, 4, mask);
      return pos + 8;
    },
    (b, pos) => int64From(getUint(b, pos, 4, mask) ^ flip, getUint(b, pos + 4, 4, mask), signed),
  );
}

/** The bigint whose two's complement (signed) or unsigned 64-bit words are `hi`, `lo`. */
function int64From(hiBits: number, lo: number, signed: boolean): bigint {
  const hi = signed ? hiBits | 0 : hiBits >>> 0;
  // |value| < 2^53: one exact double, one BigInt conversion, no BigInt arithmetic.
  if (hi < 0x20_0000 && hi >= -0x20_0000) return BigInt(hi * TWO_32 + lo);
  return (BigInt(hi) << 32n) + BigInt(lo);
}

function checkSafe(name: string, v: number, signed: boolean): void {
  if (!Number.isInteger(v)) {
    throw keyFieldError(name, Number.isNaN(v) ? "NaN is not allowed" : `${v} is not an integer`);
  }
  if (!signed && v < 0) throw keyFieldError(name, `${v} is below 0`);
  if (!Number.isSafeInteger(v)) {
    throw keyFieldError(name, `${v} is not a safe integer; pass a bigint`);
  }
}

function checkBig(name: string, v: bigint, signed: boolean): void {
  const min = signed ? I64_MIN : 0n;
  const max = signed ? I64_MAX : U64_MAX;
  if (v < min) throw keyFieldError(name, `${v}n is below ${min}n`);
  if (v > max) throw keyFieldError(name, `${v}n is above ${max}n`);
}

function f64Codec(field: KeyField, mask: number): FieldCodec {
  const name = field.name;
  return fixed(
    field,
    (out, pos, v) => {
      if (typeof v !== "number") throw keyTypeError(name, "a number", v);
      if (v !== v) throw keyFieldError(name, "NaN is not allowed");
      scratch.setFloat64(0, v === 0 ? 0 : v); // -0 is stored as 0: equal keys, as in JS
      let hi = scratch.getUint32(0);
      let lo = scratch.getUint32(4);
      if (hi >= 0x8000_0000) {
        hi = ~hi;
        lo = ~lo;
      } else {
        hi ^= 0x8000_0000;
      }
      putUint(out, pos, hi, 4, mask);
      putUint(out, pos + 4, lo, 4, mask);
      return pos + 8;
    },
    (b, pos) => {
      let hi = getUint(b, pos, 4, mask);
      let lo = getUint(b, pos + 4, 4, mask);
      if (hi >= 0x8000_0000) {
        hi ^= 0x8000_0000;
      } else {
        hi = ~hi;
        lo = ~lo;
      }
      scratch.setUint32(0, hi);
      scratch.setUint32(4, lo);
      return scratch.getFloat64(0);
    },
  );
}

function boolCodec(field: KeyField, mask: number): FieldCodec {
  const name = field.name;
  return fixed(
    field,
    (out, pos, v) => {
      if (typeof v !== "boolean") throw keyTypeError(name, "a boolean", v);
      out[pos] = (v ? 1 : 0) ^ mask;
      return pos + 1;
    },
    (b, pos) => {
      const x = b[pos] ^ mask;
      if (x > 1) throw keyDecodeError(name, `byte 0x${x.toString(16)} is not a bool`);
      return x === 1;
    },
  );
}

/** Hex digit value by char code, -1 for non-hex (upper and lower case accepted). */
const HEX_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX_VALUE["0123456789abcdef".charCodeAt(i)] = i;
  HEX_VALUE["0123456789ABCDEF".charCodeAt(i)] = i;
}
/** Two lowercase hex digits for each byte value. */
const HEX_PAIR: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const UUID_DASHES = [8, 13, 18, 23];

function uuidCodec(field: KeyField, mask: number): FieldCodec {
  const name = field.name;
  return fixed(
    field,
    (out, pos, v) => {
      if (typeof v !== "string") throw keyTypeError(name, "a uuid string", v);
      if (!writeUuid(out, pos, v, mask)) {
        throw keyFieldError(name, `"${v.slice(0, 40)}" is not a uuid (8-4-4-4-12 hex digits)`);
      }
      return pos + 16;
    },
    (b, pos) => readUuid(b, pos, mask),
  );
}

/** The canonical lowercase form of the 16 bytes at `pos` (XOR `mask`). */
export function readUuid(b: Uint8Array, pos: number, mask: number): string {
  let s = "";
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) s += "-";
    s += HEX_PAIR[b[pos + i] ^ mask];
  }
  return s;
}

/**
 * Parses a uuid (8-4-4-4-12 hex digits, either case) into 16 bytes at `pos`, XOR `mask`.
 * Returns false when malformed (bytes at `pos` may then be partly written).
 */
export function writeUuid(out: Uint8Array, pos: number, s: string, mask: number): boolean {
  if (s.length !== 36) return false;
  for (const d of UUID_DASHES) if (s.charCodeAt(d) !== 0x2d) return false;
  let j = 0;
  for (let i = 0; i < 16; i++) {
    if (j === 8 || j === 13 || j === 18 || j === 23) j++;
    const a = s.charCodeAt(j);
    const c = s.charCodeAt(j + 1);
    const hi = a < 128 ? HEX_VALUE[a] : -1;
    const lo = c < 128 ? HEX_VALUE[c] : -1;
    if ((hi | lo) < 0) return false;
    out[pos + i] = ((hi << 4) | lo) ^ mask;
    j += 2;
  }
  return true;
}

function fixedBytesCodec(field: KeyField, n: number, mask: number): FieldCodec {
  const name = field.name;
  return fixed(
    field,
    (out, pos, v) => {
      if (!(v instanceof Uint8Array)) throw keyTypeError(name, `a Uint8Array of ${n} bytes`, v);
      if (v.length !== n) throw keyFieldError(name, `expected ${n} bytes, got ${v.length}`);
      if (mask === 0) out.set(v, pos);
      else for (let i = 0; i < n; i++) out[pos + i] = v[i] ^ mask;
      return pos + n;
    },
    (b, pos) => {
      const v = copyOf(b, pos, pos + n);
      if (mask !== 0) { for (let i = 0; i < n; i++) v[i] ^= mask; }
      return v;
    },
  );
}
