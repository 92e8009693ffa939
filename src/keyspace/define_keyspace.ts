/**
 * `defineKeyspace`: compiles a declarative key layout and value codec (API.md §1) into a small
 * frozen object of functions: the keyspace that the engine, the CLI and users program against.
 *
 * Pipeline: template -> `parseTemplate` -> per-field codecs -> compiled key codec and comparer;
 * value spec -> `compileValueCodec`; both -> canonical layout -> identity. Everything that can be
 * wrong with a definition is found here, as a SchemaError, before any data is touched.
 *
 * Invariants: a keyspace is immutable; `identity` is a pure function of the canonical layout;
 * `keyspaceFromSpec(ks.spec)` rebuilds a keyspace with the same identity (except for custom
 * value codecs, whose functions cannot be serialized).
 *
 * @module
 */
import { SchemaError } from "../api/errors.ts";
import { compileKeyCodec, type KeyBound, type KeyCodec } from "./compile_key_codec.ts";
import type { KeyField, KeyFieldType, KeyTypeWord } from "./key_field_type.ts";
import { canonicalLayout, identityOf } from "./keyspace_identity.ts";
import { parseTemplate } from "./parse_template.ts";
import type {
  AnyKey,
  AnyKeyInput,
  BigWord,
  CustomValueCodec,
  IntWord,
  JsonSpec,
  KeyInputOfTemplate,
  KeyOfTemplate,
  KeyScalar,
  PrefixOfTemplate,
  StructSpec,
  TemplateCheck,
  ValueCodecSpec,
  ValueOfSpec,
  ValueScalarType,
} from "./template_types.ts";
import {
  compileValueCodec,
  jsonValue,
  type ValueCodec,
  type ValueSpecJson,
} from "./value_codec.ts";

export type {
  AnyKey,
  AnyKeyInput,
  BigWord,
  CustomValueCodec,
  IntWord,
  JsonSpec,
  KeyBound,
  KeyCodec,
  KeyField,
  KeyFieldType,
  KeyInputOfTemplate,
  KeyOfTemplate,
  KeyScalar,
  KeyTypeWord,
  PrefixOfTemplate,
  StructSpec,
  TemplateCheck,
  ValueCodec,
  ValueCodecSpec,
  ValueOfSpec,
  ValueScalarType,
  ValueSpecJson,
};
export { jsonValue };

/** What `defineKeyspace` takes: a key template, an optional value codec spec and name. */
export interface KeyspaceDefinition<T extends string = string, S = ValueCodecSpec> {
  /** Informational name (shown by tools; not part of the identity). */
  readonly name?: string;
  /** The key layout template, e.g. `"sensor:<str>:ts:<u64be>"`. */
  readonly key: T;
  /** The value codec: `"json"` (default), `"utf8"`, `"bytes"`, a scalar, a struct or a custom codec. */
  readonly value?: S;
}

/** Which sides of a record are fixed-width; the engine picks its disk layout from it. */
export type KeyspaceLayout =
  | "fixed-key-fixed-value"
  | "fixed-key-variable-value"
  | "variable-key-fixed-value"
  | "variable-key-variable-value";

/**
 * JSON-serializable description of a keyspace, stored in database metadata so tools can
 * rebuild it with {@link keyspaceFromSpec}. A custom value codec appears as `{ custom: id }`.
 */
export interface KeyspaceSpec {
  /** The informational name, when one was given. */
  readonly name?: string;
  /** The key template as written. */
  readonly key: string;
  /** The value codec spec: a name, a struct object, or `{ custom: id }`. */
  readonly value: ValueSpecJson;
}

/**
 * A compiled keyspace. `K` is the decoded key type, `V` the value type, `KIn` what key
 * encoding accepts and `P` what prefixes and bounds accept.
 */
