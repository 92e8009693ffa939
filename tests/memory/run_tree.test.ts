import { describe, expect, test } from "bun:test";
import { KIND_PUT, newSlot } from "../../src/iter/record.ts";
import { MutableSegment, type MutableSegmentTuning, RECORD_OVERHEAD_BYTES } from "../../src/memory/mutable_segment.ts";
import { nextRunSlabBytes, RUN_INSERTED, RunTree } from "../../src/memory/run_tree.ts";
import { POOLED_MIN_BYTES } from "../../src/util/helper_thread.ts";
import { compareBytes, prefixSuccessor } from "../../src/util/bytes.ts";
import { Prng } from "../../src/util/prng.ts";
import { drain, hex, ModelSegment, randomRecord, seekAndStep, seeds, seekIndex, show } from "../iter/record_model.ts";
import { defineKeyspace, memoryFileSystem, ZoneTree } from "../../mod.ts";

/**
 * Keys as a layout makes them: a prefix-free prefix (0-5 bytes of 1..255, then a 0 terminator,
 * like an escaped `str` field) and a `width`-byte suffix.
 */
class Keys {
  readonly prefixes: Uint8Array[] = [];
  /** Next ascending suffix per prefix. */
  private readonly next = new Map<string, number>();

  private readonly seen = new Set<string>();

  /**
   * `head`: when given, every prefix is `head`, then 4-6 bytes of 1..3 (so that many prefixes
   * share their first bytes after the head), then the terminator, as sensor ids of one naming
   * scheme are.
   */
  constructor(
    readonly rng: Prng,
    readonly width: number,
    prefixCount: number,
    readonly head?: Uint8Array,
    readonly prefixMax = 40,
  ) {
    while (this.prefixes.length < prefixCount) this.addPrefix();
  }

  /** A new prefix (so that some arrive while cursors are open). */
  addPrefix(): void {
    for (;;) {
      const head = this.head;
      if (head !== undefined) {
        const n = 4 + this.rng.int(3);
        const p = new Uint8Array(head.length + n + 1);
        p.set(head);
        for (let i = 0; i < n; i++) p[head.length + i] = 1 + this.rng.int(3);
        if (this.seen.has(hex(p))) continue;
        this.seen.add(hex(p));
        this.prefixes.push(p);
        return;
      }
      const n = this.rng.int(6);
      const p = new Uint8Array(n + 1);
      for (let i = 0; i < n; i++) p[i] = 1 + this.rng.int(this.rng.int(2) === 0 ? 3 : 255);
      if (this.seen.has(hex(p))) continue;
      this.seen.add(hex(p));
      this.prefixes.push(p);
      return;
    }
  }

  key(prefix: Uint8Array, suffix: Uint8Array): Uint8Array {
    const k = new Uint8Array(prefix.length + this.width);
    k.set(prefix);
    k.set(suffix, prefix.length);
    return k;
  }

  /** A suffix holding `n` big-endian in its last bytes (and random high bytes when wide). */
  suffix(n: number): Uint8Array {
    const s = new Uint8Array(this.width);
    for (let i = this.width - 1; i >= 0 && n > 0; i--, n = Math.floor(n / 256)) s[i] = n % 256;
    return s;
  }

  /** Mostly the prefix's next ascending suffix; sometimes a step back or a random one. */
  pick(): Uint8Array {
    const rng = this.rng;
    if (this.prefixes.length < this.prefixMax && rng.int(40) === 0) this.addPrefix();
    const p = rng.pick(this.prefixes);
    const at = this.next.get(hex(p)) ?? 0;
    const r = rng.int(10);
    let n: number;
    if (r < 7) this.next.set(hex(p), (n = at + 1 + rng.int(3)));
    else if (r < 9) n = Math.max(0, at - rng.int(12)); // late, an overwrite, or an insert just behind
    else n = rng.int(1 << Math.min(8 * this.width, 20));
    return this.key(p, this.suffix(n));
  }

