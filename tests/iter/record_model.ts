/**
 * Test support for the memory and iterator suites: a model of a segment (a plain Map plus a sort),
 * random key generators that stress prefix ties, and helpers that compute what a cursor must
 * yield. Not a test file itself.
 */
import { KIND_DELETE, KIND_PUT, type RecordCursor } from "../../src/iter/record.ts";
import { compareBytes } from "../../src/util/bytes.ts";
import { MutableSegment } from "../../src/memory/mutable_segment.ts";
import type { Prng } from "../../src/util/prng.ts";

/** A record as the model keeps it. */
export interface ModelRecord {
  key: Uint8Array;
  value: Uint8Array;
  opIndex: number;
  kind: number;
  expiresAt: number;
}

/** Map key for bytes. */
export function hex(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += (b[i] < 16 ? "0" : "") + b[i].toString(16);
  return s;
}

/** One segment's worth of records: newest write of each key. */
export class ModelSegment {
  readonly map = new Map<string, ModelRecord>();

  put(r: ModelRecord): void {
    this.map.set(hex(r.key), r);
  }

  get(key: Uint8Array): ModelRecord | undefined {
    return this.map.get(hex(key));
  }

  /** Records in ascending key order. */
  sorted(): ModelRecord[] {
    return [...this.map.values()].sort((a, b) => compareBytes(a.key, b.key));
  }
}

/** The newest record per key over layers given newest first, ascending. */
export function mergeModel(layers: ModelSegment[]): ModelRecord[] {
  const out = new Map<string, ModelRecord>();
  for (let i = layers.length - 1; i >= 0; i--) {
    for (const [k, r] of layers[i].map) out.set(k, r);
  }
  return [...out.values()].sort((a, b) => compareBytes(a.key, b.key));
}

/**
 * Index in ascending `sorted` where a cursor lands after seek(target, exclusive), or -1 / length
 * when it is exhausted. Reverse: last key <= target (< with exclusive).
 */
export function seekIndex(
  sorted: ModelRecord[],
  target: Uint8Array | undefined,
  exclusive: boolean,
  reverse: boolean,
): number {
  if (target === undefined) return reverse ? sorted.length - 1 : 0;
  if (!reverse) {
    let i = 0;
    while (i < sorted.length) {
      const c = compareBytes(sorted[i].key, target);
      if (c > 0 || (c === 0 && !exclusive)) break;
      i++;
    }
    return i;
  }
  let i = sorted.length - 1;
  while (i >= 0) {
    const c = compareBytes(sorted[i].key, target);
    if (c < 0 || (c === 0 && !exclusive)) break;
    i--;
  }
  return i;
}

/**
 * Seeks a new cursor of `seg` to `target` and steps it up to `steps` times; returns what it
 * showed and what the model `sorted` says it should have (compare the two). The validity that
 * `seek` returned is the first line of both.
 */
export function seekAndStep(
  seg: { cursor(reverse: boolean): RecordCursor },
  sorted: ModelRecord[],
  target: Uint8Array | undefined,
  exclusive: boolean,
  reverse: boolean,
  steps: number,
  end?: { key: Uint8Array; inclusive: boolean },
): { got: string[]; want: string[] } {
  const c = seg.cursor(reverse);
  // A cursor that takes the end must then never be valid past it; one that does not is checked
  // as the range cursor would (records past the end are left out of what it returned).
  const limited = end !== undefined && c.limitEnd?.(end.key, end.inclusive) === true;
  const valid = c.seek(target, exclusive);
  const at = seekIndex(sorted, target, exclusive, reverse);
  let want = reverse ? sorted.slice(Math.max(0, at - steps), at + 1).reverse() : sorted.slice(at, at + steps + 1);
  let got = drain(c, true, steps + 1);
  if (end !== undefined) {
    const inside = (key: Uint8Array) => {
      const d = compareBytes(key, end.key);
      return (reverse ? d > 0 : d < 0) || (d === 0 && end.inclusive);
    };
    const cut = want.findIndex((r) => !inside(r.key));
    if (cut >= 0) want = want.slice(0, cut);
    if (!limited) got = got.slice(0, want.length);
  }
  return {
    got: [`valid ${limited || end === undefined ? valid : want.length > 0}`, ...got],
    want: [`valid ${want.length > 0}`, ...want.map(show)],
  };
}

