/** The template grammar of API.md §1: names, types, desc, bytes:N, and SchemaErrors with columns. */
import { describe, expect, test } from "bun:test";
import { SchemaError } from "../../src/api/errors.ts";
import { defineKeyspace } from "../../src/keyspace/define_keyspace.ts";
import { nameFromLiteral, parseTemplate } from "../../src/keyspace/parse_template.ts";

function fieldsOf(template: string): string[] {
  return parseTemplate(template).fields.map((f) => `${f.name}:${f.type}${f.desc ? ":desc" : ""}`);
}

describe("parseTemplate", () => {
  test("names a field after the literal word before it", () => {
    expect(fieldsOf("sensor:<str>:ts:<u64be>")).toEqual(["sensor:str", "ts:u64be"]);
    expect(fieldsOf("metric:<u32be>:ts:<u64be:desc>")).toEqual(["metric:u32be", "ts:u64be:desc"]);
    expect(fieldsOf("user/<str>/post-<u32be>")).toEqual(["user:str", "post:u32be"]);
    expect(fieldsOf("a:b:<u8>")).toEqual(["b:u8"]);
    expect(fieldsOf("température:<f64>")).toEqual(["température:f64"]);
    expect(fieldsOf("id<uuid>")).toEqual(["id:uuid"]);
  });

  test("falls back to f<i> by position when no word precedes the placeholder", () => {
    expect(fieldsOf("stream:<str>:<u64be>")).toEqual(["stream:str", "f1:u64be"]);
    expect(fieldsOf("<str><u8>")).toEqual(["f0:str", "f1:u8"]);
    expect(fieldsOf("2024:<u8>")).toEqual(["f0:u8"]);
    expect(fieldsOf("x::<u8>")).toEqual(["f0:u8"]);
  });

  test("takes explicit names, desc and bytes:N", () => {
    expect(fieldsOf("<ts:u64be>")).toEqual(["ts:u64be"]);
    expect(fieldsOf("<u64be:desc>")).toEqual(["f0:u64be:desc"]);
    expect(fieldsOf("x:<ts:u64be:desc>")).toEqual(["ts:u64be:desc"]);
    expect(fieldsOf("<id:bytes:16>/<bytes:4:desc>/<b:bytes>/<bytes:desc>")).toEqual([
      "id:bytes:16",
      "f1:bytes:4:desc",
      "b:bytes",
      "f3:bytes:desc",
    ]);
    expect(fieldsOf("<a:i8><b:i16be><c:i32be><d:i64be><e:bool><f:uuid>")).toHaveLength(6);
  });

  test("keeps the literal text around fields", () => {
    expect(parseTemplate("sensor:<str>:ts:<u64be>!").literals).toEqual(["sensor:", ":ts:", "!"]);
  });

  test("nameFromLiteral drops one separator and takes the trailing word", () => {
    expect(nameFromLiteral("sensor:", 0)).toBe("sensor");
    expect(nameFromLiteral("a-b_c.", 3)).toBe("b_c");
    expect(nameFromLiteral("", 2)).toBe("f2");
    expect(nameFromLiteral("9lives:", 1)).toBe("f1");
  });
});

describe("template errors are SchemaErrors naming the column and token", () => {
  const cases: [string, RegExp][] = [
    ["a:<u65be>", /unknown type "u65be" at column 4/],
    ["a:<ts:u65be>", /unknown type "u65be" at column 7/],
    ["<ts>", /unknown type "ts" at column 2/],
    ["sensor:<str", /unterminated placeholder "<" at column 8/],
    ["a:<str:<u8>", /unterminated placeholder "<" at column 3/],
    ["a:<>", /empty placeholder "<>" at column 3/],
    ["a:<ts::u8>", /empty token at column 7/],
    ["a:<u8>:a:<u8>", /duplicate field name "a"/],
    ["<ts:u8>-<ts:u16be>", /duplicate field name "ts"/],
    ["<f1:u8><u8>", /duplicate field name "f1"/],
    ["<desc:u8>", /"desc" at column 2 must come after the type/],
    ["<u8:desc:desc>", /unexpected token "desc" at column 10/],
    ["<u8:ts>", /unexpected token "ts" at column 5.*name before the type/],
    ["<u8:u16be>", /unexpected token "u16be" at column 5.*exactly one type/],
    ["<bytes:0>", /invalid width "0" at column 8/],
    ["<bytes:007>", /invalid width "007"/],
    ["<bytes:99999>", /invalid width "99999"/],
    ["<u8:4>", /unexpected token "4" at column 5/],
    ["<1x:u8>", /invalid field name "1x" at column 2/],
    ["<a-b:u8>", /invalid field name "a-b" at column 2/],
    ["<__proto__:u8>", /"__proto__"/],
    ["plain", /has no placeholder/],
    ["", /has no placeholder/],
    ["a>b:<u8>", /unexpected ">" at column 2/],
    ["a\n<u8>", /control character U\+000A at column 2/],
    ["<U64BE>", /unknown type "U64BE"/],
    [`${"<u8>".repeat(65)}`, /more than 64/],
    ["x".repeat(2000), /longer than 1024/],
  ];
  for (const [template, message] of cases) {
    test(`${JSON.stringify(template.slice(0, 30))} -> ${message.source}`, () => {
      let err: unknown;
      try {
        defineKeyspace({ key: template as string });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SchemaError);
      expect((err as SchemaError).code).toBe("SCHEMA");
      expect((err as SchemaError).message).toMatch(message);
    });
  }

  test("a non-string template is a SchemaError", () => {
    expect(() => defineKeyspace({ key: 5 as unknown as string })).toThrow(SchemaError);
    expect(() => defineKeyspace(null as never)).toThrow(SchemaError);
    expect(() => defineKeyspace({ key: "<u8>", values: "json" } as never)).toThrow(
      /unknown property "values"/,
    );
  });
});
