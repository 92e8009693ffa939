/**
 * Codecs for the variable-width key fields `str` (UTF-8) and `bytes`: escaped and terminated so
 * that a composite key's bytes still compare correctly when more fields follow.
 *
 * ```
 * content byte 0x00   -> 0x00 0xff      (escape)
 * content byte b != 0 -> b
 * end of field        -> 0x00 0x01      (terminator)
 * ```
 *
 * Why this orders correctly: the terminator `00 01` is smaller than anything that can follow
 * content at the same place (`00 ff` or a non-zero byte), so a value sorts before every value
 * it is a proper prefix of, whatever the next field holds; elsewhere the first differing
 * content byte decides, as in plain memcmp. The encoding is prefix-free (inside the content a
 * 0x00 is always followed by 0xff), so inverting every byte (`desc`) exactly reverses the
 * order, terminator included. `str` is UTF-8, whose byte order is code point order; lone
 * surrogates cannot be encoded and are rejected. Same scheme as CockroachDB's bytes encoding.
 *
 * @module
 */
import type { KeyField } from "./key_field_type.ts";
import { keyDecodeError, keyFieldError, keyTypeError } from "./key_errors.ts";
import { type FieldCodec, readCursor } from "./codec_contract.ts";
import { copyOf, newCopyArray } from "../util/bytes.ts";

const ESCAPE = 0xff;
const TERMINATOR = 0x01;

/** Decodes non-ASCII UTF-8; `ignoreBOM` keeps a leading U+FEFF, `fatal` rejects bad bytes. */
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Reused buffer for unescaping; replaced (not kept) when a huge key needed more. */
let unescapeBuf = new Uint8Array(256);
const UNESCAPE_KEEP_MAX = 64 * 1024;

/** The `str` codec for one field; `mask` is 0xff for `desc`. */
export function strCodec(field: KeyField, mask: number): FieldCodec {
  const name = field.name;
  const memo = new StrMemo(name, mask);
  return {
    field,
    width: 0,
    size(v) {
      if (typeof v !== "string") throw keyTypeError(name, "a string", v);
      return utf8EscapedLength(name, v) + 2;
    },
    write: (out, pos, v) => writeUtf8Escaped(out, pos, v as string, mask),
    read: (b, pos, end) => memo.read(b, pos, end),
  };
}

/** Longest field (escaped bytes) that {@link StrMemo} remembers. */
const STR_MEMO_MAX = 64;

/**
 * The last string one `str` field decoded, by its stored bytes. Keys come out of a range in
 * order, so neighbours usually share their leading fields (a sensor's readings, a tenant's
 * rows): those return the same string without decoding (or allocating) it again.
 */
class StrMemo {
  private bytes = new Uint8Array(STR_MEMO_MAX);
  private length = -1;
  private value = "";
  constructor(private readonly name: string, private readonly mask: number) {}

  read(b: Uint8Array, pos: number, end: number): string {
    const memo = this.bytes;
    const m = this.length;
    // The remembered field's bytes and then a terminator: the same field, found without a
    // separate scan (those bytes hold no terminator: they were a whole field's content).
    if (m >= 0 && pos + m + 1 < end) {
      const mask = this.mask;
      let i = 0;
      while (i < m && memo[i] === b[pos + i]) i++;
      if (i === m && (b[pos + m] ^ mask) === 0 && (b[pos + m + 1] ^ mask) === TERMINATOR) {
        readCursor.pos = pos + m + 2;
        return this.value;
      }
    }
    const stop = scanField(this.name, b, pos, end, this.mask);
    const n = stop - pos;
    const value = decodeStr(this.name, b, pos, stop, this.mask);
    if (n <= STR_MEMO_MAX) {
      for (let i = 0; i < n; i++) memo[i] = b[pos + i];
      this.length = n;
      this.value = value;
    }
    readCursor.pos = stop + 2;
    return value;
  }
}

/** The variable `bytes` codec for one field; `mask` is 0xff for `desc`. */
export function bytesCodec(field: KeyField, mask: number): FieldCodec {
  const name = field.name;
  return {
    field,
    width: 0,
    size(v) {
      if (!(v instanceof Uint8Array)) throw keyTypeError(name, "a Uint8Array", v);
      let zeros = 0;
      for (let i = v.indexOf(0); i !== -1; i = v.indexOf(0, i + 1)) zeros++;
      return v.length + zeros + 2;
    },
    write: (out, pos, v) => writeBytesEscaped(out, pos, v as Uint8Array, mask),
    read: (b, pos, end) => readBytes(name, b, pos, end, mask),
  };
}

/** UTF-8 length of `s` with every NUL counted twice; throws on a lone surrogate. */
function utf8EscapedLength(name: string, s: string): number {
  let n = 0;
  const len = s.length;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += c === 0 ? 2 : 1;
    else if (c < 0x800) n += 2;
    else if (c < 0xd800 || c > 0xdfff) n += 3;
    else if (c <= 0xdbff && i + 1 < len && isLowSurrogate(s.charCodeAt(i + 1))) {
      n += 4;
      i++;
    } else {
      throw keyFieldError(name, `lone surrogate U+${c.toString(16).toUpperCase()} at index ${i}`);
    }
  }
  return n;
}

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