/**
 * A random key. Mixes shapes that stress the B+tree prefix cache: random 16-byte keys, short keys
 * over a tiny alphabet (0x00, 0x01, 0xff: embedded zeros, prefixes of each other, the empty key),
 * and keys sharing a 10- or 26-byte prefix (longer than the inline key bytes: comparer fallback).
 */
export function randomKey(rng: Prng): Uint8Array {
  const shape = rng.int(3);
  if (shape === 0) return rng.bytes(16);
  if (shape === 1) {
    const n = rng.int(11);
    const k = new Uint8Array(n);
    for (let i = 0; i < n; i++) k[i] = rng.pick([0, 1, 0xff]);
    return k;
  }
  const shared = rng.pick([10, 26]);
  const k = new Uint8Array(shared + rng.int(4));
  k.fill(7, 0, shared);
  for (let i = shared; i < k.length; i++) k[i] = rng.int(3);
  return k;
}

/** A pool of distinct random keys (so that tests hit existing keys often). */
export function keyPool(rng: Prng, n: number): Uint8Array[] {
  const seen = new Set<string>();
  const out: Uint8Array[] = [];
  for (let guard = 0; out.length < n && guard < n * 20; guard++) {
    const k = randomKey(rng);
    if (seen.has(hex(k))) continue;
    seen.add(hex(k));
    out.push(k);
  }
  return out;
}

/** A random record for `key`: a put (often with expiry) or a deletion marker. */
export function randomRecord(rng: Prng, key: Uint8Array, opIndex: number, now = 1000): ModelRecord {
  const kind = rng.int(5) === 0 ? KIND_DELETE : KIND_PUT;
  const value = kind === KIND_DELETE ? new Uint8Array(0) : rng.bytes(rng.int(6));
  const expiresAt = rng.int(3) === 0 ? now - 50 + rng.int(100) : 0;
  return { key, value, opIndex, kind, expiresAt };
}

/** A short printable form of a cursor's or model's record, for readable failures. */
export function show(r: ModelRecord | RecordCursor | undefined): string {
  if (r === undefined) return "(end)";
  // A cursor's copy of its value must equal the value and be its own.
  if ("copyValue" in r && r.valid) {
    const copy = r.copyValue();
    if (hex(copy) !== hex(r.value)) return `copyValue ${hex(copy)} != value ${hex(r.value)}`;
    if (copy.length > 0) {
      const before = hex(r.value);
      copy[0] ^= 0xff;
      if (hex(r.value) !== before) return "copyValue aliases the value";
    }
  }
  return `${hex(r.key)}=${hex(r.value)}@${r.opIndex}/${r.kind}/${r.expiresAt}`;
}

/** Drains a cursor (after an optional seek) into printable records, bounded by `max`. */
export function drain(c: RecordCursor, first: boolean, max = 1_000_000): string[] {
  const out: string[] = [];
  if (first && c.valid) out.push(show(c));
  while (out.length < max && c.next()) out.push(show(c));
  return out;
}

/** Integer seeds for a randomized suite: SEED env var reproduces one, else `count` fixed ones. */
export function seeds(count: number, base: number): number[] {
  const env = typeof process !== "undefined" ? process.env.SEED : undefined;
  if (env !== undefined) return [Number(env)];
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(base + i);
  return out;
}

/** `layers` random segments (newest first) over a shared key pool, plus their models. */
export function randomLayers(rng: Prng, layerCount: number, freeze = true) {
  const pool = keyPool(rng, 1 + rng.int(400));
  const segs: MutableSegment[] = [];
  const models: ModelSegment[] = [];
  let op = 1;
  // Oldest layer first, so that newer layers get higher opIndexes, as in a real tree.
  for (let l = layerCount - 1; l >= 0; l--) {
    const seg = new MutableSegment(l, compareBytes, {
      fanout: rng.pick([4, 8, 64]),
      inlineKeyBytes: rng.pick([4, 12, 24]),
    });
    const model = new ModelSegment();
    const n = rng.int(300);
    for (let i = 0; i < n; i++) {
      const r = randomRecord(rng, rng.pick(pool), op++);
      seg.put(r.key, r.value, r.opIndex, r.kind, r.expiresAt);
      model.put(r);
    }
    if (freeze) seg.freeze();
    segs[l] = seg;
    models[l] = model;
  }
  return { segs, models, pool };
}