  /**
   * A seek target: a held key, a prefix alone, a prefix with a cut or longer suffix, bytes, or
   * the end of a range over a prefix (its successor: where a reverse range starts).
   */
  target(held: Uint8Array[]): Uint8Array | undefined {
    const rng = this.rng;
    switch (rng.int(8)) {
      case 0:
        return undefined;
      case 1:
        return held.length > 0 ? rng.pick(held) : undefined;
      case 2:
        return rng.pick(this.prefixes).slice(0, rng.int(4));
      case 3: {
        const k = this.pick();
        return k.subarray(0, rng.int(k.length + 1));
      }
      case 4: {
        const k = this.pick();
        const longer = new Uint8Array(k.length + 1 + rng.int(3));
        longer.set(k);
        for (let i = k.length; i < longer.length; i++) longer[i] = rng.int(256);
        return longer;
      }
      case 5:
        return rng.bytes(rng.int(8));
      case 6:
        if (this.head !== undefined) return this.nearPrefix();
        return this.pick();
      case 7: {
        const p = rng.pick(this.prefixes);
        return prefixSuccessor(rng.int(4) === 0 ? p.subarray(0, rng.int(p.length + 1)) : p);
      }
      default:
        return this.pick();
    }
  }

  /**
   * With a head: a target around the shared bytes or a prefix's next ones: the head cut short
   * or with a byte moved up or down, or a prefix (with or without a suffix) with one of its
   * bytes changed to fall between or beside the held ones (0 and 4 are outside 1..3).
   */
  private nearPrefix(): Uint8Array {
    const rng = this.rng;
    const head = this.head!;
    if (rng.int(3) === 0) {
      const t = head.slice(0, rng.int(head.length + 1));
      if (t.length > 0 && rng.int(2) === 0) t[rng.int(t.length)] += rng.int(2) === 0 ? 1 : -1;
      return t;
    }
    const p = rng.pick(this.prefixes);
    const t = rng.int(2) === 0 ? p.slice() : this.key(p, this.suffix(rng.int(40)));
    const at = rng.int(head.length + 6);
    if (at < t.length) t[at] = rng.pick([0, 1, 2, 3, 4, 0xff]);
    return rng.int(3) === 0 ? t.subarray(0, rng.int(t.length + 1)) : t;
  }
}

/** Run shapes: suffix width, and the limits that make a segment leave runs (small in some). */
const SHAPES: MutableSegmentTuning[] = [
  { runSuffixWidth: 8 },
  { runSuffixWidth: 1 },
  { runSuffixWidth: 3 },
  { runSuffixWidth: 4, runShiftMax: 2, runShiftBudget: 0 },
  { runSuffixWidth: 4, runShiftMax: 0, runShiftBudget: 1 },
  { runSuffixWidth: 16 },
  { runSuffixWidth: 8, runsMax: 5 },
  { runSuffixWidth: 8, runShiftMax: 0, runShiftBudget: 0, fanout: 4, inlineKeyBytes: 4 },
];
const shapeName = (s: MutableSegmentTuning) =>
  `width ${s.runSuffixWidth}${s.runShiftMax !== undefined ? `, shift max ${s.runShiftMax}` : ""}${
    s.runsMax !== undefined ? `, runs max ${s.runsMax}` : ""
  }${s.runShiftBudget !== undefined ? `, shift budget ${s.runShiftBudget}` : ""}`;

function cases(base: number) {
  return SHAPES.flatMap((shape) => seeds(4, base).map((seed) => ({ shape, seed })));
}

