/**
 * Turns the bounds of API.md §4 (`gte`, `gt`, `lte`, `lt`, `prefix`; each a full key or a prefix)
 * into byte bounds on encoded keys. A prefix P stands for "every key that starts with P":
 *
 *   gte P → key >= P              gt P → key >= succ(P)   (past every key with P)
 *   lte P → key <  succ(P)        lt P → key <  P
 *   prefix P → P <= key < succ(P)
 *
 * where succ(P) is the smallest byte string above every string starting with P. Several bounds
 * on one side combine to the tightest.
 *
 * @module
 */
import { compareBytes, prefixSuccessor } from "../util/bytes.ts";

/** One side of a range on encoded keys. */
export interface ByteBound {
  key: Uint8Array;
  inclusive: boolean;
}

/** A range on encoded keys; `empty` when no key can be inside. */
export interface ByteRange {
  lower: ByteBound | undefined;
  upper: ByteBound | undefined;
  empty: boolean;
}

/** An encoded bound: the bytes and whether every field was given (a full key). */
export interface EncodedBound {
  bytes: Uint8Array;
  complete: boolean;
}

/** The user-facing bounds, already encoded. */
export interface EncodedBounds {
  gte?: EncodedBound;
  gt?: EncodedBound;
  lte?: EncodedBound;
  lt?: EncodedBound;
  prefix?: EncodedBound;
}

/** The tighter of lower bound `a` and `key` (inclusive or not). */
function tighterLower(a: ByteBound | undefined, key: Uint8Array, inclusive: boolean): ByteBound {
  if (!a) return { key, inclusive };
  const c = compareBytes(a.key, key);
  if (c !== 0) return c > 0 ? a : { key, inclusive };
  return a.inclusive ? { key, inclusive } : a;
}

/** The tighter of upper bound `a` and `key` (inclusive or not). */
function tighterUpper(a: ByteBound | undefined, key: Uint8Array, inclusive: boolean): ByteBound {
  if (!a) return { key, inclusive };
  const c = compareBytes(a.key, key);
  if (c !== 0) return c < 0 ? a : { key, inclusive };
  return a.inclusive ? { key, inclusive } : a;
}

/**
 * Combines encoded bounds into one byte range. Runs once per range query, so without closures:
 * a process's first queries run it unoptimized, where making and calling two closures showed
 * as ~10% of a cold pass of latest-100 queries.
 */
export function resolveBounds(b: EncodedBounds): ByteRange {
  let lower: ByteBound | undefined;
  let upper: ByteBound | undefined;
  let empty = false;
  if (b.gte) lower = { key: b.gte.bytes, inclusive: true };
  if (b.gt) {
    if (b.gt.complete) lower = tighterLower(lower, b.gt.bytes, false);
    else {
      const succ = prefixSuccessor(b.gt.bytes);
      if (succ) lower = tighterLower(lower, succ, true);
      else empty = true;
    }
  }
  if (b.lte) {
    if (b.lte.complete) upper = { key: b.lte.bytes, inclusive: true };
    else {
      const succ = prefixSuccessor(b.lte.bytes);
      if (succ) upper = { key: succ, inclusive: false };
    }
  }
  if (b.lt) upper = tighterUpper(upper, b.lt.bytes, false);
  if (b.prefix) {
    lower = tighterLower(lower, b.prefix.bytes, true);
    const succ = prefixSuccessor(b.prefix.bytes);
    if (succ) upper = tighterUpper(upper, succ, false);
  }
  if (lower && upper) {
    const c = compareBytes(lower.key, upper.key);
    if (c > 0 || (c === 0 && !(lower.inclusive && upper.inclusive))) empty = true;
  }
  return { lower, upper, empty };
}

/** Whether `key` lies inside `range` (ignores `empty`). */
export function inRange(key: Uint8Array, range: ByteRange): boolean {
  if (range.lower) {
    const c = compareBytes(key, range.lower.key);
    if (c < 0 || (c === 0 && !range.lower.inclusive)) return false;
  }
  if (range.upper) {
    const c = compareBytes(key, range.upper.key);
    if (c > 0 || (c === 0 && !range.upper.inclusive)) return false;
  }
  return true;
}
