import { describe, expect, test } from "bun:test";
import { KIND_PUT } from "../../src/iter/record.ts";
import { HEAP_MIN_CHILDREN, MergingCursor } from "../../src/iter/merging_cursor.ts";
import { MutableSegment } from "../../src/memory/mutable_segment.ts";
import { compareBytes } from "../../src/util/bytes.ts";
import { Prng } from "../../src/util/prng.ts";
import {
  drain,
  hex,
  mergeModel,
  ModelSegment,
  randomKey,
  randomLayers,
  randomRecord,
  seeds,
  seekIndex,
  show,
} from "./record_model.ts";

function merging(segs: MutableSegment[], reverse: boolean): MergingCursor {
  const children = [];
  for (const s of segs) children.push(s.cursor(reverse));
  return new MergingCursor(children, reverse, compareBytes);
}

/**
 * Both directions: a full drain equals the merged model, then `seeks` random seeks (targets
 * from `target()`, exclusive or not) each followed by up to `maxSteps` steps match it too.
 */
function expectMatchesModel(
  segs: MutableSegment[],
  sorted: ReturnType<typeof mergeModel>,
  rng: Prng,
  seeks: number,
  target: () => Uint8Array | undefined,
  maxSteps: number,
): void {
  for (const reverse of [false, true]) {
    const all = sorted.map(show);
    if (reverse) all.reverse();
    expect(drain(merging(segs, reverse), false)).toEqual(all);
    const c = merging(segs, reverse);
    for (let i = 0; i < seeks; i++) {
      const t = target();
      const exclusive = rng.int(2) === 0;
      const at = seekIndex(sorted, t, exclusive, reverse);
      const steps = rng.int(maxSteps);
      const want = reverse
        ? sorted.slice(Math.max(0, at - steps), at + 1).reverse()
        : sorted.slice(at, at + steps + 1);
      expect(c.seek(t, exclusive)).toBe(want.length > 0);
      expect(drain(c, true, steps + 1)).toEqual(want.map(show));
    }
    c.close();
  }
}

describe("MergingCursor model", () => {
  for (const seed of seeds(40, 300)) {
    const layerCount = 1 + (seed % 8);
    test(`yields the newest record per key over ${layerCount} layers (seed ${seed})`, () => {
      const rng = new Prng(seed);
      const { segs, models, pool } = randomLayers(rng, layerCount);
      const target = () =>
        rng.int(10) === 0 ? undefined : rng.int(2) === 0 ? rng.pick(pool) : randomKey(rng);
      expectMatchesModel(segs, mergeModel(models), rng, 60, target, 15);
    });
  }

  for (const seed of seeds(12, 900)) {
    const layerCount = 2 + (seed % 6);
    test(`time-sliced layers: long disjoint runs with shadowed keys at their edges (seed ${seed}, ${layerCount} layers)`, () => {
      // Layer l holds, for each of a few "sensors", the readings of time slice l (newest layer
      // last slice), so a sensor's range is one run per layer; some readings of the slice
      // before are written again (overwrites across layers, at the runs' edges and inside).
      const rng = new Prng(seed);
      const sensors = 1 + rng.int(5);
      const slice = 1 + rng.int(40);
      const key = (s: number, t: number) => Uint8Array.of(s, t >> 8, t & 255);
      const segs: MutableSegment[] = [];
      const models: ModelSegment[] = [];
      let op = 1;
      for (let l = layerCount - 1; l >= 0; l--) {
        const seg = new MutableSegment(l, compareBytes, { fanout: rng.pick([4, 64]) });
        const model = new ModelSegment();
        const age = layerCount - 1 - l;
        for (let s = 0; s < sensors; s++) {
          const from = age * slice - (age > 0 ? rng.int(3) : 0);
          for (let t = Math.max(0, from); t < (age + 1) * slice; t++) {
            if (rng.int(8) === 0) continue; // gaps
            const r = randomRecord(rng, key(s, t), op++);
            seg.put(r.key, r.value, r.opIndex, r.kind, r.expiresAt);
            model.put(r);
          }
        }
        seg.freeze();
        segs[l] = seg;
        models[l] = model;
      }
      const target = () => key(rng.int(sensors + 1), rng.int(layerCount * slice + 2));
      expectMatchesModel(segs, mergeModel(models), rng, 40, target, 3 * slice);
    });
  }

  for (const seed of seeds(24, 1300)) {
    const layerCount = 1 + (seed % 8);
    test(`limitEnd: the stream stops at the end, each seek restarting with every layer (seed ${seed}, ${layerCount} layers)`, () => {
      // The merge drops a layer once it is past the end; what it yields must still be exactly
      // the merged records between the seek target and the end, in both directions, and a
      // later seek (with another end) must see every layer again.
      const rng = new Prng(seed);
      const { segs, models, pool } = randomLayers(rng, layerCount);
      const sorted = mergeModel(models);
      const pickKey = () => (rng.int(2) === 0 ? rng.pick(pool) : randomKey(rng));
      for (const reverse of [false, true]) {
        const c = merging(segs, reverse);
        for (let i = 0; i < 40; i++) {
          const end = pickKey();
          const inclusive = rng.int(2) === 0;
          expect(c.limitEnd(end, inclusive)).toBe(true);
          const t = rng.int(8) === 0 ? undefined : pickKey();
          const exclusive = rng.int(2) === 0;
          const at = seekIndex(sorted, t, exclusive, reverse);
          const want: string[] = [];
          for (let j = at; j >= 0 && j < sorted.length; j += reverse ? -1 : 1) {
            const d = compareBytes(sorted[j].key, end) * (reverse ? -1 : 1);
            if (d > 0 || (d === 0 && !inclusive)) break;
            want.push(show(sorted[j]));
          }
          expect(c.seek(t, exclusive)).toBe(want.length > 0);
          expect(drain(c, true)).toEqual(want);
          expect(c.valid).toBe(false);
        }
        c.close();
      }
    });
  }

  test("uses the heap from HEAP_MIN_CHILDREN children and the sorted order below (both covered)", () => {
    expect(HEAP_MIN_CHILDREN).toBeGreaterThan(1);
    expect(HEAP_MIN_CHILDREN).toBeLessThanOrEqual(8);
  });

  test("close() closes every child and is idempotent", () => {
    let closed = 0;
    const segs = [new MutableSegment(1, compareBytes), new MutableSegment(2, compareBytes)];
    const children = segs.map((s) => {
      const c = s.cursor(false);
      const close = c.close.bind(c);
      c.close = () => {
        closed++;
        close();
      };
      return c;
    });
    const m = new MergingCursor(children, false, compareBytes);
    m.close();
    m.close();
    expect(closed).toBe(2);
    expect(m.valid).toBe(false);
  });

  test("no children yields nothing", () => {
    const m = new MergingCursor([], true, compareBytes);
    expect(m.next()).toBe(false);
    expect(m.seek(new Uint8Array([1]))).toBe(false);
  });
});

