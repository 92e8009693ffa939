/**
 * Straight-line `encode` / `decode` functions generated for one layout with `new Function`.
 *
 * Why: the generic path (`compile_key_codec.ts`) loops over the fields and calls each field
 * codec through one shared call site, which the JIT sees as megamorphic (a different closure
 * per field type) and cannot inline; property reads by a field name held in a variable are
 * megamorphic too. Generated code reads `key["ts"]` with a constant name and calls each field
 * codec from its own call site, so both become monomorphic and inlinable (measured in
 * `bench/keyspace_bench.ts`: about 2x on encode and decode).
 *
 * Contract: the generated functions only handle the common, valid shapes (a whole key as an
 * object with exactly the layout's fields, a full tuple, or the bare scalar of a one-field
 * layout; well-formed bytes). Anything else is handed to the generic `slow` function, which
 * produces the same result or the precise KeyEncodingError. Field names are word characters
 * only (see `parse_template.ts`) and are embedded with `JSON.stringify`, so no template can
 * inject code. Returns undefined where code generation is not allowed (a CSP), and the caller
 * keeps the generic path.
 *
 * @module
 */
import type { FieldCodec } from "./codec_contract.ts";
import { readCursor } from "./codec_contract.ts";
import { newCopyArray } from "../util/bytes.ts";

/** Encode function of a layout. */
export type EncodeFn = (key: unknown) => Uint8Array;
/** Decode function of a layout. */
export type DecodeFn = (bytes: Uint8Array) => unknown;

/** Source of the part of `encode` that picks the field values `v0..vN` out of `key`. */
function pickValuesSource(names: readonly string[]): string {
  const n = names.length;
  const vars = names.map((_, i) => `v${i}`);
  const fromTuple = vars.map((v, i) => `${v} = key[${i}];`).join(" ");
  const fromObject = vars.map((v, i) => `${v} = key[${JSON.stringify(names[i])}];`).join(" ");
  const scalar = n === 1 ? "v0 = key;" : "return slow(key);";
  return [
    `let ${vars.join(", ")};`,
    "if (Array.isArray(key)) {",
    `  if (key.length !== ${n}) return slow(key);`,
    `  ${fromTuple}`,
    '} else if (typeof key === "object" && key !== null && !(key instanceof Uint8Array)) {',
    `  ${fromObject}`,
    "  let count = 0;",
    "  for (const _ in key) count++;",
    `  if (count !== ${n}) return slow(key);`,
    `} else { ${scalar} }`,
    `if (${vars.map((v) => `${v} === undefined`).join(" || ")}) return slow(key);`,
  ].join("\n");
}

/** Source of the part of `encode` that sizes, allocates and writes. */
function writeSource(codecs: readonly FieldCodec[], fixedWidth: number | undefined): string {
  const lines: string[] = [];
  if (fixedWidth !== undefined) {
    lines.push(`const out = alloc(${fixedWidth});`);
    let pos = 0;
    codecs.forEach((c, i) => {
      lines.push(`w${i}(out, ${pos}, v${i});`);
      pos += c.width;
    });
    return lines.join("\n");
  }
  const fixedPart = codecs.reduce((sum, c) => sum + c.width, 0);
  const sizes = codecs.map((c, i) => (c.width > 0 ? "" : ` + s${i}(v${i})`)).join("");
  lines.push(`const out = alloc(${fixedPart}${sizes});`, "let pos = 0;");
  codecs.forEach((_, i) => lines.push(`pos = w${i}(out, pos, v${i});`));
  return lines.join("\n");
}

/** Generates `encode` for a layout; `slow` handles every other shape (and the errors). */
export function generateEncode(
  codecs: readonly FieldCodec[],
  names: readonly string[],
  fixedWidth: number | undefined,
  slow: EncodeFn,
): EncodeFn | undefined {
  const params = codecs.flatMap((_, i) => [`w${i}`, `s${i}`]);
  const args = codecs.flatMap((c) => [c.write, c.size]);
  const body = `return function encode(key) {\n${pickValuesSource(names)}\n${
    writeSource(codecs, fixedWidth)
  }\nreturn out;\n};`;
  return compile<EncodeFn>(["slow", "alloc", ...params], body, [slow, newCopyArray, ...args]);
}

/** Generates `decode` for a layout; malformed bytes go to `slow`, which throws the error. */
export function generateDecode(
  codecs: readonly FieldCodec[],
  names: readonly string[],
  fixedWidth: number | undefined,
  slow: DecodeFn,
): DecodeFn | undefined {
  const lines = ["const end = bytes.length;"];
  if (fixedWidth !== undefined) lines.push(`if (end !== ${fixedWidth}) return slow(bytes);`);
  lines.push("let pos = 0;");
  codecs.forEach((c, i) => {
    if (c.width > 0) {
      if (fixedWidth === undefined) lines.push(`if (pos + ${c.width} > end) return slow(bytes);`);
      lines.push(`const v${i} = r${i}(bytes, pos, end);`, `pos += ${c.width};`);
    } else {
      lines.push(`const v${i} = r${i}(bytes, pos, end);`, "pos = cursor.pos;");
    }
  });
  lines.push("if (pos !== end) return slow(bytes);");
  const result = names.length === 1
    ? "v0"
    : `{ ${names.map((name, i) => `${JSON.stringify(name)}: v${i}`).join(", ")} }`;
  lines.push(`return ${result};`);
  const params = codecs.map((_, i) => `r${i}`);
  const body = `return function decode(bytes) {\n${lines.join("\n")}\n};`;
  return compile<DecodeFn>(["slow", "cursor", ...params], body, [
    slow,
    readCursor,
    ...codecs.map((c) => c.read),
  ]);
}

function compile<F>(params: string[], body: string, args: unknown[]): F | undefined {
  try {
    return new Function(...params, body)(...args) as F;
  } catch {
    return undefined;
  }
}
