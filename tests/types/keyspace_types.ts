/**
 * Type tests for keyspace inference (src/keyspace/template_types.ts). Checked, not run:
 * `deno check tests/types/keyspace_types.ts`. Every `@ts-expect-error` line must be an error,
 * every other line must compile.
 */
import {
  defineKeyspace,
  jsonValue,
  type KeyInputOf,
  type KeyOf,
  type Keyspace,
  type PrefixOf,
  type ValueOf,
} from "../../src/keyspace/define_keyspace.ts";
import type { KEY_TYPE_WORDS, KeyTypeWord } from "../../src/keyspace/key_field_type.ts";
import { loadKeyspace } from "../../src/keyspace/schema_file.ts";

/** `true` only when A and B are the same type. */
type Equal<A, B> = (<G>() => G extends A ? 1 : 2) extends (<G>() => G extends B ? 1 : 2) ? true
  : false;
function expectType<_T extends true>(): void {}

// ---- key types from templates ----------------------------------------------------------------

const readings = defineKeyspace({
  name: "readings",
  key: "sensor:<str>:ts:<u64be>",
  value: { temp: "f64", humidity: "f32" },
});
expectType<Equal<KeyOf<typeof readings>, { sensor: string; ts: bigint }>>();
expectType<Equal<ValueOf<typeof readings>, { temp: number; humidity: number }>>();

readings.key.encode({ sensor: "s-7", ts: 1700000000000n });
readings.key.encode({ sensor: "s-7", ts: 1700000000000 });
readings.key.encode(["s-7", 5]);
readings.key.encode(["s-7", 5n] as const);
// @ts-expect-error ts must be a number or bigint
readings.key.encode({ sensor: "s-7", ts: "5" });
// @ts-expect-error sensor must be a string
readings.key.encode({ sensor: 7, ts: 5 });
// @ts-expect-error a whole key needs every field
readings.key.encode({ sensor: "s-7" });
// @ts-expect-error unknown field
readings.key.encode({ sensor: "s-7", ts: 5, extra: 1 });
// @ts-expect-error tuple items in field order
readings.key.encode([5, "s-7"]);
// @ts-expect-error too many tuple items
readings.key.encode(["s-7", 5, 6]);

readings.key.encodePrefix({});
readings.key.encodePrefix([]);
readings.key.encodePrefix({ sensor: "s-7" });
readings.key.encodePrefix(["s-7"]);
readings.key.encodePrefix({ sensor: "s-7", ts: 5n });
readings.key.encodeBound(["s-7", 9]);
// @ts-expect-error a prefix is a leading subset: ts without sensor
readings.key.encodePrefix({ ts: 5 });
// @ts-expect-error wrong type in a prefix
readings.key.encodePrefix({ sensor: 1 });

const decoded = readings.key.decode(new Uint8Array());
const ts: bigint = decoded.ts;
// @ts-expect-error ts decodes to bigint, not number
const tsNumber: number = decoded.ts;
void ts, tsNumber;

readings.value.encode({ temp: 1, humidity: 2 });
// @ts-expect-error humidity missing
readings.value.encode({ temp: 1 });

// ---- names: explicit, from the literal, positional; desc; bytes:N -----------------------------

const metrics = defineKeyspace({ key: "metric:<u32be>:ts:<u64be:desc>", value: "f64" });
expectType<Equal<KeyOf<typeof metrics>, { metric: number; ts: bigint }>>();
expectType<Equal<ValueOf<typeof metrics>, number>>();

const events = defineKeyspace({ key: "stream:<str>:<u64be>" });
expectType<Equal<KeyOf<typeof events>, { stream: string; f1: bigint }>>();
expectType<Equal<ValueOf<typeof events>, unknown>>();

const named = defineKeyspace({
  key: "t/<tenant:uuid>/<id:bytes:16:desc>/<ok:bool>/<n:i8>",
  value: "utf8",
});
expectType<
  Equal<KeyOf<typeof named>, { tenant: string; id: Uint8Array; ok: boolean; n: number }>
>();
expectType<Equal<ValueOf<typeof named>, string>>();

const positional = defineKeyspace({ key: "<str><f64:desc>-<bytes>", value: "bytes" });
expectType<Equal<KeyOf<typeof positional>, { f0: string; f1: number; f2: Uint8Array }>>();
expectType<Equal<ValueOf<typeof positional>, Uint8Array>>();

