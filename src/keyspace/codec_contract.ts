/**
 * The contract between the compiled key codec and the per-field codecs (`field_codec.ts`,
 * `escaped_codec.ts`): one small object of functions per field, with the field's name (for
 * errors) and direction baked in.
 *
 * @module
 */
import type { KeyField } from "./key_field_type.ts";

/**
 * A codec for one field of a layout. Variable-width codecs (`width === 0`) leave the position
 * after the field they read in {@link readCursor}.
 */
export interface FieldCodec {
  /** The field this codec encodes. */
  readonly field: KeyField;
  /** Encoded width in bytes; 0 for a variable-width field. */
  readonly width: number;
  /** Validates `v` and returns its encoded length (variable fields; fixed fields: `width`). */
  size(v: unknown): number;
  /**
   * Writes `v` at `pos` and returns the position after it. Fixed fields validate `v` first;
   * variable fields require that `size(v)` was called (it validates).
   */
  write(out: Uint8Array, pos: number, v: unknown): number;
  /** Reads the field at `pos` (bytes up to `end` are available). Throws KeyEncodingError. */
  read(bytes: Uint8Array, pos: number, end: number): unknown;
}

/** Where the last variable-width `read` stopped (one shared cursor: reads are synchronous). */
export const readCursor: { pos: number } = { pos: 0 };
