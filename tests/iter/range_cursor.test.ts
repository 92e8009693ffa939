import { describe, expect, test } from "bun:test";
import { MergingCursor } from "../../src/iter/merging_cursor.ts";
import { type Bound, RangeCursor, type RangeOptions } from "../../src/iter/range_cursor.ts";
import { KIND_DELETE, KIND_PUT } from "../../src/iter/record.ts";
import { MutableSegment } from "../../src/memory/mutable_segment.ts";
import { compareBytes, prefixSuccessor } from "../../src/util/bytes.ts";
import { Prng } from "../../src/util/prng.ts";
import {
  drain,
  mergeModel,
  type ModelRecord,
  randomKey,
  randomLayers,
  seeds,
  show,
} from "./record_model.ts";

const NOW = 1000;

function rangeOver(segs: MutableSegment[], reverse: boolean, options: RangeOptions) {
  const children = [];
  for (const s of segs) children.push(s.cursor(reverse));
  return new RangeCursor(new MergingCursor(children, reverse, compareBytes), compareBytes, options);
}

function inBounds(key: Uint8Array, lower?: Bound, upper?: Bound): boolean {
  if (lower !== undefined) {
    const c = compareBytes(key, lower.key);
    if (c < 0 || (c === 0 && !lower.inclusive)) return false;
  }
  if (upper !== undefined) {
    const c = compareBytes(key, upper.key);
    if (c > 0 || (c === 0 && !upper.inclusive)) return false;
  }
  return true;
}

/** What the range must yield after seek(target, exclusive), in cursor order. */
function expected(
  sorted: ModelRecord[],
  o: RangeOptions,
  reverse: boolean,
  now: number,
  target?: Uint8Array,
  exclusive = false,
): string[] {
  const out: string[] = [];
  const ordered = reverse ? sorted.slice().reverse() : sorted;
  for (const r of ordered) {
    if (out.length >= (o.limit ?? Infinity)) break;
    if (!inBounds(r.key, o.lower, o.upper)) continue;
    if (target !== undefined) {
      const c = compareBytes(r.key, target) * (reverse ? -1 : 1);
      if (c < 0 || (c === 0 && exclusive)) continue;
    }
    if (r.kind === KIND_DELETE && !o.includeDeleted) continue;
    if (r.expiresAt !== 0 && r.expiresAt <= now) continue;
    out.push(show(r));
  }
  return out;
}

function randomBound(rng: Prng, pool: Uint8Array[]): Bound | undefined {
  if (rng.int(4) === 0) return undefined;
  return { key: rng.int(2) === 0 ? rng.pick(pool) : randomKey(rng), inclusive: rng.int(2) === 0 };
}