const digits = defineKeyspace({ key: "v2:<u8>:2024:<i16be>", value: "i64be" });
expectType<Equal<KeyOf<typeof digits>, { v2: number; f1: number }>>();
expectType<Equal<ValueOf<typeof digits>, bigint>>();

// The same naming rules as parse_template.ts (tests/keyspace/template.test.ts checks the runtime).
const separators = defineKeyspace({ key: "user/<str>/post-<u32be>" });
expectType<Equal<KeyOf<typeof separators>, { user: string; post: number }>>();
const lastWord = defineKeyspace({ key: "a:b:<u8>|x::<u8>|id<uuid>" });
expectType<Equal<KeyOf<typeof lastWord>, { b: number; f1: number; id: string }>>();

const unicode = defineKeyspace({ key: "température:<f64>" });
expectType<Equal<KeyOf<typeof unicode>, number>>();

// ---- one-field layouts take and return the bare scalar ------------------------------------------

const single = defineKeyspace({ key: "<u64be>", value: "u32be" });
expectType<Equal<KeyOf<typeof single>, bigint>>();
expectType<Equal<KeyInputOf<typeof single>, number | bigint>>();
single.key.encode(5);
single.key.encode(5n);
single.key.encodePrefix([]);
single.key.encodePrefix({});
// @ts-expect-error a string is not a u64be
single.key.encode("5");

const byName = defineKeyspace({ key: "user:<str>" });
expectType<Equal<KeyOf<typeof byName>, string>>();
// @ts-expect-error a one-field key is the bare scalar
byName.key.encode({ user: "u" }) satisfies Uint8Array;

// ---- invalid templates are compile errors ---------------------------------------------------------

// @ts-expect-error unknown type
defineKeyspace({ key: "a:<u65be>" });
// @ts-expect-error duplicate field names
defineKeyspace({ key: "a:<u8>:a:<u8>" });
// @ts-expect-error no placeholder
defineKeyspace({ key: "plain" });
// @ts-expect-error desc before the type
defineKeyspace({ key: "<desc:u8>" });
// @ts-expect-error unterminated placeholder
defineKeyspace({ key: "a:<u8" });
// @ts-expect-error empty placeholder
defineKeyspace({ key: "a:<>" });
// @ts-expect-error name after the type
defineKeyspace({ key: "<u8:ts>" });
// @ts-expect-error two types
defineKeyspace({ key: "<u8:u16be>" });
// @ts-expect-error bytes:0 width
defineKeyspace({ key: "<bytes:0>" });

// ---- value specs ------------------------------------------------------------------------------

interface Event {
  type: string;
  at: number;
}
const typedEvents = defineKeyspace({ key: "stream:<str>:<u64be>", value: jsonValue<Event>() });
expectType<Equal<ValueOf<typeof typedEvents>, Event>>();
// @ts-expect-error not an Event
typedEvents.value.encode({ type: 1 });

const custom = defineKeyspace({
  key: "<u32be>",
  value: {
    id: "point/v1",
    fixedWidth: 8,
    encode: (p: { x: number; y: number }) => new Uint8Array([p.x, p.y, 0, 0, 0, 0, 0, 0]),
    decode: (b) => ({ x: b[0], y: b[1] }),
  },
});
expectType<Equal<ValueOf<typeof custom>, { x: number; y: number }>>();

const scalars = defineKeyspace({
  key: "<u8>",
  value: { a: "u64be", b: "bool", c: "uuid", d: "bytes:4" },
});
expectType<Equal<ValueOf<typeof scalars>, { a: bigint; b: boolean; c: string; d: Uint8Array }>>();
// @ts-expect-error str is not a fixed-width struct field type
defineKeyspace({ key: "<u8>", value: { a: "str" } });
// @ts-expect-error unknown codec name
defineKeyspace({ key: "<u8>", value: "yaml" });

// ---- generic templates and loaded keyspaces -----------------------------------------------------

declare const template: string;
const dynamic = defineKeyspace({ key: template });
const anyKs: Keyspace = dynamic;
const loaded: Promise<Keyspace> = loadKeyspace("schemas/readings.json");
// Typed keyspaces are usable where a generic one is expected (the engine's view).
const asGeneric: Keyspace = readings;
type P = PrefixOf<typeof readings>;
const p: P = { sensor: "x" };
void anyKs, loaded, asGeneric, p;

// ---- the runtime list of type words is exactly the KeyTypeWord union ---------------------------

expectType<Equal<typeof KEY_TYPE_WORDS[number], KeyTypeWord>>();
