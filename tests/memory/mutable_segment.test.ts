import { describe, expect, test } from "bun:test";
import { KIND_DELETE, KIND_PUT, newSlot } from "../../src/iter/record.ts";
import {
  MutableSegment,
  type MutableSegmentTuning,
  RECORD_OVERHEAD_BYTES,
} from "../../src/memory/mutable_segment.ts";
import { BPlusTree } from "../../src/memory/bplus_tree.ts";
import { AssertionError } from "../../src/util/assert.ts";
import { compareBytes } from "../../src/util/bytes.ts";
import { Prng } from "../../src/util/prng.ts";
import {
  drain,
  hex,
  keyPool,
  ModelSegment,
  randomKey,
  randomRecord,
  seekAndStep,
  seeds,
  seekIndex,
  show,
} from "../iter/record_model.ts";

/** B+tree shapes: deep trees with comparer fallbacks, and the default. */
const SHAPES = [
  { fanout: 4, inlineKeyBytes: 4 },
  { fanout: 6, inlineKeyBytes: 8 },
  { fanout: 64, inlineKeyBytes: 24 },
];
const shapeName = (s: MutableSegmentTuning) => `fanout ${s.fanout}, inline ${s.inlineKeyBytes}`;

/**
 * Value sizes: "small" (0-5 bytes), or a third of the puts 17-46 bytes after a first value that
 * is small ("mixed") or not ("large first").
 */
type Values = "small" | "mixed" | "large first";

/** Every B+tree shape with `seeds(12, base)`, the value sizes taken in turn. */
function modelCases(base: number): { shape: MutableSegmentTuning; seed: number; values: Values }[] {
  const sizes: Values[] = ["small", "mixed", "large first"];
  return SHAPES.flatMap((shape) => seeds(12, base).map((seed, i) => ({ shape, seed, values: sizes[i % 3] })));
}

function build(rng: Prng, shape: MutableSegmentTuning, ops: number, values: Values = "small") {
  const seg = new MutableSegment(1, compareBytes, shape);
  const model = new ModelSegment();
  const pool = keyPool(rng, 1 + rng.int(ops));
  for (let op = 1; op <= ops; op++) {
    const key = rng.int(4) === 0 ? randomKey(rng) : rng.pick(pool);
    const r = randomRecord(rng, key, op);
    if (values !== "small" && r.kind === KIND_PUT) {
      if (op === 1 ? values === "large first" : rng.int(3) === 0) r.value = rng.bytes(17 + rng.int(30));
    }
    seg.put(r.key, r.value, r.opIndex, r.kind, r.expiresAt);
    model.put(r);
  }
  return { seg, model, pool };
}

describe("MutableSegment model", () => {
  for (const { shape, seed, values } of modelCases(100)) {
    test(`get and cursors match the model (seed ${seed}, ${shapeName(shape)}, ${values} values)`, () => {
      const rng = new Prng(seed);
      const { seg, model, pool } = build(rng, shape, 1 + rng.int(2000), values);
      const sorted = model.sorted();
      expect(seg.recordCount).toBe(sorted.length);
      const out = newSlot();
      for (let i = 0; i < 300; i++) {
        const key = rng.int(2) === 0 ? rng.pick(pool) : randomKey(rng);
        const m = model.get(key);
        const found = seg.get(key, out);
        expect(found ? show(out) : "(absent)").toBe(m ? show(m) : "(absent)");
      }
      for (const reverse of [false, true]) {
        const all = sorted.map(show);
        if (reverse) all.reverse();
        expect(drain(seg.cursor(reverse), false)).toEqual(all);
        for (let i = 0; i < 40; i++) {
          const target = rng.int(10) === 0
            ? undefined
            : rng.int(2) === 0
            ? rng.pick(pool)
            : randomKey(rng);
          const r = seekAndStep(seg, sorted, target, rng.int(2) === 0, reverse, rng.int(20));
          expect(r.got).toEqual(r.want);
        }
      }
    });
  }
});