function build(rng: Prng, shape: MutableSegmentTuning, ops: number) {
  const keys = new Keys(rng, shape.runSuffixWidth!, 1 + rng.int(12));
  const seg = new MutableSegment(1, compareBytes, shape);
  const model = new ModelSegment();
  const held: Uint8Array[] = [];
  for (let op = 1; op <= ops; op++) {
    const r = randomRecord(rng, keys.pick(), op);
    if (r.kind === KIND_PUT && rng.int(4) === 0) r.value = rng.bytes(17 + rng.int(30));
    seg.put(r.key, r.value, r.opIndex, r.kind, r.expiresAt);
    model.put(r);
    held.push(r.key);
  }
  return { keys, seg, model, held };
}

describe("MutableSegment as runs (keys of a prefix and a fixed-width last field)", () => {
  for (const { shape, seed } of cases(300)) {
    test(`gets, cursors and seeks match the model (seed ${seed}, ${shapeName(shape)})`, () => {
      const rng = new Prng(seed);
      const { keys, seg, model, held } = build(rng, shape, 1 + rng.int(1500));
      const sorted = model.sorted();
      expect(seg.recordCount).toBe(sorted.length);
      const out = newSlot();
      for (let i = 0; i < 300; i++) {
        const key = rng.int(2) === 0 ? rng.pick(held) : keys.target(held) ?? keys.pick();
        const m = model.get(key);
        const found = seg.get(key, out);
        expect(found ? show(out) : "(absent)").toBe(m ? show(m) : "(absent)");
      }
      for (const frozen of [false, true]) {
        if (frozen) seg.freeze();
        for (const reverse of [false, true]) {
          const all = sorted.map(show);
          if (reverse) all.reverse();
          expect(drain(seg.cursor(reverse), false)).toEqual(all);
          for (let i = 0; i < 60; i++) {
            const target = keys.target(held);
            const end = rng.int(2) === 0 ? { key: keys.target(held) ?? keys.pick(), inclusive: rng.int(2) === 0 } : undefined;
            const r = seekAndStep(seg, sorted, target, rng.int(2) === 0, reverse, rng.int(20), end);
            expect(r.got).toEqual(r.want);
          }
        }
      }
    });
  }

  for (const { shape, seed } of cases(400)) {
    test(`a cursor continues after its last key while records are inserted (seed ${seed}, ${shapeName(shape)})`, () => {
      const rng = new Prng(seed);
      const { keys, seg, model } = build(rng, shape, rng.int(200));
      for (const reverse of [false, true]) {
        const c = seg.cursor(reverse);
        // Half the runs end the stream at a key, which a run tree's cursor takes itself (and
        // keeps after the tree turns into a B+tree under it).
        let end = rng.int(2) === 0 ? { key: keys.pick(), inclusive: rng.int(2) === 0 } : undefined;
        if (seg.isRuns) expect(typeof c.limitEnd).toBe("function");
        if (end !== undefined && c.limitEnd?.(end.key, end.inclusive) !== true) end = undefined;
        const inside = (r: { key: Uint8Array } | undefined) => {
          if (r === undefined || end === undefined) return r;
          const d = compareBytes(r.key, end.key);
          return (reverse ? d > 0 : d < 0) || (d === 0 && end.inclusive) ? r : undefined;
        };
        let last: Uint8Array | undefined;
        let op = 10_000;
        for (let step = 0; step < 3000; step++) {
          if (rng.int(3) === 0) {
            const k = last !== undefined && rng.int(8) === 0 ? last : keys.pick();
            const r = randomRecord(rng, k, op++);
            seg.put(r.key, r.value, r.opIndex, r.kind, r.expiresAt);
            model.put(r);
            continue;
          }
          const sorted = model.sorted();
          const at = last === undefined
            ? seekIndex(sorted, undefined, false, reverse)
            : seekIndex(sorted, last, true, reverse);
          const ok = c.next();
          expect(ok ? show(c) : "(end)").toBe(show(inside(sorted[at])));
          if (!ok) break;
          last = c.key.slice();
        }
      }
    });
  }

  for (const seed of seeds(12, 900)) {
    test(`many prefixes sharing their first bytes: seeks match the model (seed ${seed})`, () => {
      const rng = new Prng(seed);
      const head = rng.bytes(rng.int(4)).map((b) => 1 + (b % 250));
      const width = rng.pick([1, 4, 8]);
      const keys = new Keys(rng, width, 16 + rng.int(60), head, 120);
      const seg = new MutableSegment(1, compareBytes, { runSuffixWidth: width });
      const model = new ModelSegment();
      const held: Uint8Array[] = [];
      for (let op = 1; op <= 300 + rng.int(2500); op++) {
        const r = randomRecord(rng, keys.pick(), op);
        seg.put(r.key, r.value, r.opIndex, r.kind, r.expiresAt);
        model.put(r);
        held.push(r.key);
      }
      expect(seg.isRuns).toBe(true);
      const sorted = model.sorted();
      for (const frozen of [false, true]) {
        if (frozen) seg.freeze();
        for (const reverse of [false, true]) {
          for (let i = 0; i < 150; i++) {
            const target = keys.target(held);
            const end = rng.int(2) === 0 ? { key: keys.target(held) ?? keys.pick(), inclusive: rng.int(2) === 0 } : undefined;
            const r = seekAndStep(seg, sorted, target, rng.int(2) === 0, reverse, rng.int(6), end);
            expect(r.got).toEqual(r.want);
          }
        }
      }
    });
  }

  for (const seed of seeds(16, 1300)) {
    test(`seeks into long runs whose suffixes are spread unevenly land where a sorted model does (seed ${seed})`, () => {
      // The run search guesses a place from the first and last suffixes and gallops from there:
      // clustered, geometric and wide random suffixes put the guess far from the answer, on
      // either side, so every step of the gallop is taken.
      const rng = new Prng(seed);
      const width = rng.pick([2, 4, 8, 12]);
      const tree = new RunTree(width);
      const held: Uint8Array[] = [];
      const prefixes = [Uint8Array.of(7, 0), Uint8Array.of(9, 9, 0), Uint8Array.of(0x20, 0)];
      const suffixBytes = (n: number) => {
        const s = new Uint8Array(width);
        for (let i = width - 1; i >= 0; i--, n = Math.floor(n / 256)) s[i] = n % 256;
        if (width > 8 && rng.int(2) === 0) s[0] = rng.int(256); // words past the guess's two
        return s;
      };
      const max = 2 ** Math.min(8 * width, 52) - 1;
      for (const prefix of prefixes) {
        const count = 17 + rng.int(900);
        const shape = rng.int(4);
        const ns = new Set<number>();
        for (let tries = 0; ns.size < count && tries < 20 * count; tries++) {
          let n: number;
          if (shape === 0) n = rng.int(8) === 0 ? Math.floor(rng.next() * max) : 1000 + rng.int(count * 2); // clustered, outliers
          else if (shape === 1) n = Math.floor(Math.min(max, 1.05 ** (rng.next() * 1000))); // geometric
          else if (shape === 2) n = Math.floor(rng.next() * max); // wide random
          else n = ns.size * (1 + rng.int(3)); // nearly even
          ns.add(Math.min(n, max));
        }
        const keys = [...ns].map((n) => {
          const key = new Uint8Array(prefix.length + width);
          key.set(prefix);
          key.set(suffixBytes(n), prefix.length);
          return key;
        });
        // In order (a run declines inserts that move too many records).
        for (const key of keys.sort(compareBytes)) {
          expect(tree.upsert(key, Uint8Array.of(1), 1, KIND_PUT, 0)).toBe(RUN_INSERTED);
          held.push(key);
        }
      }
      expect(tree.sortedRuns().every((run) => run.count > 16)).toBe(true);
      const sorted = held.slice().sort(compareBytes);
      const runs = tree.sortedRuns();
      const firstOfRun = runs.map((_, r) => runs.slice(0, r).reduce((n, run) => n + run.count, 0));
      for (let i = 0; i < 400; i++) {
        const k = rng.pick(sorted);
        const t = k.slice();
        const at = k.length - 1 - rng.int(Math.min(width, 3));
        const r = rng.int(4);
        if (r === 1 && t[at] > 0) t[at]--;
        else if (r === 2 && t[at] < 255) t[at]++;
        const target = r === 3 ? t.subarray(0, k.length - rng.int(width + 1)) : t;
        const strict = rng.int(2) === 0;
        let want = 0;
        while (want < sorted.length) {
          const c = compareBytes(sorted[want], target);
          if (c > 0 || (c === 0 && !strict)) break;
          want++;
        }
        tree.lowerBound(target, strict);
        const got = tree.foundRun === runs.length ? sorted.length : firstOfRun[tree.foundRun] + tree.foundIndex;
        expect(`${hex(target)} ${strict} -> ${got}`).toBe(`${hex(target)} ${strict} -> ${want}`);
      }
    });
  }

  test("keys that stop suiting runs turn the segment into a B+tree, with every record and open cursor kept", () => {
    const keys = new Keys(new Prng(7), 8, 3);
    // Far out of order: an insert that would move more than `runShiftMax` records of its run.
    const seg = new MutableSegment(1, compareBytes, { runSuffixWidth: 8, runShiftMax: 4, runShiftBudget: 0 });
    const model = new ModelSegment();
    const p = keys.prefixes[0];
    for (let i = 1; i <= 10; i++) {
      const r = { key: keys.key(p, keys.suffix(10 * i)), value: Uint8Array.of(i), opIndex: i, kind: KIND_PUT, expiresAt: 0 };
      seg.put(r.key, r.value, r.opIndex, r.kind, r.expiresAt);
      model.put(r);
    }
    expect(seg.isRuns).toBe(true);
    const c = seg.cursor(false);
    c.seek(undefined);
    c.next(); // on the second record
    // Cursors that end their streams themselves, at suffix 70 (forward) and 40 (reverse).
    const ending = seg.cursor(false);
    expect(ending.limitEnd?.(keys.key(p, keys.suffix(70)), true)).toBe(true);
    ending.seek(undefined);
    const endingBack = seg.cursor(true);
    expect(endingBack.limitEnd?.(keys.key(p, keys.suffix(40)), false)).toBe(true);
    endingBack.seek(undefined);
    const early = { key: keys.key(p, keys.suffix(5)), value: Uint8Array.of(99), opIndex: 11, kind: KIND_PUT, expiresAt: 0 };
    seg.put(early.key, early.value, early.opIndex, early.kind, early.expiresAt);
    model.put(early);
    const late = { key: keys.key(p, keys.suffix(25)), value: Uint8Array.of(98), opIndex: 12, kind: KIND_PUT, expiresAt: 0 };
    seg.put(late.key, late.value, late.opIndex, late.kind, late.expiresAt);
    model.put(late);
    expect(seg.isRuns).toBe(false);
    expect(seg.leftRuns).toBe(true);
    const sorted = model.sorted();
    // The open cursor is on suffix 20 and goes on after it: 25, 30, ...
    expect(drain(c, true)).toEqual(sorted.slice(2).map(show));
    // The ending ones go on after 10 (5 came in behind it) and 100, and stop at their ends:
    // 10, 20, 25, ..., 70 (inclusive) forward; 100, 90, ..., 50 in reverse (40 exclusive).
    expect(drain(ending, true)).toEqual(sorted.slice(1, 9).map(show));
    expect(drain(endingBack, true)).toEqual(sorted.slice(6).reverse().map(show));
    expect(endingBack.next()).toBe(false);
    expect(drain(seg.cursor(true), false)).toEqual(sorted.map(show).reverse());
    // A key shorter than the suffix is the other thing runs cannot hold.
    const seg2 = new MutableSegment(2, compareBytes, { runSuffixWidth: 8 });
    seg2.put(keys.key(p, keys.suffix(1)), Uint8Array.of(1), 1, KIND_PUT, 0);
    seg2.put(Uint8Array.of(1, 2, 3), Uint8Array.of(2), 2, KIND_PUT, 0);
    expect(seg2.leftRuns).toBe(true);
    expect(drain(seg2.cursor(false), false).length).toBe(2);
  });

  test("readings far behind their sensor's latest are moved into place; keys in no order within a prefix make a B+tree", () => {
    const keys = new Keys(new Prng(21), 8, 4);
    const seg = new MutableSegment(1, compareBytes, { runSuffixWidth: 8 });
    const model = new ModelSegment();
    let op = 1;
    const put = (k: Uint8Array) => {
      const r = { key: k, value: Uint8Array.of(op & 255), opIndex: op++, kind: KIND_PUT, expiresAt: 0 };
      seg.put(r.key, r.value, r.opIndex, r.kind, r.expiresAt);
      model.put(r);
    };
    for (let t = 0; t < 1000; t++) for (const p of keys.prefixes) put(keys.key(p, keys.suffix(2 * t)));
    // Late readings, up to 1,000 readings behind (odd timestamps fall between the stored ones).
    for (let i = 0; i < 20; i++) put(keys.key(keys.prefixes[i % 4], keys.suffix(2 * i + 1)));
    expect(seg.isRuns).toBe(true);
    expect(drain(seg.cursor(false), false)).toEqual(model.sorted().map(show));
    expect(drain(seg.cursor(true), false)).toEqual(model.sorted().map(show).reverse());
    // One prefix, keys in random order: the moves outgrow the budget within a few dozen keys.
    const seg2 = new MutableSegment(2, compareBytes, { runSuffixWidth: 8 });
    const rng = new Prng(5);
    for (let i = 0; i < 500 && seg2.isRuns; i++) {
      seg2.put(keys.key(keys.prefixes[0], keys.suffix(rng.int(1e9))), Uint8Array.of(1), i + 1, KIND_PUT, 0);
    }
    expect(seg2.leftRuns).toBe(true);
    expect(seg2.recordCount).toBeLessThan(200);
  });

  /** A run segment and its model holding `readings` time-first readings of every prefix. */
  function timeFirst(seed: number, prefixes: number, readings: number) {
    const keys = new Keys(new Prng(seed), 8, prefixes);
    const seg = new MutableSegment(1, compareBytes, { runSuffixWidth: 8 });
    const model = new ModelSegment();
    let op = 1;
    for (let t = 0; t < readings; t++) {
      for (const p of keys.prefixes) {
        const r = { key: keys.key(p, keys.suffix(1000 + t)), value: Uint8Array.of(t), opIndex: op++, kind: KIND_PUT, expiresAt: 0 };
        seg.put(r.key, r.value, r.opIndex, r.kind, r.expiresAt);
        model.put(r);
      }
    }
    return { seg, model };
  }

  test("time-first readings of many sensors stay runs and come back sensor-first", () => {
    const { seg, model } = timeFirst(9, 300, 50);
    expect(seg.isRuns).toBe(true);
    expect(drain(seg.cursor(false), false)).toEqual(model.sorted().map(show));
  });

  test("freezing builds the prefix order, so the first read of a read-only segment does not sort", () => {
    const { seg, model } = timeFirst(10, 200, 5);
    // deno-lint-ignore no-explicit-any
    const runs = (seg as any).runs;
    expect(runs.sorted).toBeNull(); // nothing read it yet
    seg.freeze();
    expect(runs.sorted).not.toBeNull();
    expect(drain(seg.cursor(true), false)).toEqual(model.sorted().reverse().map(show));
  });
});

