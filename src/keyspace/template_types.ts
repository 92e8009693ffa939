/**
 * All the type-level machinery of keyspaces, in one place: the key types inferred from a literal
 * template string (`"sensor:<str>:ts:<u64be>"` -> `{ sensor: string; ts: bigint }`), and the
 * value types inferred from a value codec spec.
 *
 * It mirrors the runtime parser (`parse_template.ts`): placeholder `<[name:]type[:N][:desc]>`,
 * the name of an unnamed placeholder is the word before it (one trailing non-word character
 * dropped; word characters are ASCII letters, digits, `_` and any non-ASCII character; a word
 * starting with a digit does not count) or `f<index>`. A template the type level cannot
 * parse (unknown type, bad token, duplicate name, no placeholder) makes `defineKeyspace`
 * fail to compile, pointing at the `key` property. A non-literal `string` template gives the
 * generic {@link AnyKey} types. `tests/types/keyspace_types.ts` pins all of this down.
 *
 * Types only: this module has no runtime code.
 *
 * @module
 */

/** A single key field value as JS sees it. */
export type KeyScalar = number | bigint | string | boolean | Uint8Array;

/** A decoded key of a layout whose types are not known statically. */
export type AnyKey = KeyScalar | { readonly [field: string]: KeyScalar };

/**
 * A key or prefix input of a layout whose types are not known statically (an `undefined`
 * field counts as absent).
 */
export type AnyKeyInput =
  | KeyScalar
  | { readonly [field: string]: KeyScalar | undefined }
  | readonly KeyScalar[];

/** Key and value types whose JS value is a number of at most 32 bits. */
export type IntWord = "u8" | "u16be" | "u32be" | "i8" | "i16be" | "i32be";
/** 64-bit integer types: number or bigint in, bigint out. */
export type BigWord = "u64be" | "i64be";
/**
 * One type word of the template grammar (`bytes` doubles as the `bytes:N` prefix). The runtime
 * list `KEY_TYPE_WORDS` in `key_field_type.ts` holds exactly these words.
 */
export type KeyTypeWord = IntWord | BigWord | "f64" | "bool" | "uuid" | "str" | "bytes";

/** The JS type a key field of type word `W` decodes to. */
export type KeyFieldOut<W> = W extends IntWord | "f64" ? number
  : W extends BigWord ? bigint
  : W extends "bool" ? boolean
  : W extends "uuid" | "str" ? string
  : W extends "bytes" ? Uint8Array
  : never;

/** The JS types a key field of type word `W` accepts (64-bit integers also as numbers). */
export type KeyFieldIn<W> = W extends BigWord ? number | bigint : KeyFieldOut<W>;

/**
 * Marker for a template the type level rejects. It exists only in types: no value has it, so
 * a key type derived from an invalid template is unusable.
 */
export interface InvalidTemplate {
  /** Brand; never present at runtime. */
  readonly __zonetreeInvalidTemplate: never;
}

/** The tokens of a placeholder body: `"ts:u64be:desc"` -> `["ts", "u64be", "desc"]`. */
export type SplitTokens<S extends string> = S extends `${infer H}:${infer T}`
  ? [H, ...SplitTokens<T>]
  : [S];

/** One decimal digit. */
export type DigitChar = "0" | "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9";
/** Decimal text of a positive integer (the `N` of `bytes:N`), without a leading zero. */
export type PositiveIntText = `${Exclude<DigitChar, "0">}${string}`;

/**
 * `true` when the tokens after type word `W` are allowed: nothing, `desc`, and for `bytes` a
 * width `N` first.
 */
export type PlaceholderTailOk<W, Rest> = Rest extends [] | ["desc"] ? true
  : W extends "bytes" ? Rest extends [PositiveIntText] | [PositiveIntText, "desc"] ? true : false
  : false;

/** `[explicitName | null, typeWord]` for a placeholder's tokens, or {@link InvalidTemplate}. */
export type PlaceholderOf<Tokens> = Tokens extends [infer W extends KeyTypeWord, ...infer Rest]
  ? PlaceholderTailOk<W, Rest> extends true ? [null, W] : InvalidTemplate
  : Tokens extends [infer N extends string, infer W extends KeyTypeWord, ...infer Rest]
    ? N extends "" | "desc" ? InvalidTemplate
    : PlaceholderTailOk<W, Rest> extends true ? [N, W]
    : InvalidTemplate
  : InvalidTemplate;

