/**
 * The key template parser (API.md §1 "Template grammar"). Turns `"sensor:<str>:ts:<u64be>"`
 * into literal text and typed, named fields.
 *
 * Grammar: literal text with placeholders `<[name:]type[:N][:desc]>`. Type words are reserved,
 * so a placeholder is read as: a type word first, or a name then a type word; `N` only after
 * `bytes`; `desc` last. An unnamed placeholder is named after the word right before it (see
 * {@link nameFromLiteral}), else `f<i>` by position. `template_types.ts` mirrors these rules
 * at the type level; `tests/types/keyspace_types.ts` checks they agree.
 *
 * Invariants of the result: at least one field; names unique, non-empty, not `__proto__`;
 * `literals.length === fields.length + 1`. Every error is a SchemaError naming the 1-based
 * column and the offending token.
 *
 * @module
 */
import { SchemaError } from "../api/errors.ts";
import { BYTES_N_MAX, isTypeWord, KEY_TYPE_WORDS, type KeyField } from "./key_field_type.ts";

/** A parsed template: fields in layout order and the literal text around them. */
export interface ParsedTemplate {
  /** The template as written. */
  readonly template: string;
  /** Fields in layout order. */
  readonly fields: readonly KeyField[];
  /** `literals[i]` is the text before field `i`; the last entry is the text after the last field. */
  readonly literals: readonly string[];
}

/** Longest template accepted, in characters. */
export const TEMPLATE_LENGTH_MAX = 1024;
/** Most fields a layout may have. */
export const FIELD_COUNT_MAX = 64;

const NAME_RE = /^[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*$/;

/**
 * Parses a key template. Throws {@link SchemaError} (naming the column and token) when it is
 * not valid.
 *
 * @example
 * ```ts
 * const t = parseTemplate("sensor:<str>:ts:<u64be:desc>");
 * // t.fields: [{ name: "sensor", type: "str", desc: false }, { name: "ts", type: "u64be", desc: true }]
 * ```
 */
export function parseTemplate(template: string): ParsedTemplate {
  if (typeof template !== "string") {
    throw new SchemaError(`key template must be a string, got ${typeof template}`);
  }
  if (template.length > TEMPLATE_LENGTH_MAX) {
    throw fail(template, `is longer than ${TEMPLATE_LENGTH_MAX} characters`);
  }
  const fields: KeyField[] = [];
  const literals: string[] = [];
  let literal = "";
  let i = 0;
  while (i < template.length) {
    const c = template[i];
    if (c === "<") {
      const end = placeholderEnd(template, i);
      literals.push(literal);
      fields.push(parsePlaceholder(template, i, end, literal, fields.length));
      literal = "";
      i = end + 1;
      continue;
    }
    if (c === ">") throw fail(template, `unexpected ">" at column ${i + 1} outside a placeholder`);
    const code = template.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) {
      throw fail(template, `control character U+${hex4(code)} at column ${i + 1}`);
    }
    literal += c;
    i++;
  }
  literals.push(literal);
  checkFields(template, fields);
  return { template, fields, literals };
}

/** Index of the `>` closing the placeholder opened at `open`; throws when unterminated. */
function placeholderEnd(template: string, open: number): number {
  for (let j = open + 1; j < template.length; j++) {
    if (template[j] === ">") return j;
    if (template[j] === "<") break;
  }
  throw fail(template, `unterminated placeholder "<" at column ${open + 1}`);
}

function checkFields(template: string, fields: KeyField[]): void {
  if (fields.length === 0) {
    throw fail(template, "has no placeholder: a key needs at least one field");
  }
  if (fields.length > FIELD_COUNT_MAX) {
    throw fail(template, `has ${fields.length} fields, more than ${FIELD_COUNT_MAX}`);
  }
  const seen = new Set<string>();
  for (const f of fields) {
    if (seen.has(f.name)) throw fail(template, `duplicate field name "${f.name}"`);
    seen.add(f.name);
  }
}

interface Token {
  text: string;
  column: number;
}