describe("values kept in their records (runs)", () => {
  test("values that read as NaN keep their bytes when late readings move their records (own process)", () => {
    const child = Bun.spawnSync([process.execPath, new URL("./nan_moves_child.ts", import.meta.url).pathname]);
    expect(child.stderr.toString()).toBe("");
    expect(JSON.parse(child.stdout.toString())).toEqual({ runs: true, seen: 3 * (2000 + 1970), changed: 0 });
  });

  test("a cursor's value stays as it was until the cursor moves: overwrites and moves of its record", () => {
    const keys = new Keys(new Prng(32), 8, 1);
    const p = keys.prefixes[0];
    const seg = new MutableSegment(1, compareBytes, { runSuffixWidth: 8 });
    for (let t = 1; t <= 30; t++) seg.put(keys.key(p, keys.suffix(10 * t)), Uint8Array.of(t, t), t, KIND_PUT, 0);
    for (const reverse of [false, true]) {
      const c = seg.cursor(reverse);
      expect(c.seek(keys.key(p, keys.suffix(150)))).toBe(true); // on the 15th reading
      const key = hex(c.key);
      const value = c.value;
      expect(Array.from(value)).toEqual([15, 15]);
      // An overwrite of the same key, and a late reading that moves it up by one.
      seg.put(keys.key(p, keys.suffix(150)), Uint8Array.of(99, 99), 100, KIND_PUT, 0);
      seg.put(keys.key(p, keys.suffix(reverse ? 5 : 145)), Uint8Array.of(77, 77), 101, KIND_PUT, 0);
      expect(hex(c.key)).toBe(key);
      expect(Array.from(c.value)).toEqual([15, 15]);
      expect(Array.from(value)).toEqual([15, 15]);
      expect(Array.from(c.copyValue())).toEqual([15, 15]);
      expect(c.opIndex).toBe(15);
      // Moving on: the cursor re-seeks past its key and sees the tree as it is now.
      expect(c.next()).toBe(true);
      expect(Array.from(c.value)).toEqual(reverse ? [77, 77] : [16, 16]);
      // Put the overwritten reading back for the other direction.
      seg.put(keys.key(p, keys.suffix(150)), Uint8Array.of(15, 15), 15, KIND_PUT, 0);
    }
  });

  test("values longer than the room the first value set go to the arena, and a long first value sets none", () => {
    for (const first of [4, 16, 17]) {
      const keys = new Keys(new Prng(33 + first), 4, 5);
      const seg = new MutableSegment(1, compareBytes, { runSuffixWidth: 4 });
      const model = new ModelSegment();
      const rng = new Prng(first);
      let op = 1;
      for (let t = 0; t < 300; t++) {
        for (const p of keys.prefixes) {
          const k = keys.key(p, keys.suffix(rng.int(4) === 0 ? rng.int(t + 1) : t)); // some overwrites
          const v = rng.bytes(op === 1 ? first : rng.int(40));
          seg.put(k, v, op, KIND_PUT, 0);
          model.put({ key: k, value: v, opIndex: op++, kind: KIND_PUT, expiresAt: 0 });
        }
      }
      expect(seg.isRuns).toBe(true);
      expect(drain(seg.cursor(true), false)).toEqual(model.sorted().map(show).reverse());
    }
  });
});

