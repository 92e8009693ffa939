/**
 * Keyspace schema files (API.md §1 "Schema files"): JSON of the form
 * `{ "$schema"?: string, "name"?: string, "key": "<template>", "value"?: <codec spec> }`, where a
 * codec spec is a codec name (`"json"`, `"utf8"`, `"bytes"`, a scalar type) or an object of
 * fixed-width scalar types (a struct, fields in the order written).
 *
 * Validation is valibot (structure, codec names, struct field types), then the template parser
 * and `defineKeyspace`. Every failure is a SchemaError whose message names the file, the JSON
 * path (`$.value.temp`) and what was expected; a template error also names the column.
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import * as v from "valibot";
import { SchemaError } from "../api/errors.ts";
import { defineKeyspace, type Keyspace } from "./define_keyspace.ts";
import { bytesN, VALUE_SCALAR_TYPES } from "./key_field_type.ts";
import { describeValue } from "./key_errors.ts";

const isScalar = (t: string): boolean => VALUE_SCALAR_TYPES.includes(t) || bytesN(t) > 0;
const SCALAR_EXPECTED = `a fixed-width scalar type (${VALUE_SCALAR_TYPES.join(", ")}, bytes:N)`;
const CODEC_EXPECTED =
  `a value codec: json, utf8, bytes, ${VALUE_SCALAR_TYPES.join(", ")}, bytes:N, ` +
  "or an object of scalar types";

const ScalarType = v.pipe(v.string(SCALAR_EXPECTED), v.check(isScalar, SCALAR_EXPECTED));
const CodecName = v.pipe(
  v.string(CODEC_EXPECTED),
  v.check(
    (t: string) => t === "json" || t === "utf8" || t === "bytes" || isScalar(t),
    CODEC_EXPECTED,
  ),
);

/** A value codec spec: a name, or a struct (an object of scalar types). */
const StructSpec = v.record(v.string(), ScalarType, "an object of scalar types");

/** The valibot schema of a keyspace schema file. */
const SchemaFile = v.strictObject(
  {
    $schema: v.optional(v.string("a string")),
    name: v.optional(v.string("a string")),
    key: v.string("a key template string"),
    value: v.optional(v.unknown()), // checked by ValueSpec, for precise paths
  },
  'an object with a "key" template (and optional "name", "value")',
);

/**
 * Validates parsed JSON as a keyspace schema and compiles it. `fileName` is used in error
 * messages only. Throws SchemaError naming the file, the JSON path and the expectation.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseKeyspaceSchema, SchemaError } from "@zonetree/zonetree";
 *
 * const ks = parseKeyspaceSchema({ key: "queue:<str>:seq:<u64be>" }, "queue.json");
 * assert.deepEqual(ks.key.fields.map((f) => f.name), ["queue", "seq"]);
 * assert.throws(
 *   () => parseKeyspaceSchema({ key: "<u8>", value: { temp: "float" } }, "bad.json"),
 *   (e) => e instanceof SchemaError && /bad\.json/.test(e.message) && /\$\.value\.temp/.test(e.message),
 * );
 * ```
 */
export function parseKeyspaceSchema(json: unknown, fileName: string): Keyspace {
  if (Array.isArray(json)) {
    throw fileError(fileName, "$", `expected ${SchemaFile.message}, got an array`);
  }
  const result = v.safeParse(SchemaFile, json);
  if (!result.success) throw issueError(fileName, result.issues[0]);
  const { name, key, value } = result.output;
  checkValueSpec(fileName, value);
  try {
    return defineKeyspace({ name, key, value: value as "json" | undefined }) as Keyspace;
  } catch (e) {
    if (!(e instanceof SchemaError)) throw e;
    const path = /^key template/.test(e.message) ? "$.key" : "$.value";
    throw fileError(fileName, path, e.message, e);
  }
}

/**
 * Reads a keyspace schema file (UTF-8 JSON) and compiles it. A missing or unreadable file, a
 * file that is not JSON, or an invalid schema is a SchemaError naming the file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { loadKeyspace } from "@zonetree/zonetree";
 *
 * const dir = mkdtempSync(join(tmpdir(), "zonetree-"));
 * const file = join(dir, "readings.json");
 * writeFileSync(file, JSON.stringify({
 *   name: "readings",
 *   key: "sensor:<str>:ts:<u64be>",
 *   value: { temp: "f64", humidity: "f32" },
 * }));
 * const readings = await loadKeyspace(file);
 * assert.equal(readings.layout, "variable-key-fixed-value");
 * rmSync(dir, { recursive: true });
 * ```
 */
export async function loadKeyspace(path: string): Promise<Keyspace> {
  // A number would be read as a file descriptor.
  if (typeof path !== "string" || path.length === 0) {
    throw new SchemaError(`loadKeyspace(path): expected a file path, got ${String(path)}`);
  }
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new SchemaError(`${path}: cannot read keyspace schema file: ${(e as Error).message}`, {
      cause: e,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SchemaError(`${path}: not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  return parseKeyspaceSchema(json, path);
}

function checkValueSpec(fileName: string, value: unknown): void {
  if (value === undefined) return;
  const schema = typeof value === "object" && value !== null && !Array.isArray(value)
    ? StructSpec
    : CodecName;
  const result = v.safeParse(schema, value);
  if (!result.success) throw issueError(fileName, result.issues[0], ["value"]);
}

type Issue = v.BaseIssue<unknown>;

function issueError(fileName: string, issue: Issue, base: string[] = []): SchemaError {
  const path = jsonPath([...base, ...(issue.path?.map((p) => p.key) ?? [])]);
  if (issue.type === "strict_object" && issue.expected === "never") {
    return fileError(
      fileName,
      path,
      `unknown property ${issue.received} (expected $schema, name, key, value)`,
    );
  }
  if (issue.type === "strict_object" && issue.input === undefined && issue.path?.length) {
    return fileError(fileName, path, `missing required property ${issue.expected}`);
  }
  return fileError(fileName, path, `expected ${issue.message}, got ${describeValue(issue.input)}`);
}

/** `$`, `$.value.temp`, `$["odd key"]`, `$[0]`. */
function jsonPath(keys: readonly unknown[]): string {
  let out = "$";
  for (const k of keys) {
    if (typeof k === "number") out += `[${k}]`;
    else if (typeof k === "string" && /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(k)) out += `.${k}`;
    else out += `[${JSON.stringify(k)}]`;
  }
  return out;
}

function fileError(fileName: string, path: string, what: string, cause?: unknown): SchemaError {
  return new SchemaError(`${fileName}: at ${path}: ${what}`, { cause });
}
