/**
 * A frozen segment answers point reads through a hash index of its keys, built a few thousand
 * keys per read. Every answer must equal the B+tree descent's: while the index is partial and
 * once complete, for present and absent keys, keys of 0-40 bytes, values of 0-30 bytes,
 * overwritten and deleted records, leaves of odd sizes, and with or without the caller's hash.
 */
import { describe, expect, test } from "bun:test";
import { KIND_DELETE, KIND_PUT, newSlot, type RecordSlot } from "../../src/iter/record.ts";
import { keyHash } from "../../src/memory/key_filter.ts";
import { MutableSegment } from "../../src/memory/mutable_segment.ts";
import { compareBytes } from "../../src/util/bytes.ts";
import { Prng } from "../../src/util/prng.ts";

function randomKey(rng: Prng): Uint8Array {
  const k = new Uint8Array(rng.int(41));
  for (let i = 0; i < k.length; i++) k[i] = rng.int(4) === 0 ? 0 : rng.int(256);
  return k;
}

function show(found: boolean, r: RecordSlot): string {
  return found ? `${[...r.value]}@${r.opIndex}/${r.kind}/${r.expiresAt}` : "absent";
}

describe("frozen segment point index", () => {
  // Values of 0-30 bytes, after a first one of 2 or 30. Keys no longer than the inline bytes are
  // held only in the leaves' inline words (and the index keeps a copy of those words); longer
  // ones in the arena: 4, 16 and 24 inline bytes mix both kinds differently.
  for (const [fanout, first, inline] of [[6, 2, 24], [64, 2, 24], [64, 30, 24], [64, 2, 4], [16, 2, 16]]) {
    test(`indexed gets equal descents, while building and after (fanout ${fanout}, first value ${first} bytes, inline ${inline})`, () => {
      const rng = new Prng(0x1d3 + fanout + first + inline);
      const seg = new MutableSegment(1, compareBytes, { fanout, inlineKeyBytes: inline });
      const model = new MutableSegment(2, compareBytes, { fanout, inlineKeyBytes: 64 });
      const keys: Uint8Array[] = [];
      for (let i = 0; i < 20_000; i++) {
        const k = keys.length > 0 && rng.int(5) === 0 ? keys[rng.int(keys.length)] : randomKey(rng);
        keys.push(k);
        const kind = rng.int(6) === 0 ? KIND_DELETE : KIND_PUT;
        const v = new Uint8Array(i === 0 ? first : rng.int(31)).fill(i & 255);
        if (v.length > 1) v[1] = (i >> 8) & 255;
        const expiresAt = rng.int(8) === 0 ? 1_700_000_000_000 + i : 0;
        seg.put(k, v, i + 1, kind, expiresAt);
        model.put(k, v, i + 1, kind, expiresAt);
      }
      seg.freeze();
      const a = newSlot();
      const b = newSlot();
      // Interleave present and absent keys from the first read on, so that reads meet the
      // index partial (each read indexes a few thousand keys more) and then complete.
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 6_000; i++) {
          const k = rng.int(2) === 0 ? keys[rng.int(keys.length)] : randomKey(rng);
          const withHash = rng.int(2) === 0;
          const got = withHash ? seg.get(k, a, keyHash(k)) : seg.get(k, a);
          expect(show(got, a)).toBe(show(model.get(k, b), b));
          if (got) expect(a.valueIsCopy).toBe(true);
        }
      }
      // Every key, once the index is complete.
      for (const k of keys) expect(show(seg.get(k, a), a)).toBe(show(model.get(k, b), b));
    });
  }

  test("keys whose hashes collide are told apart by their bytes, inline words or arena", () => {
    // Keys of 8 bytes are held only inline (24 inline bytes), keys of 30 in the arena.
    for (const length of [8, 30]) {
      const rng = new Prng(0xc011 + length);
      const seen = new Map<number, Uint8Array>();
      let pair: [Uint8Array, Uint8Array] | undefined;
      while (pair === undefined) {
        const k = rng.bytes(length);
        const h = keyHash(k);
        const other = seen.get(h);
        if (other !== undefined && other.some((b, i) => b !== k[i])) pair = [other, k];
        else seen.set(h, k);
      }
      const [stored, lookalike] = pair;
      expect(keyHash(stored)).toBe(keyHash(lookalike));
      const seg = new MutableSegment(1, compareBytes);
      seg.put(stored, Uint8Array.of(1), 1, KIND_PUT, 0);
      seg.freeze();
      const out = newSlot();
      expect(seg.get(lookalike, out, keyHash(lookalike))).toBe(false);
      expect(seg.get(stored, out, keyHash(stored))).toBe(true);
      expect([...out.value]).toEqual([1]);
    }
  });

  test("an empty frozen segment and a one-key one answer correctly", () => {
    const empty = new MutableSegment(1, compareBytes);
    empty.freeze();
    const out = newSlot();
    expect(empty.get(new Uint8Array(0), out)).toBe(false);
    expect(empty.get(Uint8Array.of(1), out)).toBe(false);
    const one = new MutableSegment(2, compareBytes);
    one.put(new Uint8Array(0), Uint8Array.of(9), 1, KIND_PUT, 0);
    one.freeze();
    expect(one.get(new Uint8Array(0), out)).toBe(true);
    expect([...out.value]).toEqual([9]);
    expect(one.get(Uint8Array.of(0), out)).toBe(false);
  });
});