describe("memory of a segment kept as runs", () => {
  test("run slabs grow 8, 16, 32 KiB, then stay at one size that the helper pools (it pools four per process)", () => {
    const sizes: number[] = [];
    for (let bytes = 0, i = 0; i < 8; i++) sizes.push(bytes = nextRunSlabBytes(bytes));
    expect(sizes).toEqual([8192, 16384, 32768, 262144, 262144, 262144, 262144, 262144]);
    // The B+tree's leaf slabs take three of the helper's four pooled sizes; runs take the fourth.
    expect(new Set(sizes.filter((n) => n >= POOLED_MIN_BYTES)).size).toBe(1);
  });

  test("byteSize is what the runs allocated: about a page slot and the value per reading, and the B+tree estimate after leaving runs", () => {
    const keys = new Keys(new Prng(13), 8, 250);
    const seg = new MutableSegment(1, compareBytes, { runSuffixWidth: 8 });
    const value = new Uint8Array(16);
    let user = 0;
    let op = 1;
    for (let t = 0; t < 400; t++) {
      for (const p of keys.prefixes) {
        const k = keys.key(p, keys.suffix(t));
        seg.put(k, value, op++, KIND_PUT, 0);
        user += k.length + value.length;
      }
    }
    const n = seg.recordCount;
    expect(n).toBe(100_000);
    expect(seg.byteSize).toBe(seg.memoryBytes());
    // 48 bytes of page slot + 16 of value per reading; pages, slabs and chunks partly empty.
    expect(seg.byteSize / n).toBeGreaterThan(64);
    expect(seg.byteSize / n).toBeLessThan(90);
    // Two overwrites, then a key runs cannot hold (shorter than the suffix): the segment becomes
    // a B+tree and byteSize its estimate, which counted every write all along.
    seg.put(keys.key(keys.prefixes[0], keys.suffix(0)), value, op++, KIND_PUT, 0);
    seg.put(keys.key(keys.prefixes[0], keys.suffix(1)), value, op++, KIND_PUT, 0);
    expect(seg.byteSize).toBe(seg.memoryBytes());
    seg.put(Uint8Array.of(1, 2, 3), value, op++, KIND_PUT, 0);
    expect(seg.isRuns).toBe(false);
    expect(seg.byteSize).toBe(user + 16 * 2 + (3 + 16 + RECORD_OVERHEAD_BYTES) + n * RECORD_OVERHEAD_BYTES);
  });
});