describe("RangeCursor model", () => {
  for (const seed of seeds(40, 500)) {
    test(`yields visible records within random bounds and limits (seed ${seed})`, () => {
      const rng = new Prng(seed);
      const { segs, models, pool } = randomLayers(rng, 1 + rng.int(6));
      const sorted = mergeModel(models);
      for (let round = 0; round < 30; round++) {
        const reverse = rng.int(2) === 0;
        const options: RangeOptions = {
          lower: randomBound(rng, pool),
          upper: randomBound(rng, pool),
          limit: rng.int(3) === 0 ? rng.int(20) : undefined,
          includeDeleted: rng.int(3) === 0,
          now: NOW - 60 + rng.int(120),
        };
        const now = options.now as number;
        const c = rangeOver(segs, reverse, options);
        expect(drain(c, false)).toEqual(expected(sorted, options, reverse, now));
        for (let i = 0; i < 5; i++) {
          const target = rng.int(8) === 0
            ? undefined
            : rng.int(2) === 0
            ? rng.pick(pool)
            : randomKey(rng);
          const exclusive = rng.int(2) === 0;
          const want = expected(sorted, options, reverse, now, target, exclusive);
          expect(c.seek(target, exclusive)).toBe(want.length > 0);
          expect(drain(c, true)).toEqual(want);
        }
        c.close();
      }
    });
  }

  test("a prefix turned into bounds yields exactly the keys with that prefix", () => {
    const seg = new MutableSegment(1, compareBytes);
    const keys = [[1], [1, 0], [1, 255], [1, 255, 255], [2], [0, 255], [1, 2, 3]];
    for (const k of keys) seg.put(new Uint8Array(k), new Uint8Array(0), 1, KIND_PUT, 0);
    const p = new Uint8Array([1]);
    const options = {
      lower: { key: p, inclusive: true },
      upper: { key: prefixSuccessor(p) as Uint8Array, inclusive: false },
    };
    for (const reverse of [false, true]) {
      const got: string[] = [];
      const c = rangeOver([seg], reverse, options);
      while (c.next()) got.push(Array.from(c.key).join("."));
      const want = ["1", "1.0", "1.2.3", "1.255", "1.255.255"];
      expect(got).toEqual(reverse ? want.reverse() : want);
    }
  });

  test("a clock function hides records that expire while the cursor is open", () => {
    const seg = new MutableSegment(1, compareBytes);
    for (let i = 0; i < 10; i++) {
      seg.put(new Uint8Array([i]), new Uint8Array([i]), i, KIND_PUT, 20 + i * 10);
    }
    let now = 0;
    let calls = 0;
    const clock = () => {
      calls++;
      return now;
    };
    const c = rangeOver([seg], false, { now: clock });
    const got: number[] = [];
    while (c.next()) {
      got.push(c.key[0]);
      now += 25; // records expire while the cursor walks
    }
    expect(got).toEqual([0, 1, 4, 6, 9]);
    expect(calls).toBeLessThanOrEqual(20);
  });

  test("seek clamps a target outside the bounds to the bound", () => {
    const seg = new MutableSegment(1, compareBytes);
    for (let i = 0; i < 10; i++) seg.put(new Uint8Array([i]), new Uint8Array(0), i, KIND_PUT, 0);
    const options = {
      lower: { key: new Uint8Array([3]), inclusive: false },
      upper: { key: new Uint8Array([7]), inclusive: true },
    };
    const fwd = rangeOver([seg], false, options);
    expect(fwd.seek(new Uint8Array([0]))).toBe(true);
    expect(fwd.key[0]).toBe(4);
    expect(fwd.seek(new Uint8Array([3]))).toBe(true);
    expect(fwd.key[0]).toBe(4);
    expect(fwd.seek(new Uint8Array([9]))).toBe(false);
    const rev = rangeOver([seg], true, options);
    expect(rev.seek(new Uint8Array([200]))).toBe(true);
    expect(rev.key[0]).toBe(7);
    expect(rev.seek(new Uint8Array([7]), true)).toBe(true);
    expect(rev.key[0]).toBe(6);
    expect(rev.seek(new Uint8Array([3]))).toBe(false);
  });

  test("limit 0 yields nothing and limit counts again after a seek", () => {
    const seg = new MutableSegment(1, compareBytes);
    for (let i = 0; i < 10; i++) seg.put(new Uint8Array([i]), new Uint8Array(0), i, KIND_PUT, 0);
    expect(rangeOver([seg], false, { limit: 0 }).next()).toBe(false);
    const c = rangeOver([seg], false, { limit: 2 });
    expect(drain(c, false).length).toBe(2);
    expect(c.seek(new Uint8Array([5]))).toBe(true);
    expect(drain(c, true).length).toBe(2);
  });
});

describe("RangeCursor over a writable segment", () => {
  test("sees in-bounds keys inserted ahead of it and never leaves the bounds", () => {
    const seg = new MutableSegment(1, compareBytes);
    for (let i = 0; i < 100; i += 10) {
      seg.put(new Uint8Array([i]), new Uint8Array(0), i, KIND_PUT, 0);
    }
    const c = rangeOver([seg], false, {
      lower: { key: new Uint8Array([15]), inclusive: true },
      upper: { key: new Uint8Array([60]), inclusive: false },
    });
    const got: number[] = [];
    while (c.next()) {
      got.push(c.key[0]);
      if (c.key[0] === 20) {
        seg.put(new Uint8Array([25]), new Uint8Array(0), 200, KIND_PUT, 0); // ahead: seen
        seg.put(new Uint8Array([18]), new Uint8Array(0), 201, KIND_PUT, 0); // behind: not seen
        seg.put(new Uint8Array([65]), new Uint8Array(0), 202, KIND_PUT, 0); // out of bounds
        seg.put(new Uint8Array([40]), new Uint8Array(0), 203, KIND_DELETE, 0); // now deleted
      }
    }
    expect(got).toEqual([20, 25, 30, 50]);
  });
});

describe("limit", () => {
  test("once the limit is reached the inner cursor is not stepped again", () => {
    const seg = new MutableSegment(1, compareBytes);
    for (let i = 0; i < 50; i++) seg.put(Uint8Array.of(i), Uint8Array.of(i), i + 1, KIND_PUT, 0);
    seg.freeze();
    for (const reverse of [false, true]) {
      for (const limit of [0, 1, 3, 49, 50, 60]) {
        const inner = seg.cursor(reverse);
        let steps = 0;
        const next = inner.next.bind(inner);
        inner.next = () => (steps++, next());
        const c = new RangeCursor(inner, compareBytes, { limit });
        let n = 0;
        for (let ok = c.seek(undefined); ok; ok = c.next()) n++;
        expect(n).toBe(Math.min(limit, 50));
        // Each record after the first needs one step; past the last record, one more finds the
        // end (limit 60). Reaching the limit needs none.
        expect(steps).toBe(limit > 50 ? 50 : Math.max(0, limit - 1));
        expect(c.next()).toBe(false);
        expect(steps).toBe(limit > 50 ? 50 : Math.max(0, limit - 1));
      }
    }
  });
});