describe("MutableSegment cursor auto-refresh", () => {
  for (const { shape, seed, values } of modelCases(200)) {
    test(`cursor continues after its last key when records are inserted (seed ${seed}, ${shapeName(shape)}, ${values} values)`, () => {
      const rng = new Prng(seed);
      const { seg, model, pool } = build(rng, shape, rng.int(300), values);
      for (const reverse of [false, true]) {
        const c = seg.cursor(reverse);
        let last: Uint8Array | undefined;
        let op = 10_000;
        // Bounded: each iteration either inserts or advances; 5000 steps is plenty.
        for (let step = 0; step < 5000; step++) {
          const action = rng.int(3);
          if (action === 0 || last === undefined && step === 0) {
            const key = rng.int(3) === 0 ? rng.pick(pool) : randomKey(rng);
            // Sometimes overwrite the key the cursor is on.
            const k = last !== undefined && rng.int(8) === 0 ? last : key;
            const r = randomRecord(rng, k, op++);
            if (values !== "small" && r.kind === KIND_PUT && rng.int(3) === 0) {
              r.value = rng.bytes(17 + rng.int(30));
            }
            seg.put(r.key, r.value, r.opIndex, r.kind, r.expiresAt);
            model.put(r);
            continue;
          }
          const sorted = model.sorted();
          const at = last === undefined
            ? seekIndex(sorted, undefined, false, reverse)
            : seekIndex(sorted, last, true, reverse);
          const want = sorted[at];
          const ok = c.next();
          expect(ok ? show(c) : "(end)").toBe(show(want));
          if (!ok) break;
          last = c.key.slice();
        }
      }
    });
  }
});

describe("B+tree leaf fill", () => {
  /** Leaf fill after `put` of every key of `keys`, in order, at fanout 64. */
  function fill(keys: Uint8Array[]): number {
    const tree = new BPlusTree(compareBytes, 64, 24);
    keys.forEach((k, i) => tree.upsert(k, k, i + 1, KIND_PUT, 0));
    return tree.size / (tree.leafCount() * 64);
  }
  const sensorKey = (sensor: number, t: number) => {
    const k = new Uint8Array(12);
    new DataView(k.buffer).setUint32(0, sensor);
    new DataView(k.buffer).setUint32(8, t);
    return k;
  };

  test("readings that arrive time-first but sort sensor-first fill leaves (runs of appends mid-tree)", () => {
    const keys: Uint8Array[] = [];
    for (let t = 0; t < 400; t++) for (let s = 0; s < 50; s++) keys.push(sensorKey(s, t));
    // Half splits left these leaves 66% full; splitting at a run's end gives 87% (the leaves
    // split while each still held several sensors stay as they were).
    expect(fill(keys)).toBeGreaterThan(0.8);
  });

  test("ascending and descending keys fill leaves; random keys stay near the half-split fill", () => {
    const asc = Array.from({ length: 20_000 }, (_, i) => sensorKey(0, i));
    expect(fill(asc)).toBeGreaterThan(0.95);
    expect(fill(asc.slice().reverse())).toBeGreaterThan(0.95);
    const prng = new Prng(5);
    const random = asc.slice();
    for (let i = random.length - 1; i > 0; i--) {
      const j = prng.int(i + 1);
      [random[i], random[j]] = [random[j], random[i]];
    }
    const f = fill(random);
    expect(f).toBeGreaterThan(0.6);
    expect(f).toBeLessThan(0.8);
  });
});

describe("MutableSegment workloads", () => {
  test("ascending, descending and sensor-interleaved keys come back in order", () => {
    for (const shape of SHAPES) {
      const asc = new MutableSegment(1, compareBytes, shape);
      const desc = new MutableSegment(2, compareBytes, shape);
      const sensors = new MutableSegment(3, compareBytes, shape);
      const n = 5000;
      const expected: string[] = [];
      for (let i = 0; i < n; i++) {
        const k = new Uint8Array(8);
        new DataView(k.buffer).setUint32(4, i);
        asc.put(k, k, i, KIND_PUT, 0);
        const d = new Uint8Array(8);
        new DataView(d.buffer).setUint32(4, n - 1 - i);
        desc.put(d, d, i, KIND_PUT, 0);
        const s = new Uint8Array(12);
        const v = new DataView(s.buffer);
        v.setUint32(0, i % 37);
        v.setUint32(8, Math.floor(i / 37));
        sensors.put(s, s, i, KIND_PUT, 0);
        expected.push(hex(k));
      }
      for (const seg of [asc, desc]) {
        const got: string[] = [];
        const c = seg.cursor(false);
        while (c.next()) got.push(hex(c.key));
        expect(got).toEqual(expected);
      }
      const c = sensors.cursor(false);
      let prev: Uint8Array | undefined;
      let count = 0;
      while (c.next()) {
        if (prev !== undefined) expect(compareBytes(prev, c.key)).toBeLessThan(0);
        prev = c.key.slice();
        count++;
      }
      expect(count).toBe(n);
    }
  });
});