/** ASCII characters that are not word characters (non-ASCII ones are word characters). */
export type NonWordAscii =
  | " "
  | "!"
  | '"'
  | "#"
  | "$"
  | "%"
  | "&"
  | "'"
  | "("
  | ")"
  | "*"
  | "+"
  | ","
  | "-"
  | "."
  | "/"
  | ":"
  | ";"
  | "="
  | "?"
  | "@"
  | "["
  | "\\"
  | "]"
  | "^"
  | "`"
  | "{"
  | "|"
  | "}"
  | "~";
/** `true` when the one-character string `C` is a word character. */
export type IsWordChar<C> = C extends NonWordAscii ? false : true;

/** The trailing word of `S`, after dropping one trailing non-word character. */
export type TrailingWord<S extends string, Acc extends string = ""> = S extends
  `${infer C}${infer R}` ? IsWordChar<C> extends true ? TrailingWord<R, `${Acc}${C}`>
  : R extends "" ? Acc
  : TrailingWord<R, "">
  : Acc;

/**
 * The name of an unnamed placeholder at position `I` after literal `L`: the literal's trailing
 * word, or `f<I>` when there is none (or it starts with a digit).
 */
export type NameFromLiteral<L extends string, I extends number> = TrailingWord<L> extends
  infer W extends string ? W extends "" | `${DigitChar}${string}` ? `f${I}` : W
  : never;

/** One field of a template: its name and its type word. */
export type TemplateEntry = [name: string, word: KeyTypeWord];

/** The fields of template `S` as {@link TemplateEntry} items, or {@link InvalidTemplate}. */
export type WalkTemplate<S extends string, Acc extends TemplateEntry[] = []> = S extends
  `${infer Lit}<${infer Ph}>${infer Rest}` ? Lit extends `${string}>${string}` ? InvalidTemplate
  : Ph extends `${string}<${string}` ? InvalidTemplate
  : PlaceholderOf<SplitTokens<Ph>> extends [infer N, infer W extends KeyTypeWord] ? WalkTemplate<
      Rest,
      [...Acc, [N extends string ? N : NameFromLiteral<Lit, Acc["length"]>, W]]
    >
  : InvalidTemplate
  : S extends `${string}${"<" | ">"}${string}` ? InvalidTemplate
  : Acc extends [] ? InvalidTemplate
  : Acc;

/** `true` when two of the entries `Es` have the same name. */
export type HasDuplicateName<Es extends TemplateEntry[], Seen = never> = Es extends
  [infer E extends TemplateEntry, ...infer R extends TemplateEntry[]]
  ? E[0] extends Seen ? true : HasDuplicateName<R, Seen | E[0]>
  : false;

/** The `[name, typeWord]` entries of a valid literal template, or {@link InvalidTemplate}. */
export type TemplateFields<T extends string> = WalkTemplate<T> extends
  infer Es extends TemplateEntry[] ? HasDuplicateName<Es> extends true ? InvalidTemplate : Es
  : InvalidTemplate;

/** Flattens an intersection into one object type, for readable hovers and errors. */
// deno-lint-ignore ban-types
export type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** The decoded object form of a key with fields `Es`. */
export type KeyObjectOut<Es extends TemplateEntry[]> = Simplify<
  { -readonly [E in Es[number] as E[0]]: KeyFieldOut<E[1]> }
>;
/** The object form of a key or prefix input: fields `Given` required, fields `Rest` absent. */
export type KeyObjectIn<Given extends TemplateEntry[], Rest extends TemplateEntry[]> = Simplify<
  & { [E in Given[number] as E[0]]: KeyFieldIn<E[1]> }
  & { [E in Rest[number] as E[0]]?: never }
>;
/** The tuple form of a key or prefix input with fields `Es`, in layout order. */
export type KeyTupleIn<Es extends TemplateEntry[]> = { [I in keyof Es]: KeyFieldIn<Es[I][1]> };

/** Every leading subset of the fields, as objects (later fields `?: never`) and tuples. */
export type KeyPrefixes<Given extends TemplateEntry[], Rest extends TemplateEntry[]> =
  | KeyObjectIn<Given, Rest>
  | Readonly<KeyTupleIn<Given>>
  | (Rest extends [infer H extends TemplateEntry, ...infer R extends TemplateEntry[]]
    ? KeyPrefixes<[...Given, H], R>
    : never);