describe("MergingCursor over a writable newest layer", () => {
  for (const seed of seeds(16, 400)) {
    const layerCount = 1 + (seed % 8);
    test(`stays ordered and loses no old key while records are inserted (seed ${seed}, ${layerCount} layers)`, () => {
      const rng = new Prng(seed);
      const { segs, models, pool } = randomLayers(rng, layerCount, false);
      for (let l = 1; l < segs.length; l++) segs[l].freeze();
      for (const reverse of [false, true]) {
        const before = new Set(mergeModel(models).map((r) => hex(r.key)));
        const c = merging(segs, reverse);
        const seen: string[] = [];
        let last: Uint8Array | undefined;
        let op = 100_000;
        for (let step = 0; step < 3000; step++) {
          if (rng.int(3) === 0) {
            const key = rng.int(2) === 0 ? rng.pick(pool) : randomKey(rng);
            const r = randomRecord(rng, key, op++);
            segs[0].put(r.key, r.value, r.opIndex, r.kind, r.expiresAt);
            models[0].put(r);
            continue;
          }
          if (!c.next()) break;
          if (last !== undefined) {
            const d = compareBytes(c.key, last);
            expect(reverse ? d < 0 : d > 0).toBe(true);
          }
          last = c.key.slice();
          seen.push(hex(c.key));
        }
        if (c.valid) continue; // stopped by the step bound: the completeness check needs the end
        const seenSet = new Set(seen);
        for (const k of before) expect(seenSet.has(k)).toBe(true);
        // Keys inserted in the newest layer ahead of every child's position are seen: a key
        // inserted after the end was reached is not, so only check that every seen key exists.
        const after = new Set(mergeModel(models).map((r) => hex(r.key)));
        for (const k of seen) expect(after.has(k)).toBe(true);
      }
    });
  }
});

describe("MergingCursor auto-refresh", () => {
  test("sees a key inserted into the writable layer beyond every child's position", () => {
    const key = (n: number) => new Uint8Array([n]);
    const live = new MutableSegment(0, compareBytes);
    const old = new MutableSegment(1, compareBytes);
    for (const n of [10, 30]) live.put(key(n), key(n), n, KIND_PUT, 0);
    for (const n of [20, 40]) old.put(key(n), key(n), n, KIND_PUT, 0);
    old.freeze();
    for (const reverse of [false, true]) {
      const c = merging([live, old], reverse);
      expect(c.next()).toBe(true);
      const first = c.key[0];
      live.put(key(reverse ? 5 : 50), key(1), 99, KIND_PUT, 0);
      live.put(key(first), key(2), 100, KIND_PUT, 0); // overwrite of the current key
      const got = [first];
      while (c.next()) got.push(c.key[0]);
      expect(got).toEqual(reverse ? [50, 40, 30, 20, 10, 5] : [10, 20, 30, 40, 50]);
    }
  });
});
