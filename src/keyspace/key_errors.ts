/**
 * Message helpers for KeyEncodingError and ValueEncodingError, so every codec words its errors
 * the same way: `key field "ts": -1 is below 0`. Leaf module of the keyspace layer.
 *
 * @module
 */
import { KeyEncodingError } from "../api/errors.ts";

/** A short, safe rendering of a user value for an error message. */
export function describeValue(v: unknown): string {
  switch (typeof v) {
    case "number":
      return Object.is(v, -0) ? "-0" : String(v);
    case "bigint":
      return `${v}n`;
    case "string":
      return v.length > 40
        ? `string ${JSON.stringify(v.slice(0, 40))}...`
        : `string ${JSON.stringify(v)}`;
    case "undefined":
      return "undefined";
    case "boolean":
      return String(v);
    default:
      if (v === null) return "null";
      if (v instanceof Uint8Array) return `Uint8Array(${v.length})`;
      if (Array.isArray(v)) return `array(${v.length})`;
      return typeof v === "object" ? "object" : typeof v;
  }
}

/** `key field "<name>": <what>` as a KeyEncodingError naming the field. */
export function keyFieldError(name: string, what: string): KeyEncodingError {
  return new KeyEncodingError(`key field "${name}": ${what}`, name);
}

/** The error for a value of the wrong JS type. */
export function keyTypeError(name: string, expected: string, v: unknown): KeyEncodingError {
  return keyFieldError(name, `expected ${expected}, got ${describeValue(v)}`);
}

/** The error for stored bytes that are not a valid encoding of the field. */
export function keyDecodeError(name: string, what: string, cause?: unknown): KeyEncodingError {
  return new KeyEncodingError(`cannot decode key field "${name}": ${what}`, name, { cause });
}