/**
 * The decoded key type of template `T`: an object by field names, or the bare scalar for a
 * one-field layout. `AnyKey` for a non-literal template, `never` for an invalid one.
 */
export type KeyOfTemplate<T extends string> = string extends T ? AnyKey
  : TemplateFields<T> extends infer Es extends TemplateEntry[]
    ? Es extends [TemplateEntry] ? KeyFieldOut<Es[0][1]> : KeyObjectOut<Es>
  : never;

/** What `key.encode` accepts for template `T`: the object or tuple form (bare scalar for one field). */
export type KeyInputOfTemplate<T extends string> = string extends T ? AnyKeyInput
  : TemplateFields<T> extends infer Es extends TemplateEntry[]
    ? Es extends [TemplateEntry] ? KeyFieldIn<Es[0][1]>
    : KeyObjectIn<Es, []> | Readonly<KeyTupleIn<Es>>
  : never;

/** What bounds and prefixes accept for template `T`: a full key or any leading subset of fields. */
export type PrefixOfTemplate<T extends string> = string extends T ? AnyKeyInput
  : TemplateFields<T> extends infer Es extends TemplateEntry[]
    ? Es extends [TemplateEntry] ? KeyFieldIn<Es[0][1]> | KeyPrefixes<[], Es>
    : KeyPrefixes<[], Es>
  : never;

/**
 * `unknown` (no constraint) for a template the type level accepts; an object type naming the
 * problem otherwise, so `key: T & TemplateCheck<T>` rejects the literal at compile time.
 */
export type TemplateCheck<T extends string> = string extends T ? unknown
  : TemplateFields<T> extends InvalidTemplate
    ? { "invalid key template (unknown type, bad token, duplicate name or no placeholder)": T }
  : unknown;

// ---- values -------------------------------------------------------------------------------

/** The scalar type names a value codec accepts (fixed-width key types plus `f32`). */
export type ValueScalarType =
  | IntWord
  | BigWord
  | "f64"
  | "f32"
  | "bool"
  | "uuid"
  | `bytes:${number}`;

/** The JS type of a value of scalar type `W` (a value codec or a struct field). */
export type ScalarValueOf<W> = W extends IntWord | "f64" | "f32" ? number
  : W extends BigWord ? bigint
  : W extends "bool" ? boolean
  : W extends "uuid" ? string
  : W extends `bytes:${number}` ? Uint8Array
  : never;

/**
 * The `"json"` codec name carrying the JSON value's TypeScript type (see `jsonValue`). The
 * property exists only in the type; at runtime the spec is the plain string `"json"`.
 */
export type JsonSpec<T> = "json" & { readonly __jsonValueType?: T };

/** A user-supplied value codec. */
export interface CustomValueCodec<V> {
  /** Stable identifier: part of the keyspace identity, so changing it changes the identity. */
  readonly id: string;
  /** Encodes a value; must return a Uint8Array (of `fixedWidth` bytes, when given). */
  encode(value: V): Uint8Array;
  /** Decodes what `encode` produced. */
  decode(bytes: Uint8Array): V;
  /** Every encoded value has exactly this many bytes (makes the value side fixed-width). */
  readonly fixedWidth?: number;
}

/** A fixed-size struct: field name to scalar type, encoded in the object's key order. */
export type StructSpec = { readonly [field: string]: ValueScalarType };

/** Every value codec spec that `defineKeyspace` accepts. */
export type ValueCodecSpec =
  | "json"
  | "utf8"
  | "bytes"
  | ValueScalarType
  | StructSpec
  // deno-lint-ignore no-explicit-any
  | CustomValueCodec<any>;

/** The value type of a codec spec (`unknown` for plain `"json"`). */
export type ValueOfSpec<S> = S extends { readonly __jsonValueType?: infer T } & "json"
  ? unknown extends T ? unknown : T
  : S extends "json" | undefined ? unknown
  : S extends "utf8" ? string
  : S extends "bytes" ? Uint8Array
  : S extends ValueScalarType ? ScalarValueOf<S>
  : S extends CustomValueCodec<infer V> ? V
  : S extends StructSpec ? { -readonly [F in keyof S]: ScalarValueOf<S[F]> }
  : never;
