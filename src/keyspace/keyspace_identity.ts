/**
 * Keyspace identity: the canonical layout text and its hash. The database metadata stores the
 * identity and refuses to open with a keyspace whose identity differs (ComparerMismatchError),
 * because stored data is ordered by the layout.
 *
 * Canonical layout (encoding version 1), one line:
 *
 * ```
 * zt-keyspace/1;key=<literal|placeholder>...;value=<value codec id>
 * literal     = JSON string of the literal text (empty literals are left out)
 * placeholder = <name:type> or <name:type:desc>   (always named; type e.g. u64be, bytes:16)
 * ```
 *
 * e.g. `zt-keyspace/1;key="sensor:"<sensor:str>":ts:"<ts:u64be>;value=struct{"temp":"f64","humidity":"f32"}`.
 * It covers types, names, desc flags, literals, the encoding version and the value codec id;
 * not the informational `name`. Identity = `zt1:` + 16 lowercase hex digits of FNV-1a 64 over
 * the canonical text's UTF-8 bytes. Both are pure functions of the layout: stable across
 * processes, runtimes and versions. Bump the version when any byte encoding changes.
 *
 * @module
 */
import type { ParsedTemplate } from "./parse_template.ts";

/** Version of the key and value byte encodings; part of every canonical layout. */
export const ENCODING_VERSION = 1;

/** The canonical layout text of a parsed template and a value codec id. */
export function canonicalLayout(parsed: ParsedTemplate, valueCodecId: string): string {
  let key = "";
  for (let i = 0; i < parsed.fields.length; i++) {
    const lit = parsed.literals[i];
    if (lit !== "") key += JSON.stringify(lit);
    const f = parsed.fields[i];
    key += `<${f.name}:${f.type}${f.desc ? ":desc" : ""}>`;
  }
  const tail = parsed.literals[parsed.fields.length];
  if (tail !== "") key += JSON.stringify(tail);
  return `zt-keyspace/${ENCODING_VERSION};key=${key};value=${valueCodecId}`;
}

/** The identity of a canonical layout: `zt1:` + FNV-1a 64 of its UTF-8 bytes, in hex. */
export function identityOf(canonical: string): string {
  return `zt1:${fnv1a64Hex(new TextEncoder().encode(canonical))}`;
}

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK_64 = 0xffffffffffffffffn;

/** FNV-1a 64 of `bytes` as 16 lowercase hex digits (BigInt: runs once per keyspace). */
export function fnv1a64Hex(bytes: Uint8Array): string {
  let h = FNV_OFFSET;
  for (const b of bytes) h = ((h ^ BigInt(b)) * FNV_PRIME) & MASK_64;
  return h.toString(16).padStart(16, "0");
}
