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
type Word = IntWord | BigWord | "f64" | "bool" | "uuid" | "str" | "bytes";

/** JS type a key field decodes to. */
type OutOf<W> = W extends IntWord | "f64" ? number
  : W extends BigWord ? bigint
  : W extends "bool" ? boolean
  : W extends "uuid" | "str" ? string
  : W extends "bytes" ? Uint8Array
  : never;

/** JS types a key field accepts. */
type InOf<W> = W extends BigWord ? number | bigint : OutOf<W>;

declare const invalid: unique symbol;
/** Marker for a template the type level rejects. */
type Invalid = typeof invalid;

type Split<S extends string> = S extends `${infer H}:${infer T}` ? [H, ...Split<T>] : [S];

type Digit = "0" | "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9";
type PositiveInt = `${Exclude<Digit, "0">}${string}`;

/** What may follow the type token: nothing, `desc`, and for `bytes` a width `N` first. */
type TailOk<W, Rest> = Rest extends [] | ["desc"] ? true
  : W extends "bytes" ? Rest extends [PositiveInt] | [PositiveInt, "desc"] ? true : false
  : false;

/** `[explicitName | null, typeWord]` for a placeholder's tokens, or {@link Invalid}. */
type Placeholder<Tokens> = Tokens extends [infer W extends Word, ...infer Rest]
  ? TailOk<W, Rest> extends true ? [null, W] : Invalid
  : Tokens extends [infer N extends string, infer W extends Word, ...infer Rest]
    ? N extends "" | "desc" ? Invalid : TailOk<W, Rest> extends true ? [N, W] : Invalid
  : Invalid;

/** ASCII characters that are not word characters (non-ASCII ones are word characters). */
type NonWordAscii =
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
type IsWordChar<C> = C extends NonWordAscii ? false : true;

/** The trailing word of `S`, after dropping one trailing non-word character. */
type TrailingWord<S extends string, Acc extends string = ""> = S extends `${infer C}${infer R}`
  ? IsWordChar<C> extends true ? TrailingWord<R, `${Acc}${C}`>
  : R extends "" ? Acc
  : TrailingWord<R, "">
  : Acc;

type NameFromLiteral<L extends string, I extends number> = TrailingWord<L> extends
  infer W extends string ? W extends "" | `${Digit}${string}` ? `f${I}` : W
  : never;

type Entry = [name: string, word: Word];

/** The fields of a template as `[name, typeWord]` entries, or {@link Invalid}. */
type Walk<S extends string, Acc extends Entry[] = []> = S extends
  `${infer Lit}<${infer Ph}>${infer Rest}` ? Lit extends `${string}>${string}` ? Invalid
  : Ph extends `${string}<${string}` ? Invalid
  : Placeholder<Split<Ph>> extends [infer N, infer W extends Word]
    ? Walk<Rest, [...Acc, [N extends string ? N : NameFromLiteral<Lit, Acc["length"]>, W]]>
  : Invalid
  : S extends `${string}${"<" | ">"}${string}` ? Invalid
  : Acc extends [] ? Invalid
  : Acc;

type HasDuplicate<Es extends Entry[], Seen = never> = Es extends
  [infer E extends Entry, ...infer R extends Entry[]]
  ? E[0] extends Seen ? true : HasDuplicate<R, Seen | E[0]>
  : false;

/** The `[name, typeWord]` entries of a valid literal template, or {@link Invalid}. */
export type TemplateFields<T extends string> = Walk<T> extends infer Es extends Entry[]
  ? HasDuplicate<Es> extends true ? Invalid : Es
  : Invalid;

/** Flattens an intersection into one object type, for readable hovers and errors. */
// deno-lint-ignore ban-types
type Simplify<T> = { [K in keyof T]: T[K] } & {};

type ObjOut<Es extends Entry[]> = Simplify<{ -readonly [E in Es[number] as E[0]]: OutOf<E[1]> }>;
type ObjIn<Given extends Entry[], Rest extends Entry[]> = Simplify<
  & { [E in Given[number] as E[0]]: InOf<E[1]> }
  & { [E in Rest[number] as E[0]]?: never }
>;
type TupleIn<Es extends Entry[]> = { [I in keyof Es]: InOf<Es[I][1]> };

/** Every leading subset of the fields, as objects (later fields `?: never`) and tuples. */
type Prefixes<Given extends Entry[], Rest extends Entry[]> =
  | ObjIn<Given, Rest>
  | Readonly<TupleIn<Given>>
  | (Rest extends [infer H extends Entry, ...infer R extends Entry[]] ? Prefixes<[...Given, H], R>
    : never);

/**
 * The decoded key type of template `T`: an object by field names, or the bare scalar for a
 * one-field layout. `AnyKey` for a non-literal template, `never` for an invalid one.
 */
export type KeyOfTemplate<T extends string> = string extends T ? AnyKey
  : TemplateFields<T> extends infer Es extends Entry[]
    ? Es extends [Entry] ? OutOf<Es[0][1]> : ObjOut<Es>
  : never;

/** What `key.encode` accepts for template `T`: the object or tuple form (bare scalar for one field). */
export type KeyInputOfTemplate<T extends string> = string extends T ? AnyKeyInput
  : TemplateFields<T> extends infer Es extends Entry[]
    ? Es extends [Entry] ? InOf<Es[0][1]> : ObjIn<Es, []> | Readonly<TupleIn<Es>>
  : never;

/** What bounds and prefixes accept for template `T`: a full key or any leading subset of fields. */
export type PrefixOfTemplate<T extends string> = string extends T ? AnyKeyInput
  : TemplateFields<T> extends infer Es extends Entry[]
    ? Es extends [Entry] ? InOf<Es[0][1]> | Prefixes<[], Es> : Prefixes<[], Es>
  : never;

/**
 * `unknown` (no constraint) for a template the type level accepts; an object type naming the
 * problem otherwise, so `key: T & TemplateCheck<T>` rejects the literal at compile time.
 */
export type TemplateCheck<T extends string> = string extends T ? unknown
  : TemplateFields<T> extends Invalid
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

type ScalarValueOf<W> = W extends IntWord | "f64" | "f32" ? number
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
