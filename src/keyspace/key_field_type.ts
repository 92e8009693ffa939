/**
 * The vocabulary of key field types (API.md §1): the reserved type words of the template
 * grammar, their encoded widths, and the scalar types that value codecs accept.
 *
 * Invariants: every type word here has a codec in `field_codec.ts` and a JS type in
 * `template_types.ts`; `bytes:N` is the only parameterised type (1 <= N <= {@link BYTES_N_MAX}).
 * Imported by the template parser, the field codecs and the value codecs.
 *
 * @module
 */
import type { KeyTypeWord } from "./template_types.ts";

export type { KeyTypeWord };

/**
 * The type words of the template grammar. A placeholder holds exactly one of them. The list is
 * exactly the {@link KeyTypeWord} union (`tests/types/keyspace_types.ts` checks both ways).
 */
export const KEY_TYPE_WORDS = [
  "u8",
  "u16be",
  "u32be",
  "i8",
  "i16be",
  "i32be",
  "u64be",
  "i64be",
  "f64",
  "bool",
  "uuid",
  "str",
  "bytes",
] as const satisfies readonly KeyTypeWord[];

/**
 * A key field type as it appears in {@link KeyField.type}: a type word, or `bytes:N` for a
 * fixed-length byte string.
 */
export type KeyFieldType = KeyTypeWord | `bytes:${number}`;

/** Description of one key field, in layout order (the `fields` of a compiled key codec). */
export interface KeyField {
  /** Field name: explicit, taken from the literal word before the placeholder, or `f<i>`. */
  readonly name: string;
  /** The field type, e.g. `"u64be"` or `"bytes:16"`. */
  readonly type: KeyFieldType;
  /** True when the field sorts in descending order. */
  readonly desc: boolean;
}

/** Largest `N` accepted in `bytes:N` (keys are meant to be small). */
export const BYTES_N_MAX = 4096;

/** Encoded width in bytes of each fixed-width type word; variable types are absent. */
export const FIXED_WIDTHS: Readonly<Record<string, number>> = {
  u8: 1,
  u16be: 2,
  u32be: 4,
  i8: 1,
  i16be: 2,
  i32be: 4,
  u64be: 8,
  i64be: 8,
  f64: 8,
  bool: 1,
  uuid: 16,
};

/** True when `word` is a reserved type word. */
export function isTypeWord(word: string): word is KeyTypeWord {
  return (KEY_TYPE_WORDS as readonly string[]).includes(word);
}

/**
 * Width in bytes of a key field type, or 0 for a variable-width type (`str`, `bytes`).
 * Returns -1 for a string that is not a key field type.
 */
export function keyTypeWidth(type: string): number {
  const w = FIXED_WIDTHS[type];
  if (w !== undefined) return w;
  if (type === "str" || type === "bytes") return 0;
  const n = bytesN(type);
  return n > 0 ? n : -1;
}

/** `N` of a `bytes:N` type string, or -1 when `type` is not one (or N is out of range). */
export function bytesN(type: string): number {
  const m = /^bytes:([1-9][0-9]{0,5})$/.exec(type);
  if (m === null) return -1;
  const n = Number(m[1]);
  return n <= BYTES_N_MAX ? n : -1;
}

/** The fixed-width scalar types a value codec (scalar or struct field) accepts. */
export const VALUE_SCALAR_TYPES: readonly string[] = [...Object.keys(FIXED_WIDTHS), "f32"];

/** Width in bytes of a fixed-width value scalar type (incl. `f32`, `bytes:N`), or -1. */
export function valueScalarWidth(type: string): number {
  if (type === "f32") return 4;
  const w = FIXED_WIDTHS[type];
  if (w !== undefined) return w;
  return bytesN(type);
}