export interface Keyspace<K = AnyKey, V = unknown, KIn = AnyKeyInput, P = AnyKeyInput> {
  /** The informational name, if any. */
  readonly name: string | undefined;
  /** The key codec and comparer. */
  readonly key: KeyCodec<K, KIn, P>;
  /** The value codec. */
  readonly value: ValueCodec<V>;
  /** Which sides are fixed-width. */
  readonly layout: KeyspaceLayout;
  /** `zt1:` + hash of {@link Keyspace.canonical}; what database metadata stores and checks. */
  readonly identity: string;
  /** The canonical layout text the identity is derived from (see `keyspace_identity.ts`). */
  readonly canonical: string;
  /** JSON-serializable description, for metadata and {@link keyspaceFromSpec}. */
  readonly spec: KeyspaceSpec;
}

/** Any keyspace, whatever its key and value types (for generic code such as the engine). */
// deno-lint-ignore no-explicit-any
export type AnyKeyspace = Keyspace<any, any, any, any>;

/** The decoded key type of a keyspace. */
export type KeyOf<KS extends AnyKeyspace> = KS extends
  Keyspace<infer K, infer _V, infer _I, infer _P> ? K : never;
/** The value type of a keyspace. */
export type ValueOf<KS extends AnyKeyspace> = KS extends
  Keyspace<infer _K, infer V, infer _I, infer _P> ? V : never;
/** What a keyspace accepts as a whole key. */
export type KeyInputOf<KS extends AnyKeyspace> = KS extends
  Keyspace<infer _K, infer _V, infer I, infer _P> ? I
  : never;
/** What a keyspace accepts as a prefix or bound (a whole key or any leading subset of fields). */
export type PrefixOf<KS extends AnyKeyspace> = KS extends
  Keyspace<infer _K, infer _V, infer _I, infer P> ? P
  : never;

const DEFINITION_PROPS = ["name", "key", "value"];

/**
 * Compiles a keyspace from a key template and a value codec. With a literal template, the key
 * types are inferred, so a wrong key is a compile error. Throws SchemaError for an invalid
 * template or value spec (the message names the column and token).
 *
 * Template: literal text with placeholders `<type>`, `<name:type>`, `<type:desc>` or
 * `<name:type:desc>`; an unnamed field takes the word before it (`sensor:<str>` is `sensor`),
 * else `f0`, `f1`, ... Types: `u8` `u16be` `u32be` `i8` `i16be` `i32be` (numbers), `u64be`
 * `i64be` (bigints out), `f64`, `bool`, `uuid`, `bytes:N`, `str`, `bytes`. Values: `"json"`
 * (default), `"utf8"`, `"bytes"`, a scalar type, a struct of scalar types (`f32` allowed) or a
 * custom codec.
 *
 * @example A key layout whose bytes sort like the keys
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineKeyspace } from "@zonetree/zonetree";
 *
 * const readings = defineKeyspace({
 *   name: "readings",
 *   key: "sensor:<str>:ts:<u64be>",
 *   value: { temp: "f64", humidity: "f32" },
 * });
 * const k = readings.key.encode({ sensor: "s-7", ts: 1700000000000 });
 * assert.deepEqual(readings.key.decode(k), { sensor: "s-7", ts: 1700000000000n });
 * assert.equal(readings.layout, "variable-key-fixed-value");
 * assert.deepEqual(readings.key.fields.map((f) => f.name), ["sensor", "ts"]);
 *
 * // Encoded keys compare like the keys themselves: byte order is key order.
 * const a = readings.key.encode(["s-7", 9]);
 * const b = readings.key.encode(["s-7", 10]);
 * assert.ok(readings.key.compare(a, b) < 0);
 *
 * // `desc` reverses one field: latest first inside a metric. All fields fixed-width.
 * const metrics = defineKeyspace({ key: "metric:<u32be>:ts:<u64be:desc>", value: "f64" });
 * assert.equal(metrics.key.fixedWidth, 12);
 * assert.equal(metrics.layout, "fixed-key-fixed-value");
 * ```
 */
export function defineKeyspace<const T extends string, V>(
  def: KeyspaceDefinition<T & TemplateCheck<T>, CustomValueCodec<V>>,
): Keyspace<KeyOfTemplate<T>, V, KeyInputOfTemplate<T>, PrefixOfTemplate<T>>;
/**
 * A keyspace with a named, scalar or struct value codec (or the default, json).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineKeyspace } from "@zonetree/zonetree";
 *
 * const users = defineKeyspace({ key: "user:<str>" }); // value: "json" by default
 * assert.equal(users.key.decode(users.key.encode("ada")), "ada"); // one field: a bare scalar
 * ```
 */