describe("MutableSegment accounting and freezing", () => {
  test("byteSize counts key + value + overhead, and every overwrite's value bytes", () => {
    const seg = new MutableSegment(7, compareBytes);
    expect(seg.id).toBe(7);
    expect(seg.byteSize).toBe(0);
    const k = new Uint8Array([1, 2, 3]);
    seg.put(k, new Uint8Array(10), 1, KIND_PUT, 0);
    expect(seg.byteSize).toBe(13 + RECORD_OVERHEAD_BYTES);
    seg.put(new Uint8Array([1, 2, 3]), new Uint8Array(4), 2, KIND_PUT, 0);
    expect(seg.byteSize).toBe(17 + RECORD_OVERHEAD_BYTES);
    seg.put(k, new Uint8Array(0), 3, KIND_DELETE, 0);
    expect(seg.byteSize).toBe(17 + RECORD_OVERHEAD_BYTES);
    expect(seg.recordCount).toBe(1);
    const out = newSlot();
    expect(seg.get(k, out)).toBe(true);
    expect(out.kind).toBe(KIND_DELETE);
    expect(out.opIndex).toBe(3);
  });

  test("the per-record overhead estimate matches the memory a segment allocates", () => {
    // Ascending, random and time-first sensor keys: the leaves' fill (100%, ~69%, ~85%) decides
    // the slots per record. The estimate must cover the worst (a segment moved forward at
    // mutableSegmentMaxBytes holds no more than that) and not be far above the best (else
    // segments move forward half empty: a read merges twice the layers it needs).
    const n = 100_000;
    const counter = (i: number) => {
      const k = new Uint8Array(16);
      new DataView(k.buffer).setUint32(12, i);
      return k;
    };
    const asc = Array.from({ length: n }, (_, i) => counter(i));
    const random = asc.slice();
    const prng = new Prng(11);
    for (let i = random.length - 1; i > 0; i--) {
      const j = prng.int(i + 1);
      [random[i], random[j]] = [random[j], random[i]];
    }
    const readings: Uint8Array[] = [];
    for (let t = 0; t < n / 250; t++) {
      for (let s = 0; s < 250; s++) {
        const k = new Uint8Array(21);
        k.set(new TextEncoder().encode(`sensor-${String(s).padStart(6, "0")}`));
        new DataView(k.buffer).setUint32(17, t);
        readings.push(k);
      }
    }
    const overheads: number[] = [];
    for (const [keys, valueLength] of [[asc, 100], [random, 100], [readings, 16]] as const) {
      const seg = new MutableSegment(1, compareBytes, {
        keyFilterCapacity: 16_384,
        keyFilterMaxCapacity: 500_000,
      });
      const value = new Uint8Array(valueLength);
      keys.forEach((k, i) => seg.put(k, value, i + 1, KIND_PUT, 0));
      const user = keys.length * (keys[0].length + valueLength);
      expect(seg.byteSize).toBe(user + keys.length * RECORD_OVERHEAD_BYTES);
      overheads.push((seg.memoryBytes() - user) / keys.length);
    }
    const [ascending, shuffled, timeFirst] = overheads;
    expect(ascending).toBeLessThan(timeFirst);
    expect(timeFirst).toBeLessThan(shuffled);
    // Leaf object headers (~6 bytes a record) are not in memoryBytes.
    expect(shuffled + 6).toBeLessThanOrEqual(RECORD_OVERHEAD_BYTES);
    // These keys fit the inline words and are not copied to the arena (66-99 bytes a record
    // over the user's bytes); the estimate also covers longer keys, which are (~15 more).
    expect(ascending).toBeGreaterThan(RECORD_OVERHEAD_BYTES * 0.5);
  });

  test("put on a frozen segment is an assertion failure and reads keep working", () => {
    const seg = new MutableSegment(1, compareBytes);
    seg.put(new Uint8Array([1]), new Uint8Array([9]), 1, KIND_PUT, 5);
    expect(seg.frozen).toBe(false);
    seg.freeze();
    seg.freeze();
    expect(seg.frozen).toBe(true);
    expect(() => seg.put(new Uint8Array([2]), new Uint8Array(0), 2, KIND_PUT, 0)).toThrow(
      AssertionError,
    );
    const out = newSlot();
    expect(seg.get(new Uint8Array([1]), out)).toBe(true);
    expect(out.expiresAt).toBe(5);
    expect(seg.recordCount).toBe(1);
  });

  test("an empty segment has no records in either direction", () => {
    const seg = new MutableSegment(1, compareBytes);
    for (const reverse of [false, true]) {
      const c = seg.cursor(reverse);
      expect(c.next()).toBe(false);
      expect(c.seek(new Uint8Array([5]))).toBe(false);
      expect(c.valid).toBe(false);
    }
    expect(seg.get(new Uint8Array(0), newSlot())).toBe(false);
  });

  test("large opIndex and expiresAt values round-trip exactly", () => {
    const seg = new MutableSegment(1, compareBytes);
    const op = Number.MAX_SAFE_INTEGER;
    const exp = 8.64e15;
    seg.put(new Uint8Array([1]), new Uint8Array(0), op, KIND_PUT, exp);
    const out = newSlot();
    seg.get(new Uint8Array([1]), out);
    expect(out.opIndex).toBe(op);
    expect(out.expiresAt).toBe(exp);
  });
});

