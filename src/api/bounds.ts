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

function tighterLower(a: ByteBound | undefined, b: ByteBound): ByteBound {
  if (!a) return b;
  const c = compareBytes(a.key, b.key);
  if (c !== 0) return c > 0 ? a : b;
  return a.inclusive ? b : a;
}

function tighterUpper(a: ByteBound | undefined, b: ByteBound): ByteBound {
  if (!a) return b;
  const c = compareBytes(a.key, b.key);
  if (c !== 0) return c < 0 ? a : b;
  return a.inclusive ? b : a;
}

/** Combines encoded bounds into one byte range. */
export function resolveBounds(b: EncodedBounds): ByteRange {
  let lower: ByteBound | undefined;
  let upper: ByteBound | undefined;
  let empty = false;
  const addLower = (bound: ByteBound) => (lower = tighterLower(lower, bound));
  const addUpper = (bound: ByteBound) => (upper = tighterUpper(upper, bound));
  if (b.gte) addLower({ key: b.gte.bytes, inclusive: true });
  if (b.gt) {
    if (b.gt.complete) addLower({ key: b.gt.bytes, inclusive: false });
    else {
      const succ = prefixSuccessor(b.gt.bytes);
      if (succ) addLower({ key: succ, inclusive: true });
      else empty = true;
    }
  }
  if (b.lte) {
    if (b.lte.complete) addUpper({ key: b.lte.bytes, inclusive: true });
    else {
      const succ = prefixSuccessor(b.lte.bytes);
      if (succ) addUpper({ key: succ, inclusive: false });
    }
  }
  if (b.lt) addUpper({ key: b.lt.bytes, inclusive: false });
  if (b.prefix) {
    addLower({ key: b.prefix.bytes, inclusive: true });
    const succ = prefixSuccessor(b.prefix.bytes);
    if (succ) addUpper({ key: succ, inclusive: false });
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
