import { afterEach, describe, expect, test } from "bun:test";
import { defineKeyspace, memoryFileSystem, ZoneTree } from "../../mod.ts";
import { KIND_PUT, newSlot } from "../../src/iter/record.ts";
import { BPlusTree } from "../../src/memory/bplus_tree.ts";
import {
  freshBuffer,
  freshPlainBuffer,
  helperStats,
  POOLED_MIN_BYTES,
  setHelperThread,
  SPARES,
  touchForTest,
  whenTouched,
} from "../../src/util/helper_thread.ts";
import { compareBytes } from "../../src/util/bytes.ts";
import { Prng } from "../../src/util/prng.ts";

const MIB = 1 << 20;
const allZero = (b: ArrayBufferLike) => new Uint8Array(b).every((x) => x === 0);

afterEach(() => setHelperThread({ warm: true }));

describe("helper thread: pre-touched buffers", () => {
  test("small sizes are plain zeroed ArrayBuffers", () => {
    const b = freshBuffer(POOLED_MIN_BYTES - 8);
    expect(b).toBeInstanceOf(ArrayBuffer);
    expect(b.byteLength).toBe(POOLED_MIN_BYTES - 8);
    expect(allZero(b)).toBe(true);
  });

  test("pooled sizes are distinct zeroed shared buffers, touched by the helper ahead of use", async () => {
    const seen = new Set<ArrayBufferLike>();
    const before = helperStats().touched;
    for (let i = 0; i < 6; i++) {
      const b = freshBuffer(MIB + 4096);
      expect(b).toBeInstanceOf(SharedArrayBuffer);
      expect(b.byteLength).toBe(MIB + 4096);
      expect(allZero(b)).toBe(true);
      expect(seen.has(b)).toBe(false); // never handed out twice
      seen.add(b);
      new Uint8Array(b).fill(9); // the caller owns it: writes must not leak into later buffers
    }
    const stats = helperStats();
    expect(stats.running).toBe(true);
    expect(stats.pooled).toBeGreaterThanOrEqual(SPARES);
    // Each buffer handed out was replaced by one posted to the helper: 2 spares + 6 replacements.
    await whenTouched(before + SPARES + 5);
    const later = freshBuffer(MIB + 4096);
    expect(seen.has(later)).toBe(false);
    expect(allZero(later)).toBe(true); // the helper's touches leave a buffer zero
  });

  test("the helper never changes bytes the writer wrote, whatever the interleaving", async () => {
    const rng = new Prng(11);
    const buffers: { b: Uint8Array; want: Uint8Array }[] = [];
    const start = helperStats().touched;
    for (let round = 0; round < 40; round++) {
      const sab = new SharedArrayBuffer(MIB);
      expect(touchForTest(sab)).toBe(true);
      // Write at once, racing the helper: the first byte of every page (where it touches) and
      // random bytes elsewhere, some pages left zero.
      const b = new Uint8Array(sab);
      for (let p = 0; p < MIB; p += 4096) {
        if (rng.int(4) === 0) continue;
        b[p] = 1 + rng.int(255);
        b[p + 1 + rng.int(4095)] = 1 + rng.int(255);
      }
      buffers.push({ b, want: b.slice() });
    }
    await whenTouched(start + 40);
    for (const { b, want } of buffers) expect(Buffer.compare(b, want)).toBe(0);
  });

  test("plain buffers come pre-touched from the helper, transferred: zeroed, whole, ours alone", async () => {
    const size = 311_296 + 8 * 1024; // a size no other test asks for
    expect(freshPlainBuffer(POOLED_MIN_BYTES - 8).byteLength).toBe(POOLED_MIN_BYTES - 8);
    const seen = new Set<ArrayBuffer>();
    const before = helperStats();
    for (let round = 0; round < 8; round++) {
      const b = freshPlainBuffer(size);
      expect(b).toBeInstanceOf(ArrayBuffer);
      expect(b.byteLength).toBe(size); // not detached
      expect(allZero(b)).toBe(true);
      expect(seen.has(b)).toBe(false);
      seen.add(b);
      new Uint8Array(b).fill(7); // ours to write: nothing else sees or changes it
      await new Promise((r) => setTimeout(r, 20)); // the helper answers in the meantime
    }
    const after = helperStats();
    // The first request finds nothing ready; later ones find what the helper sent.
    expect(after.plainHits - before.plainHits).toBeGreaterThanOrEqual(5);
    expect(after.plainHits + after.plainMisses - before.plainHits - before.plainMisses).toBe(8);
    for (const b of seen) expect(new Uint8Array(b).every((x) => x === 7)).toBe(true);
  });

  test("plain buffers of a new size are pooled after four other sizes: the size asked for least recently makes room", async () => {
    // Four sizes no other test asks for, then a fifth: it must come pre-touched too.
    const base = 311_296 + 16 * 1024;
    for (let k = 0; k < 4; k++) freshPlainBuffer(base + 4096 * k);
    const size = base + 4096 * 4;
    const before = helperStats();
    for (let round = 0; round < 8; round++) {
      expect(freshPlainBuffer(size).byteLength).toBe(size);
      await new Promise((r) => setTimeout(r, 20));
    }
    const after = helperStats();
    expect(after.plainHits - before.plainHits).toBeGreaterThanOrEqual(5);
  });

  test("turned off, every size is a plain ArrayBuffer", () => {
    setHelperThread({ warm: false });
    expect(freshBuffer(MIB)).toBeInstanceOf(ArrayBuffer);
    expect(helperStats().pooled).toBe(0);
    const hits = helperStats().plainHits + helperStats().plainMisses;
    expect(freshPlainBuffer(MIB).byteLength).toBe(MIB);
    expect(helperStats().plainHits + helperStats().plainMisses).toBe(hits); // not asked at all
  });

  test("a B+tree on pooled arena chunks reads back every record", () => {
    const rng = new Prng(3);
    const tree = new BPlusTree(compareBytes, 64, 24);
    const model = new Map<string, Uint8Array>();
    for (let i = 0; i < 40_000; i++) {
      const key = new Uint8Array(16);
      for (let j = 0; j < 16; j++) key[j] = rng.int(256);
      const value = new Uint8Array(100).fill(i & 0xff);
      value[0] = i >>> 8;
      tree.upsert(key, value, i + 1, KIND_PUT, 0);
      model.set(Buffer.from(key).toString("hex"), value);
    }
    expect(tree.chunkBytes.some((c) => c.buffer instanceof SharedArrayBuffer)).toBe(true);
    const slot = newSlot();
    for (const [hex, value] of model) {
      expect(tree.get(Uint8Array.from(Buffer.from(hex, "hex")), slot)).toBe(true);
      expect(slot.value).toEqual(value);
    }
    const c = tree.cursor(false);
    let n = 0;
    let prev: Uint8Array | undefined;
    while (c.next()) {
      if (prev !== undefined) expect(compareBytes(prev, c.key)).toBeLessThan(0);
      prev = c.key.slice();
      n++;
    }
    expect(n).toBe(model.size);
  });
});