describe("trees of a layout with a fixed-width last field", () => {
  test("out-of-order and far-out-of-order readings, deletes and overwrites read back equal to a model across reopen and merges", async () => {
    const fs = memoryFileSystem();
    const keyspace = defineKeyspace({ key: "sensor:<str>:ts:<u64be>", value: "u32be" });
    const rng = new Prng(77);
    const model = new Map<string, number>();
    const id = (s: string, ts: number | bigint) => `${s}|${String(ts).padStart(12, "0")}`;
    const sensors = ["a", "b", "a\u0000b", "ab", "", "zz"];
    const check = (tree: ZoneTree<typeof keyspace>) => {
      const want = [...model].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      const got = [...tree.range()].map(([k, v]) => [id(k.sensor, k.ts), v]);
      // Sensor names sort by their UTF-8 bytes; all of these are ASCII but "a\0b".
      expect(got.length).toBe(want.length);
      expect(new Map(got as [string, number][])).toEqual(new Map(want));
      for (const s of sensors) {
        const latest = [...tree.range({ prefix: [s], reverse: true, limit: 3 })].map(([k]) => Number(k.ts));
        const mine = [...model.keys()].filter((k) => k.startsWith(`${s}|`)).map((k) => Number(k.slice(s.length + 1)));
        expect(latest).toEqual(mine.sort((x, y) => y - x).slice(0, 3));
      }
    };
    let tree = await ZoneTree.open({ dir: "/t", fs, keyspace, mutableSegmentMaxItemCount: 700 });
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 2000; i++) {
        const s = rng.pick(sensors);
        const ts = rng.int(4) === 0 ? rng.int(5000) : 1000 + i + 2000 * round;
        if (rng.int(10) === 0) {
          tree.forceDelete([s, ts]);
          model.delete(id(s, ts));
        } else {
          tree.upsert([s, ts], i);
          model.set(id(s, ts), i);
        }
      }
      check(tree);
      await tree.close();
      tree = await ZoneTree.open({ dir: "/t", fs, keyspace, mutableSegmentMaxItemCount: 700 });
      check(tree);
      await tree.maintenance.merge();
      check(tree);
    }
    await tree.close();
  });
});
