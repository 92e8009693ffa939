import { describe, expect, test } from "bun:test";
import { defineKeyspace, memoryFileSystem, ZoneTree } from "../../mod.ts";
import { newSlot } from "../../src/iter/record.ts";
import { KeyFilter, keyHash, keyHashAt, keyHashWords } from "../../src/memory/key_filter.ts";
import { filterCapacity, MutableSegment, RECORD_OVERHEAD_BYTES } from "../../src/memory/mutable_segment.ts";
import { compareBytes } from "../../src/util/bytes.ts";
import { Prng } from "../../src/util/prng.ts";

function randomKeys(prng: Prng, count: number, maxLength: number): Uint8Array[] {
  const seen = new Set<string>();
  const out: Uint8Array[] = [];
  while (out.length < count) {
    const k = new Uint8Array(prng.int(maxLength + 1));
    for (let i = 0; i < k.length; i++) k[i] = prng.int(256);
    const id = k.join(",");
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(k);
  }
  return out;
}

describe("keyHash", () => {
  test("depends on every byte and on the length", () => {
    const base = new Uint8Array(23).fill(7);
    const h = keyHash(base);
    for (let i = 0; i < base.length; i++) {
      const k = base.slice();
      k[i] ^= 1;
      expect(keyHash(k)).not.toBe(h);
    }
    expect(keyHash(base.subarray(0, 22))).not.toBe(h);
    expect(keyHash(new Uint8Array(0))).not.toBe(keyHash(new Uint8Array(1)));
  });

  test("reads only the view's bytes; keyHashAt hashes a range the same way", () => {
    const buffer = Uint8Array.of(9, 1, 2, 3, 4, 5, 9);
    expect(keyHash(buffer.subarray(1, 6))).toBe(keyHash(Uint8Array.of(1, 2, 3, 4, 5)));
    for (let from = 0; from < buffer.length; from++) {
      for (let n = 0; from + n <= buffer.length; n++) {
        expect(keyHashAt(buffer, from, n)).toBe(keyHash(buffer.slice(from, from + n)));
      }
    }
  });
});

describe("KeyFilter", () => {
  test("never misses an added key; false positives near 1% at capacity", () => {
    const prng = new Prng(11);
    const keys = randomKeys(prng, 40_000, 40);
    const filter = new KeyFilter(20_000);
    for (const k of keys.slice(0, 20_000)) filter.add(keyHash(k));
    for (const k of keys.slice(0, 20_000)) expect(filter.mayContain(keyHash(k))).toBe(true);
    let positives = 0;
    for (const k of keys.slice(20_000)) if (filter.mayContain(keyHash(k))) positives++;
    // 10 bits per key rounded up to a power of two of blocks: expect ~0.3-1.5%.
    expect(positives / 20_000).toBeLessThan(0.02);
  });

  test("past its capacity it only loses selectivity, never an added key", () => {
    const keys = randomKeys(new Prng(12), 5_000, 12);
    const filter = new KeyFilter(10); // one block for 5,000 keys
    for (const k of keys) filter.add(keyHash(k));
    for (const k of keys) expect(filter.mayContain(keyHash(k))).toBe(true);
  });

  test("an empty filter rules out everything", () => {
    const filter = new KeyFilter(1000);
    for (const k of randomKeys(new Prng(13), 1000, 20)) expect(filter.mayContain(keyHash(k))).toBe(false);
  });
});