function parsePlaceholder(
  template: string,
  open: number,
  close: number,
  literal: string,
  index: number,
): KeyField {
  const inner = template.slice(open + 1, close);
  const where = `placeholder "<${inner}>" at column ${open + 1}`;
  if (inner === "") throw fail(template, `empty ${where}`);
  const tokens: Token[] = [];
  let column = open + 2;
  for (const text of inner.split(":")) {
    if (text === "") throw fail(template, `empty token at column ${column} in ${where}`);
    tokens.push({ text, column });
    column += text.length + 1;
  }
  const typeAt = typeIndex(template, tokens, where);
  const name = typeAt === 1 ? explicitName(template, tokens[0]) : nameFromLiteral(literal, index);
  if (name === "__proto__") {
    throw fail(template, `field name "__proto__" in ${where} is not allowed`);
  }
  return parseTypeAndModifiers(template, tokens, typeAt, name, where);
}

/** Position of the type token: 0 (unnamed) or 1 (after a name). Throws when neither. */
function typeIndex(template: string, tokens: Token[], where: string): number {
  const first = tokens[0];
  if (isTypeWord(first.text)) return 0;
  if (first.text === "desc") {
    throw fail(template, `"desc" at column ${first.column} must come after the type in ${where}`);
  }
  if (tokens.length > 1 && isTypeWord(tokens[1].text)) return 1;
  const bad = tokens.length > 1 && NAME_RE.test(first.text) ? tokens[1] : first;
  throw fail(
    template,
    `unknown type "${bad.text}" at column ${bad.column} in ${where} ` +
      `(types: ${KEY_TYPE_WORDS.join(", ")}, bytes:N)`,
  );
}

function parseTypeAndModifiers(
  template: string,
  tokens: Token[],
  typeAt: number,
  name: string,
  where: string,
): KeyField {
  let type: string = tokens[typeAt].text;
  let j = typeAt + 1;
  if (type === "bytes" && j < tokens.length && /^[0-9]+$/.test(tokens[j].text)) {
    const n = tokens[j];
    if (!/^[1-9][0-9]*$/.test(n.text) || Number(n.text) > BYTES_N_MAX) {
      throw fail(
        template,
        `invalid width "${n.text}" at column ${n.column} in ${where} (bytes:N needs 1 <= N <= ${BYTES_N_MAX})`,
      );
    }
    type = `bytes:${n.text}`;
    j++;
  }
  let desc = false;
  if (j < tokens.length && tokens[j].text === "desc") {
    desc = true;
    j++;
  }
  if (j < tokens.length) throw unexpectedToken(template, tokens[j], where);
  return { name, type: type as KeyField["type"], desc };
}

function unexpectedToken(template: string, t: Token, where: string): SchemaError {
  const why = isTypeWord(t.text)
    ? "a placeholder has exactly one type"
    : t.text === "desc"
    ? '"desc" may appear once'
    : "a placeholder is <name:type:desc> with the name before the type";
  return fail(template, `unexpected token "${t.text}" at column ${t.column} in ${where}: ${why}`);
}

function explicitName(template: string, t: Token): string {
  if (!NAME_RE.test(t.text)) {
    throw fail(
      template,
      `invalid field name "${t.text}" at column ${t.column} ` +
        "(letters, digits and _, not starting with a digit)",
    );
  }
  return t.text;
}

/**
 * Name of an unnamed placeholder: the word right before it. Drop one trailing non-word
 * character of the literal (the separator, e.g. the `:` of `sensor:`), then take the longest
 * run of word characters (ASCII letters, digits, `_`, any non-ASCII character) that ends
 * there. No such word, or one that starts with a digit: `f<index>`.
 */
export function nameFromLiteral(literal: string, index: number): string {
  let end = literal.length;
  if (end > 0 && !isWordChar(literal.charCodeAt(end - 1))) end--;
  let start = end;
  while (start > 0 && isWordChar(literal.charCodeAt(start - 1))) start--;
  const word = literal.slice(start, end);
  if (word === "" || isDigit(word.charCodeAt(0))) return `f${index}`;
  return word;
}

function isWordChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || isDigit(c) || c === 0x5f ||
    c >= 0x80;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, "0");
}

function fail(template: string, what: string): SchemaError {
  return new SchemaError(`key template ${JSON.stringify(template)}: ${what}`);
}
