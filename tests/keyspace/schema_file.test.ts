/** Schema files: the shipped examples load; bad files are SchemaErrors naming file, path, expectation. */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SchemaError } from "../../src/api/errors.ts";
import { defineKeyspace } from "../../src/keyspace/define_keyspace.ts";
import { loadKeyspace, parseKeyspaceSchema } from "../../src/keyspace/schema_file.ts";

const schemas = join(import.meta.dir, "../../schemas");

describe("shipped schemas", () => {
  test("readings.json: sensor:<str>:ts:<u64be> with a struct value", async () => {
    const ks = await loadKeyspace(join(schemas, "readings.json"));
    expect(ks.name).toBe("readings");
    expect(ks.key.fields).toEqual([
      { name: "sensor", type: "str", desc: false },
      { name: "ts", type: "u64be", desc: false },
    ]);
    expect(ks.value.fixedWidth).toBe(12);
    expect(ks.layout).toBe("variable-key-fixed-value");
    const same = defineKeyspace({
      key: "sensor:<str>:ts:<u64be>",
      value: { temp: "f64", humidity: "f32" },
    });
    expect(ks.identity).toBe(same.identity);
    const v = ks.value.decode(ks.value.encode({ temp: 21.5, humidity: 0.25 }));
    expect(v).toEqual({ temp: 21.5, humidity: 0.25 });
  });
  test("events.json: stream:<str>:<u64be>, json", async () => {
    const ks = await loadKeyspace(join(schemas, "events.json"));
    expect(ks.key.fields.map((f) => f.name)).toEqual(["stream", "f1"]);
    expect(ks.layout).toBe("variable-key-variable-value");
    expect(ks.key.decode(ks.key.encode(["orders", 3]))).toEqual({ stream: "orders", f1: 3n });
  });
  test("metrics.json: fixed-width metric:<u32be>:ts:<u64be:desc>, f64", async () => {
    const ks = await loadKeyspace(join(schemas, "metrics.json"));
    expect(ks.key.fixedWidth).toBe(12);
    expect(ks.layout).toBe("fixed-key-fixed-value");
    const newer = ks.key.encode({ metric: 1, ts: 200 });
    const older = ks.key.encode({ metric: 1, ts: 100 });
    expect(ks.key.compare(newer, older)).toBeLessThan(0); // latest first inside a metric
  });
  test("queue.json: queue:<str>:seq:<u64be>, json", async () => {
    const ks = await loadKeyspace(join(schemas, "queue.json"));
    expect(ks.key.fields.map((f) => `${f.name}:${f.type}`)).toEqual(["queue:str", "seq:u64be"]);
    expect(ks.value.id).toBe("json");
  });
});

describe("bad schema files", () => {
  let dir = "";
  const file = async (name: string, text: string) => {
    dir ||= await mkdtemp(join(tmpdir(), "zt-schema-"));
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  };
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function loadError(path: string): Promise<SchemaError> {
    try {
      await loadKeyspace(path);
    } catch (e) {
      expect(e).toBeInstanceOf(SchemaError);
      return e as SchemaError;
    }
    throw new Error("expected a SchemaError");
  }

  test("a file that is not JSON names the file", async () => {
    const path = await file("broken.json", "{ key: ");
    expect((await loadError(path)).message).toStartWith(`${path}: not valid JSON`);
  });
  test("a missing file names the file", async () => {
    expect((await loadError("/no/such/schema.json")).message).toStartWith(
      "/no/such/schema.json: cannot read",
    );
  });
  test("a template error names the file, $.key and the column", async () => {
    const path = await file("t.json", JSON.stringify({ key: "a:<u65be>" }));
    const err = await loadError(path);
    expect(err.message).toStartWith(
      `${path}: at $.key: key template "a:<u65be>": unknown type "u65be" at column 4`,
    );
  });

  const cases: [unknown, string][] = [
    [{ key: 5 }, "at $.key: expected a key template string, got 5"],
    [{}, 'at $.key: missing required property "key"'],
    [null, "at $: expected an object"],
    [[], "at $: expected an object"],
    [{ key: "<u8>", vaule: "json" }, 'at $.vaule: unknown property "vaule"'],
    [{ key: "<u8>", name: 1 }, "at $.name: expected a string, got 1"],
    [{ key: "<u8>", value: "yaml" }, "at $.value: expected a value codec: json, utf8, bytes"],
    [{ key: "<u8>", value: 7 }, "at $.value: expected a value codec"],
    [
      { key: "<u8>", value: { temp: "str" } },
      "at $.value.temp: expected a fixed-width scalar type (u8, u16be",
    ],
    [
      { key: "<u8>", value: { "odd key": 5 } },
      'at $.value["odd key"]: expected a fixed-width scalar type',
    ],
    [{ key: "<u8>", value: {} }, "at $.value: struct value codec has no fields"],
  ];
  for (const [json, message] of cases) {
    test(`${JSON.stringify(json)} -> ${message}`, () => {
      let err: unknown;
      try {
        parseKeyspaceSchema(json, "bad.json");
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SchemaError);
      expect((err as Error).message).toStartWith("bad.json: ");
      expect((err as Error).message).toContain(message);
    });
  }

  test("$schema, bytes:N and every scalar are accepted", () => {
    const ks = parseKeyspaceSchema(
      {
        $schema: "x",
        key: "<id:bytes:16>",
        value: { a: "bytes:4", b: "uuid", c: "i64be", d: "bool", e: "f32" },
      },
      "ok.json",
    );
    expect(ks.value.fixedWidth).toBe(4 + 16 + 8 + 1 + 4);
  });
});