describe("MutableSegment key filter", () => {
  test("holds every key the segment holds, deletion markers and overwrites included", () => {
    const prng = new Prng(14);
    const seg = new MutableSegment(1, compareBytes, { fanout: 4, inlineKeyBytes: 4, keyFilterCapacity: 500 });
    const keys = randomKeys(prng, 2_000, 30);
    for (let i = 0; i < 3_000; i++) {
      const k = keys[prng.int(keys.length)];
      seg.put(k, Uint8Array.of(i & 255), i + 1, prng.int(2) === 0 ? 1 : 2, 0);
    }
    const slot = newSlot();
    for (const k of keys) {
      if (seg.get(k, slot)) expect(seg.keyFilter!.mayContain(keyHash(k))).toBe(true);
    }
  });

  test("a filter that fills is rebuilt 4x larger from the keys held, up to its maximum", () => {
    const prng = new Prng(17);
    const seg = new MutableSegment(1, compareBytes, { keyFilterCapacity: 16, keyFilterMaxCapacity: 2_000 });
    const keys = randomKeys(prng, 5_000, 24);
    const capacities = new Set<number>();
    for (let i = 0; i < keys.length; i++) {
      seg.put(keys[i], Uint8Array.of(1), i + 1, 0, 0);
      capacities.add(seg.keyFilter!.capacity);
      // Every key inserted so far, after every growth step.
      if (i % 97 === 0 || i < 80) {
        for (let j = 0; j <= i; j++) expect(seg.keyFilter!.mayContain(keyHash(keys[j]))).toBe(true);
      }
    }
    expect([...capacities]).toEqual([16, 64, 256, 1024, 2000]);
    for (const k of keys) expect(seg.keyFilter!.mayContain(keyHash(k))).toBe(true);
    let positives = 0;
    const others = randomKeys(new Prng(18), 2_000, 3);
    for (const k of others) if (seg.keyFilter!.mayContain(keyHash(k))) positives++;
    expect(positives).toBeLessThan(2_000 * 0.5); // past its maximum: less selective, still useful
  });

  test("no filter unless asked (the merge worker's replays)", () => {
    expect(new MutableSegment(1, compareBytes).keyFilter).toBeUndefined();
  });

  test("capacity is the item limit or the byte limit over the per-record overhead", () => {
    expect(filterCapacity(1_000_000, 64 * 1024 * 1024)).toBe(Math.ceil(64 * 1024 * 1024 / RECORD_OVERHEAD_BYTES));
    expect(filterCapacity(100, 64 * 1024 * 1024)).toBe(100);
  });
});

describe("engine reads through filtered layers", () => {
  test("gets across many read-only segments equal a model (overwrites and deletes in newer layers)", async () => {
    const fs = memoryFileSystem();
    const keyspace = defineKeyspace({ key: "<bytes>", value: "bytes" });
    const tree = await ZoneTree.open({ dir: "/t", keyspace, fs, maintenance: "manual", wal: "none" });
    const prng = new Prng(15);
    const keys = randomKeys(prng, 3_000, 20);
    const model = new Map<number, Uint8Array | undefined>();
    for (let step = 0; step < 12_000; step++) {
      const i = prng.int(keys.length);
      if (prng.int(5) === 0) {
        tree.forceDelete(keys[i]);
        model.set(i, undefined);
      } else {
        const v = Uint8Array.of(step & 255, step >> 8);
        tree.upsert(keys[i], v);
        model.set(i, v);
      }
      if (step % 1_000 === 999) tree.maintenance.moveMutableSegmentForward();
    }
    expect(tree.stats().readOnlySegmentsCount).toBe(12);
    for (let i = 0; i < keys.length; i++) expect(tree.get(keys[i])).toEqual(model.get(i));
    for (const k of randomKeys(new Prng(16), 2_000, 3)) {
      const i = keys.findIndex((x) => compareBytes(x, k) === 0);
      expect(tree.get(k)).toEqual(i < 0 ? undefined : model.get(i));
    }
    await tree.close();
  });
});

describe("keyHashWords", () => {
  test("hashes a key's big-endian inline words to what keyHash gives its bytes (lengths 0-64)", () => {
    const rng = new Prng(77);
    for (let n = 0; n <= 64; n++) {
      for (let round = 0; round < 20; round++) {
        const key = new Uint8Array(n);
        for (let i = 0; i < n; i++) key[i] = round === 0 ? 0xff : rng.int(256);
        // The B+tree's inline form: big-endian words, the last one zero-padded, at an offset.
        const words = new Uint32Array(3 + Math.ceil(n / 4) + 1);
        for (let i = 0; i < n; i++) words[3 + (i >>> 2)] |= key[i] << (24 - 8 * (i & 3));
        words[3 + Math.ceil(n / 4)] = n; // what follows the words (the length) is not read
        expect(keyHashWords(words, 3, n)).toBe(keyHash(key));
      }
    }
  });
});

test("keyHash keeps its values (the same in every process and runtime)", () => {
  const enc = new TextEncoder();
  const pinned: [string, number][] = [
    ["", -1237741512],
    ["a", 604787616],
    ["ab", -1520153217],
    ["abc", -1267723153],
    ["abcd", -1528854654],
    ["sensor-0001", 1641118362],
    ["0123456789abcdef", -311307504],
  ];
  for (const [s, h] of pinned) expect(keyHash(enc.encode(s))).toBe(h);
});
