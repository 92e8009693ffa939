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
  // Values of 0-30 bytes, after a first one of 2 or 30.
  for (const [fanout, first] of [[6, 2], [64, 2], [64, 30]]) {
    test(`indexed gets equal descents, while building and after (fanout ${fanout}, first value ${first} bytes)`, () => {
      const rng = new Prng(0x1d3 + fanout + first);
      const seg = new MutableSegment(1, compareBytes, { fanout });
      const model = new MutableSegment(2, compareBytes, { fanout });
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
