/**
 * Keys and values at the command line: parses field values typed by the user into the JS values
 * the keyspace's field types take, and turns decoded keys and values back into text (JSON for
 * machines, plain columns for people).
 *
 * Parsing (one argument per field, in layout order):
 *
 * | field type                 | argument                                                   |
 * |----------------------------|------------------------------------------------------------|
 * | u8 u16be u32be i8 i16be i32be | a decimal integer (`-5`, `42`)                           |
 * | u64be i64be                | a decimal integer of any size, or an ISO-8601 date-time    |
 * |                            | (`2024-01-01T00:00:00Z`, taken as epoch milliseconds)      |
 * | f64                        | a decimal number (`21.5`, `-1e3`)                          |
 * | bool                       | `true` / `false` (or `1` / `0`)                            |
 * | uuid, str                  | the text as is                                             |
 * | bytes, bytes:N             | hex, optionally `0x`-prefixed (`00ff`)                     |
 *
 * JSON output: bigints are written as JSON numbers with every digit (exact in the text; a JS
 * `JSON.parse` rounds those above 2^53), byte arrays as hex strings, NaN and infinities as the
 * strings `"NaN"`, `"Infinity"`, `"-Infinity"`.
 *
 * Invariants: a bad argument is a UsageError naming the field, found before the tree is opened.
 * Called by the `get` and `scan` commands and the demo.
 *
 * @module
 */
import { KeyEncodingError } from "../api/errors.ts";
import type { AnyKeyspace, KeyField, KeyScalar } from "../keyspace/define_keyspace.ts";
import { UsageError } from "./common.ts";

/** Parses one argument for a field of type `field.type`. Throws UsageError. */
export function parseFieldValue(field: KeyField, text: string): KeyScalar {
  const bad = (what: string) =>
    new UsageError(
      `key field "${field.name}" (${field.type}): ${JSON.stringify(text)} is not ${what}`,
    );
  const type = field.type;
  switch (type) {
    case "u8":
    case "u16be":
    case "u32be":
    case "i8":
    case "i16be":
    case "i32be":
      if (!/^-?[0-9]+$/.test(text)) throw bad("an integer");
      return Number(text);
    case "u64be":
    case "i64be":
      if (/^-?[0-9]+$/.test(text)) return BigInt(text);
      if (/^[0-9]{4}-[0-9]{2}-[0-9]{2}(T|$)/.test(text)) {
        const ms = Date.parse(text);
        if (Number.isFinite(ms)) return BigInt(ms);
      }
      throw bad("an integer or an ISO-8601 date-time");
    case "f64": {
      const n = text.trim() === "" ? NaN : Number(text);
      if (Number.isNaN(n)) throw bad("a number");
      return n;
    }
    case "bool":
      if (text === "true" || text === "1") return true;
      if (text === "false" || text === "0") return false;
      throw bad("true or false");
    case "uuid":
    case "str":
      return text;
    default: {
      // bytes and bytes:N
      const hex = text.startsWith("0x") || text.startsWith("0X") ? text.slice(2) : text;
      if (!/^([0-9a-fA-F]{2})*$/.test(hex)) throw bad("hex bytes (an even number of hex digits)");
      const out = new Uint8Array(hex.length / 2);
      for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
      return out;
    }
  }
}

/**
 * Parses `args` into a key tuple (all fields) or a prefix tuple (leading fields), and checks it
 * by encoding it. Returns the tuple and its encoded bytes. Throws UsageError.
 */
export function parseKeyArgs(
  keyspace: AnyKeyspace,
  args: readonly string[],
  whole: boolean,
  what: string,
): { tuple: KeyScalar[]; bytes: Uint8Array } {
  const fields = keyspace.key.fields;
  const names = fields.map((f) => `<${f.name}:${f.type}>`).join(" ");
  if (args.length > fields.length || (whole && args.length !== fields.length)) {
    throw new UsageError(
      `${what} takes ${whole ? "" : "at most "}${fields.length} field value${
        fields.length === 1 ? "" : "s"
      } (${names}), got ${args.length}`,
    );
  }
  const tuple = args.map((text, i) => parseFieldValue(fields[i], text));
  try {
    const bytes = whole ? keyspace.key.encode(tuple) : keyspace.key.encodePrefix(tuple);
    return { tuple, bytes };
  } catch (e) {
    if (e instanceof KeyEncodingError) throw new UsageError(`${what}: ${e.message}`);
    throw e;
  }
}

/** Hex digits of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += bytes[i].toString(16).padStart(2, "0");
  return s;
}

/** JSON text of a decoded key or value (see the module comment for bigints, bytes and NaN). */
export function toJson(value: unknown): string {
  switch (typeof value) {
    case "bigint":
      return value.toString();
    case "number":
      return Number.isFinite(value) ? JSON.stringify(value) : JSON.stringify(String(value));
    case "string":
    case "boolean":
      return JSON.stringify(value);
    case "undefined":
      return "null";
    case "object": {
      if (value === null) return "null";
      if (value instanceof Uint8Array) return JSON.stringify(toHex(value));
      if (Array.isArray(value)) return `[${value.map(toJson).join(",")}]`;
      const parts: string[] = [];
      for (const [k, v] of Object.entries(value)) {
        if (v !== undefined) parts.push(`${JSON.stringify(k)}:${toJson(v)}`);
      }
      return `{${parts.join(",")}}`;
    }
    default:
      return JSON.stringify(String(value));
  }
}

/** One field value as a column for people: strings plain unless they need quoting. */
export function toText(value: unknown): string {
  if (typeof value === "string") {
    return /^[\x21-\x7e\u00a0-\uffff]+$/.test(value) && !value.startsWith('"')
      ? value
      : JSON.stringify(value);
  }
  if (value instanceof Uint8Array) return toHex(value);
  if (typeof value === "number" || typeof value === "bigint" || typeof value === "boolean") {
    return String(value);
  }
  return toJson(value);
}

/** The key's field values in layout order (a one-field layout decodes to the bare value). */
export function keyColumns(keyspace: AnyKeyspace, key: unknown): unknown[] {
  const fields = keyspace.key.fields;
  if (fields.length === 1) return [key];
  const obj = key as Record<string, unknown>;
  return fields.map((f) => obj[f.name]);
}

/** A key tuple (or prefix tuple) as an object by field names, for messages. */
export function keyObject(
  keyspace: AnyKeyspace,
  tuple: readonly unknown[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  tuple.forEach((v, i) => (out[keyspace.key.fields[i].name] = v));
  return out;
}
