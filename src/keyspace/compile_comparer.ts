/**
 * The key comparer of a compiled layout. Every field codec is order-preserving, so comparing
 * encoded keys is plain memcmp; what this file adds is speed.
 *
 * - Fixed-width layouts (every key exactly `width` bytes) get a comparer unrolled for that
 *   width: big-endian 32-bit words assembled from bytes, compared as unsigned numbers, with an
 *   early exit at the first differing word (then 16- and 8-bit tails). Inputs of another length
 *   (a prefix bound, say) fall back to the general loop, so the result is always memcmp order.
 * - Variable-width layouts use a memcmp loop that steps one 32-bit word at a time.
 *
 * Invariant: `sign(compare(a, b)) === sign(memcmp(a, b))` for all byte strings, checked by the
 * property tests against `compareBytes` of `src/util/bytes.ts`.
 *
 * @module
 */

/** A comparer of encoded keys: negative, zero or positive, in memcmp order. */
export type KeyComparer = (a: Uint8Array, b: Uint8Array) => number;

/** Fixed widths up to this many bytes get an unrolled comparer; wider ones use the loop. */
const UNROLL_WIDTH_MAX = 64;

/**
 * The comparer for a layout: unrolled for `fixedWidth` (when given and small), else the
 * general word-stepping memcmp.
 */
export function compileComparer(fixedWidth: number | undefined): KeyComparer {
  if (fixedWidth === undefined || fixedWidth > UNROLL_WIDTH_MAX) return compareMemcmp;
  return unrolledComparer(fixedWidth) ?? compareMemcmp;
}

/**
 * memcmp order of two byte strings (shorter prefix first). Steps a big-endian 32-bit word at a
 * time: one comparison per 4 bytes, and the first differing word decides, exactly as memcmp.
 */
export function compareMemcmp(a: Uint8Array, b: Uint8Array): number {
  const al = a.length;
  const bl = b.length;
  const n = al < bl ? al : bl;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const x = ((a[i] << 24) | (a[i + 1] << 16) | (a[i + 2] << 8) | a[i + 3]) >>> 0;
    const y = ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
    if (x !== y) return x < y ? -1 : 1;
  }
  for (; i < n; i++) {
    const d = a[i] - b[i];
    if (d !== 0) return d;
  }
  return al - bl;
}

/**
 * Source of the unrolled comparer body for `width` bytes. Word `k` reads bytes
 * `[o, o+4)` of both keys big-endian and returns at the first difference.
 */
function unrolledSource(width: number): string {
  const lines = [
    `if (a.length !== ${width} || b.length !== ${width}) return memcmp(a, b);`,
    "let x = 0, y = 0;",
  ];
  let o = 0;
  for (; o + 4 <= width; o += 4) {
    lines.push(
      `x = ((a[${o}] << 24) | (a[${o + 1}] << 16) | (a[${o + 2}] << 8) | a[${o + 3}]) >>> 0;`,
      `y = ((b[${o}] << 24) | (b[${o + 1}] << 16) | (b[${o + 2}] << 8) | b[${o + 3}]) >>> 0;`,
      "if (x !== y) return x < y ? -1 : 1;",
    );
  }
  if (o + 2 <= width) {
    lines.push(
      `x = (a[${o}] << 8) | a[${o + 1}];`,
      `y = (b[${o}] << 8) | b[${o + 1}];`,
      "if (x !== y) return x - y;",
    );
    o += 2;
  }
  if (o < width) lines.push(`return a[${o}] - b[${o}];`);
  else lines.push("return 0;");
  return lines.join("\n");
}

/**
 * Builds the unrolled comparer with `new Function` (straight-line code the JIT compiles to a
 * few loads and compares). Returns undefined where code generation is not allowed (a CSP,
 * say); the caller then uses the loop, which is correct, only slower.
 */
function unrolledComparer(width: number): KeyComparer | undefined {
  try {
    const make = new Function(
      "memcmp",
      `return function compareFixed${width}(a, b) {\n${unrolledSource(width)}\n};`,
    );
    return make(compareMemcmp) as KeyComparer;
  } catch {
    return undefined;
  }
}