export function defineKeyspace<const T extends string, const S extends ValueCodecSpec = "json">(
  def: KeyspaceDefinition<T & TemplateCheck<T>, S>,
): Keyspace<KeyOfTemplate<T>, ValueOfSpec<S>, KeyInputOfTemplate<T>, PrefixOfTemplate<T>>;
export function defineKeyspace(def: KeyspaceDefinition<string, unknown>): Keyspace {
  checkDefinition(def);
  const parsed = parseTemplate(def.key);
  const { codec: value, json } = compileValueCodec(def.value);
  const key = compileKeyCodec(parsed);
  const canonical = canonicalLayout(parsed, value.id);
  const fixedKey = key.fixedWidth !== undefined;
  const fixedValue = value.fixedWidth !== undefined;
  const spec: KeyspaceSpec = def.name === undefined
    ? { key: parsed.template, value: json }
    : { name: def.name, key: parsed.template, value: json };
  const keyspace: Keyspace = {
    name: def.name,
    key, // frozen (and shared by keyspaces with the same fields) by compileKeyCodec
    value: Object.freeze(value),
    layout: `${fixedKey ? "fixed" : "variable"}-key-${fixedValue ? "fixed" : "variable"}-value`,
    identity: identityOf(canonical),
    canonical,
    spec: deepFreeze(spec),
  };
  return Object.freeze(keyspace);
}

function checkDefinition(def: unknown): asserts def is KeyspaceDefinition {
  if (typeof def !== "object" || def === null || Array.isArray(def)) {
    throw new SchemaError(
      `keyspace definition must be an object, got ${def === null ? "null" : typeof def}`,
    );
  }
  for (const prop of Object.keys(def)) {
    if (!DEFINITION_PROPS.includes(prop)) {
      throw new SchemaError(
        `keyspace definition has unknown property "${prop}" (expected name, key, value)`,
      );
    }
  }
  const { name, key } = def as Record<string, unknown>;
  if (name !== undefined && typeof name !== "string") {
    throw new SchemaError(`keyspace name must be a string, got ${typeof name}`);
  }
  if (typeof key !== "string") {
    throw new SchemaError(`keyspace key must be a template string, got ${typeof key}`);
  }
}

function deepFreeze<T extends object>(o: T): T {
  for (const v of Object.values(o)) if (typeof v === "object" && v !== null) deepFreeze(v);
  return Object.freeze(o);
}

/**
 * Rebuilds a keyspace from its {@link Keyspace.spec} (e.g. read from database metadata). The
 * result has the same identity as the original. Throws SchemaError for a custom value codec,
 * whose functions are not in the spec (tools then show raw value bytes).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineKeyspace, keyspaceFromSpec } from "@zonetree/zonetree";
 *
 * const ks = defineKeyspace({ key: "metric:<u32be>:ts:<u64be:desc>", value: "f64" });
 * const again = keyspaceFromSpec(JSON.parse(JSON.stringify(ks.spec)));
 * assert.equal(again.identity, ks.identity);
 * ```
 */
export function keyspaceFromSpec(spec: KeyspaceSpec): Keyspace {
  if (typeof spec !== "object" || spec === null) {
    throw new SchemaError(
      `keyspace spec must be an object, got ${spec === null ? "null" : typeof spec}`,
    );
  }
  const value = spec.value as unknown;
  if (typeof value === "object" && value !== null && "custom" in value) {
    throw new SchemaError(
      `keyspace value codec is the custom codec ${
        JSON.stringify((value as { custom: unknown }).custom)
      }, ` +
        "which cannot be rebuilt from a spec; pass the keyspace in code",
    );
  }
  const def: KeyspaceDefinition<string, "json"> = spec.name === undefined
    ? { key: spec.key, value: value as "json" }
    : { name: spec.name, key: spec.key, value: value as "json" };
  return defineKeyspace(def) as Keyspace; // the value spec is checked at runtime
}
