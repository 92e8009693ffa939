import { afterEach, describe, expect, test } from "bun:test";
import { defineKeyspace, memoryFileSystem, ZoneTree } from "../../mod.ts";
import { KIND_PUT, newSlot } from "../../src/iter/record.ts";
import { BPlusTree, nextArenaChunk } from "../../src/memory/bplus_tree.ts";
import {
  freshPlainBuffer,
  helperStats,
  POOLED_MIN_BYTES,
  setHelperThread,
  SIZES_MAX,
} from "../../src/util/helper_thread.ts";
import { compareBytes } from "../../src/util/bytes.ts";
import { Prng } from "../../src/util/prng.ts";

const MIB = 1 << 20;
const allZero = (b: ArrayBufferLike) => new Uint8Array(b).every((x) => x === 0);

afterEach(() => setHelperThread({ warm: true }));

describe("helper thread: pre-touched buffers", () => {
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

  test("plain buffers of a new size are pooled after as many other sizes as are kept: the size asked for least recently makes room", async () => {
    // SIZES_MAX sizes no other test asks for, then one more: it must come pre-touched too.
    const base = 311_296 + 16 * 1024;
    for (let k = 0; k < SIZES_MAX; k++) freshPlainBuffer(base + 4096 * k);
    const size = base + 4096 * SIZES_MAX;
    const before = helperStats();
    for (let round = 0; round < 8; round++) {
      expect(freshPlainBuffer(size).byteLength).toBe(size);
      await new Promise((r) => setTimeout(r, 20));
    }
    const after = helperStats();
    expect(after.plainHits - before.plainHits).toBeGreaterThanOrEqual(5);
  });

  test("full-size arena chunks, and only those, are asked of the helper", () => {
    const asked = () => helperStats().plainHits + helperStats().plainMisses;
    let before = asked();
    const chunk = nextArenaChunk(MIB, 100);
    expect(chunk.length).toBe(MIB);
    expect(chunk.buffer).toBeInstanceOf(ArrayBuffer);
    expect(asked() - before).toBe(1);
    before = asked();
    expect(nextArenaChunk(4096, 100).length).toBe(8192); // small chunks double, fresh
    expect(nextArenaChunk(MIB, 3 * MIB).length).toBe(3 * MIB); // a record of its own
    expect(asked() - before).toBe(0);
  });

  test("turned off, every size is a fresh buffer and the helper is not asked", () => {
    setHelperThread({ warm: false });
    expect(helperStats().pooled).toBe(0);
    const hits = helperStats().plainHits + helperStats().plainMisses;
    expect(freshPlainBuffer(MIB).byteLength).toBe(MIB);
    expect(helperStats().plainHits + helperStats().plainMisses).toBe(hits); // not asked at all
  });

  test("a B+tree on pooled arena chunks (plain, unshared) reads back every record", () => {
    const rng = new Prng(3);
    const asked = () => helperStats().plainHits + helperStats().plainMisses;
    const before = asked();
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
    expect(tree.chunkBytes.filter((c) => c.byteLength === MIB).length).toBeGreaterThanOrEqual(3);
    for (const c of tree.chunkBytes) expect(c.buffer).toBeInstanceOf(ArrayBuffer);
    expect(asked()).toBeGreaterThan(before);
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
  test("bytes values and custom codecs see plain ArrayBuffers of their own", async () => {
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