describe("MutableSegment cursor records", () => {
  for (const size of [4, 16, 17, 40]) {
    test(`a cursor's value is the one at its step, after an overwrite and shifting inserts (${size}-byte values)`, () => {
      const seg = new MutableSegment(1, compareBytes, { fanout: 8 });
      const key = (i: number) => Uint8Array.of(0, i);
      for (let i = 10; i < 20; i++) seg.put(key(i), new Uint8Array(size).fill(i), i, KIND_PUT, 0);
      for (const reverse of [false, true]) {
        const c = seg.cursor(reverse);
        expect(c.seek(key(15))).toBe(true);
        expect([...c.value]).toEqual(new Array(size).fill(15));
        const unread = seg.cursor(reverse);
        expect(unread.seek(key(14))).toBe(true); // its value read only after the writes
        // Overwrite both records in place (a small value, then a large one), and insert keys
        // before them: slots shift right and a leaf splits under both cursors.
        seg.put(key(15), new Uint8Array(3).fill(99), 100, KIND_PUT, 0);
        seg.put(key(14), new Uint8Array(30).fill(98), 101, KIND_PUT, 0);
        for (let i = 0; i < 10; i++) seg.put(key(i), new Uint8Array(size).fill(200 + i), 102 + i, KIND_PUT, 0);
        expect([...c.key]).toEqual([0, 15]);
        expect([...c.value]).toEqual(new Array(size).fill(15));
        expect([...c.copyValue()]).toEqual(new Array(size).fill(15));
        expect(c.opIndex).toBe(15);
        expect([...unread.value]).toEqual(new Array(size).fill(14));
        // Reading on sees the new values and the new keys in order.
        expect(c.next()).toBe(true);
        expect([...c.key]).toEqual(reverse ? [0, 14] : [0, 16]);
        expect([...c.value]).toEqual(reverse ? new Array(30).fill(98) : new Array(size).fill(16));
        const out = newSlot();
        expect(seg.get(key(15), out)).toBe(true);
        expect([...out.value]).toEqual([99, 99, 99]);
        // Put the records back for the other direction.
        seg.put(key(15), new Uint8Array(size).fill(15), 15, KIND_PUT, 0);
        seg.put(key(14), new Uint8Array(size).fill(14), 14, KIND_PUT, 0);
      }
    });
  }

  test("value bytes that read as a NaN with a payload survive shifts and splits unchanged", () => {
    // Copied as doubles anywhere on the way, a NaN's payload could be rewritten. Descending
    // inserts shift every slot; 300 of them split leaves.
    const seg = new MutableSegment(1, compareBytes, { fanout: 8 });
    // Two little-endian doubles that are NaNs with payloads (exponent all ones, a signalling
    // one and a negative one), as a Float64Array would read them.
    const valueOf = (i: number) =>
      Uint8Array.of(1, 2, 3, i & 255, 5, 6, 0xf4, 0x7f, i >> 8, 9, 10, 11, 12, 13, 0xf1, 0xff);
    for (let i = 299; i >= 0; i--) seg.put(Uint8Array.of(i >> 8, i & 255), valueOf(i), i + 1, KIND_PUT, 0);
    const c = seg.cursor(false);
    let i = 0;
    for (c.seek(undefined); c.valid; c.next(), i++) {
      expect([...c.key]).toEqual([i >> 8, i & 255]);
      expect([...c.value]).toEqual([...valueOf(i)]);
      expect(c.opIndex).toBe(i + 1);
    }
    expect(i).toBe(300);
    seg.freeze(); // and through the hash index
    const out = newSlot();
    for (let j = 0; j < 300; j++) {
      expect(seg.get(Uint8Array.of(j >> 8, j & 255), out)).toBe(true);
      expect([...out.value]).toEqual([...valueOf(j)]);
    }
  });

  test("keys of every length up to and past the inline bytes come back whole from a cursor", () => {
    for (const inlineKeyBytes of [4, 8, 24]) {
      const seg = new MutableSegment(1, compareBytes, { fanout: 6, inlineKeyBytes });
      const keys: Uint8Array[] = [];
      for (let n = 0; n <= 30; n++) {
        // Every byte differs per length (and is non-zero at the end), so a dropped or zeroed
        // tail byte shows.
        keys.push(Uint8Array.from({ length: n }, (_, i) => (n * 37 + i * 11 + 1) & 255 || 1));
      }
      keys.forEach((k, i) => seg.put(k, Uint8Array.of(i), i + 1, KIND_PUT, 0));
      const want = keys.map(hex).sort();
      for (const reverse of [false, true]) {
        const c = seg.cursor(reverse);
        const got: string[] = [];
        for (c.seek(undefined); c.valid; c.next()) got.push(hex(c.key));
        expect(got).toEqual(reverse ? want.slice().reverse() : want);
      }
    }
  });
});