/** Writes `s` (already checked by `utf8EscapedLength`) escaped and terminated. */
function writeUtf8Escaped(out: Uint8Array, pos: number, s: string, mask: number): number {
  const len = s.length;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      if (c !== 0) {
        out[pos++] = c ^ mask;
      } else {
        out[pos++] = mask;
        out[pos++] = ESCAPE ^ mask;
      }
    } else if (c < 0x800) {
      out[pos++] = (0xc0 | (c >> 6)) ^ mask;
      out[pos++] = (0x80 | (c & 0x3f)) ^ mask;
    } else if (c < 0xd800 || c > 0xdfff) {
      out[pos++] = (0xe0 | (c >> 12)) ^ mask;
      out[pos++] = (0x80 | ((c >> 6) & 0x3f)) ^ mask;
      out[pos++] = (0x80 | (c & 0x3f)) ^ mask;
    } else {
      const cp = ((c - 0xd800) << 10) + (s.charCodeAt(++i) - 0xdc00) + 0x10000;
      out[pos++] = (0xf0 | (cp >> 18)) ^ mask;
      out[pos++] = (0x80 | ((cp >> 12) & 0x3f)) ^ mask;
      out[pos++] = (0x80 | ((cp >> 6) & 0x3f)) ^ mask;
      out[pos++] = (0x80 | (cp & 0x3f)) ^ mask;
    }
  }
  out[pos++] = mask;
  out[pos++] = TERMINATOR ^ mask;
  return pos;
}

function writeBytesEscaped(out: Uint8Array, pos: number, v: Uint8Array, mask: number): number {
  if (mask === 0 && v.indexOf(0) === -1) {
    out.set(v, pos);
    pos += v.length;
  } else {
    for (let i = 0; i < v.length; i++) {
      const b = v[i];
      if (b !== 0) {
        out[pos++] = b ^ mask;
      } else {
        out[pos++] = mask;
        out[pos++] = ESCAPE ^ mask;
      }
    }
  }
  out[pos++] = mask;
  out[pos++] = TERMINATOR ^ mask;
  return pos;
}

/**
 * Finds the terminator of the field starting at `pos`. Returns its index and sets
 * `scan.plain` (no escape and only ASCII bytes) and `scan.escapes`.
 */
function scanField(name: string, b: Uint8Array, pos: number, end: number, mask: number): number {
  let plain = true;
  let escapes = 0;
  let i = pos;
  for (;;) {
    if (i >= end) throw keyDecodeError(name, `no terminator after offset ${pos}`);
    const x = b[i] ^ mask;
    if (x === 0) {
      const y = i + 1 < end ? b[i + 1] ^ mask : -1;
      if (y === TERMINATOR) break;
      if (y !== ESCAPE) throw keyDecodeError(name, `bad escape at offset ${i}`);
      plain = false;
      escapes++;
      i += 2;
      continue;
    }
    if (x >= 0x80) plain = false;
    i++;
  }
  scan.plain = plain;
  scan.escapes = escapes;
  return i;
}

const scan = { plain: true, escapes: 0 };

/** The string of the field bytes `b[pos, stop)` (`stop`: its terminator, found by `scanField`). */
function decodeStr(name: string, b: Uint8Array, pos: number, stop: number, mask: number): string {
  if (scan.plain) return asciiString(b, pos, stop, mask);
  const n = unescape(b, pos, stop, mask);
  try {
    return utf8Decoder.decode(unescapeBuf.subarray(0, n));
  } catch (e) {
    throw keyDecodeError(name, `invalid UTF-8 at offset ${pos}`, e);
  } finally {
    if (unescapeBuf.length > UNESCAPE_KEEP_MAX) unescapeBuf = new Uint8Array(256);
  }
}

/** ASCII bytes to a string without TextDecoder (cheaper for short keys; see the bench). */
function asciiString(b: Uint8Array, start: number, stop: number, mask: number): string {
  let s = "";
  for (let i = start; i < stop; i++) s += String.fromCharCode(b[i] ^ mask);
  return s;
}

/** Unescapes (and unmasks) `b[start, stop)` into `unescapeBuf`; returns the length. */
function unescape(b: Uint8Array, start: number, stop: number, mask: number): number {
  if (unescapeBuf.length < stop - start) unescapeBuf = new Uint8Array(stop - start);
  const out = unescapeBuf;
  let n = 0;
  for (let i = start; i < stop; i++) {
    const x = b[i] ^ mask;
    out[n++] = x;
    if (x === 0) i++; // skip the escape byte
  }
  return n;
}

function readBytes(
  name: string,
  b: Uint8Array,
  pos: number,
  end: number,
  mask: number,
): Uint8Array {
  const stop = scanField(name, b, pos, end, mask);
  readCursor.pos = stop + 2;
  if (scan.escapes === 0 && mask === 0) return copyOf(b, pos, stop);
  const out = newCopyArray(stop - pos - scan.escapes);
  let n = 0;
  for (let i = pos; i < stop; i++) {
    const x = b[i] ^ mask;
    out[n++] = x;
    if (x === 0) i++;
  }
  return out;
}