describe("values handed out never share memory", () => {
  test("bytes values and custom codecs see plain ArrayBuffers, while the arena is shared", async () => {
    let decoded = 0;
    let shared = 0;
    const ks = defineKeyspace({
      key: "<u32be>",
      value: {
        id: "tagged",
        encode: (v: Uint8Array) => v,
        decode: (b: Uint8Array) => {
          decoded++;
          if (!(b.buffer instanceof ArrayBuffer)) shared++;
          return b.slice();
        },
      },
    });
    const raw = defineKeyspace({ key: "<u32be>", value: "bytes" });
    const fs = memoryFileSystem();
    const a = await ZoneTree.open({ dir: "/a", keyspace: ks, fs, maintenance: "manual" });
    const b = await ZoneTree.open({ dir: "/b", keyspace: raw, fs, maintenance: "manual" });
    const N = 30_000; // ~3.5 MB of values: full-size (pooled) arena chunks
    const value = (i: number) => new Uint8Array(100).fill(i & 0xff);
    for (let i = 0; i < N; i += 1000) {
      const ops = [];
      for (let j = i; j < i + 1000; j++) ops.push({ put: j, value: value(j) });
      a.batch(ops);
      b.batch(ops);
    }
    for (const [k, v] of a.range({})) expect(v).toEqual(value(k));
    expect(a.get(N - 1)).toEqual(value(N - 1));
    for (const [k, v] of b.range({ gte: N - 5000 })) {
      expect(v.buffer).toBeInstanceOf(ArrayBuffer);
      expect(v).toEqual(value(k));
    }
    expect(b.get(N - 2)!.buffer).toBeInstanceOf(ArrayBuffer);
    expect(decoded).toBeGreaterThanOrEqual(N + 1);
    expect(shared).toBe(0);
    await a.close();
    await b.close();
  });
});