describe("MutableSegment arena storage", () => {
  test("copies what it is given, and views it handed out never change", () => {
    const seg = new MutableSegment(1, compareBytes);
    const key = new Uint8Array([5, 5]);
    const value = new Uint8Array([1, 2, 3]);
    seg.put(key, value, 1, KIND_PUT, 0);
    key[0] = 9; // the caller reuses its arrays
    value.fill(0);
    const out = newSlot();
    expect(seg.get(new Uint8Array([5, 5]), out)).toBe(true);
    const first = out.value;
    expect([...first]).toEqual([1, 2, 3]);
    // Overwrites and enough inserts to fill several arena chunks (large values get their own).
    for (let i = 0; i < 20_000; i++) {
      const k = new Uint8Array(4);
      new DataView(k.buffer).setUint32(0, i);
      seg.put(k, new Uint8Array(i % 1000 === 0 ? 2_000_000 : 50).fill(i & 255), i + 2, KIND_PUT, 0);
    }
    seg.put(new Uint8Array([5, 5]), new Uint8Array([7]), 30_000, KIND_PUT, 0);
    expect([...first]).toEqual([1, 2, 3]);
    expect(seg.get(new Uint8Array([5, 5]), out)).toBe(true);
    expect([...out.value]).toEqual([7]);
    expect(seg.get(new Uint8Array([0, 0, 3, 232]), out)).toBe(true); // key 1000: a 2 MB value
    expect(out.value.length).toBe(2_000_000);
    expect(out.value[1_999_999]).toBe(1000 & 255);
    // A cursor sees every key once, in order, with its own bytes.
    const c = seg.cursor(false);
    let n = 0;
    let prev: Uint8Array | undefined;
    for (c.seek(undefined); c.valid; c.next(), n++) {
      if (prev) expect(compareBytes(prev, c.key)).toBeLessThan(0);
      prev = c.key.slice();
      if (c.key.length === 4) {
        const i = new DataView(c.key.buffer, c.key.byteOffset, 4).getUint32(0);
        expect(c.value[0]).toBe(i & 255);
      }
    }
    expect(n).toBe(20_001);
  });
});
