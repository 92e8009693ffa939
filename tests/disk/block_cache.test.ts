/**
 * The block cache (src/disk/block_cache.ts): bounded in bytes, CLOCK replacement (a block read
 * since the hand last passed survives one more pass), replace in place, dropSegment, and a long
 * random run checked against a model of what it must hold.
 */
import { describe, expect, test } from "bun:test";
import { defineKeyspace, memoryFileSystem, ZoneTree } from "../../mod.ts";
import { BlockCache } from "../../src/disk/block_cache.ts";
import { Prng } from "../../src/util/prng.ts";

const blk = (sizeBytes: number) => ({ sizeBytes });

test("never exceeds its capacity; a block larger than the capacity is not cached", () => {
  const c = new BlockCache(1000);
  for (let i = 0; i < 50; i++) {
    c.set(1, i, blk(300));
    expect(c.sizeBytes).toBeLessThanOrEqual(1000);
  }
  expect(c.blockCount).toBe(3);
  c.set(2, 0, blk(1001));
  expect(c.peek(2, 0)).toBeUndefined();
  expect(c.sizeBytes).toBe(900);
});

test("a block read since the hand last passed gets a second chance; unread ones go first", () => {
  const c = new BlockCache(400);
  for (let i = 0; i < 4; i++) c.set(1, i, blk(100));
  expect(c.get(1, 0)).toBeDefined(); // referenced
  c.set(1, 4, blk(100)); // evicts the first unreferenced block: 1
  expect(c.peek(1, 0)).toBeDefined();
  expect(c.peek(1, 1)).toBeUndefined();
  expect(c.peek(1, 4)).toBeDefined();
  c.set(1, 5, blk(100)); // the hand passed 0 and cleared it; next unreferenced is 2
  expect(c.peek(1, 2)).toBeUndefined();
  expect(c.peek(1, 0)).toBeDefined();
  expect(c.hits).toBe(1);
});

test("replacing a block adjusts the size; dropSegment forgets only that segment; clear forgets all", () => {
  const c = new BlockCache(10_000);
  c.set(1, 0, blk(100));
  c.set(1, 0, blk(250));
  expect([c.sizeBytes, c.blockCount]).toEqual([250, 1]);
  for (let i = 1; i < 10; i++) c.set(2, i, blk(10));
  c.set(3, 1, blk(5));
  c.dropSegment(2);
  expect([c.sizeBytes, c.blockCount]).toEqual([255, 2]);
  expect(c.peek(2, 3)).toBeUndefined();
  c.set(2, 3, blk(7)); // reuses a freed slot
  expect(c.peek(2, 3)?.sizeBytes).toBe(7);
  c.clear();
  expect([c.sizeBytes, c.blockCount, c.peek(1, 0)]).toEqual([0, 0, undefined]);
});

test("a long random run keeps size = sum of held blocks, within capacity, and hits only what it holds", () => {
  const r = new Prng(77);
  const c = new BlockCache(50_000);
  const held = new Map<string, number>(); // model of what peek must return
  for (let step = 0; step < 50_000; step++) {
    const seg = r.int(4);
    const b = r.int(300);
    const op = r.int(10);
    if (op < 5) {
      // Evicted since the model last caught up is allowed; anything returned must be current.
      const got = c.get(seg, b);
      if (got !== undefined) expect(got.sizeBytes).toBe(held.get(`${seg}/${b}`)!);
    } else if (op < 9) {
      const size = 1 + r.int(4000);
      c.set(seg, b, blk(size));
      held.set(`${seg}/${b}`, size);
    } else if (r.int(50) === 0) {
      c.dropSegment(seg);
      for (const k of [...held.keys()]) if (k.startsWith(`${seg}/`)) held.delete(k);
    }
    // Evictions: forget in the model whatever the cache no longer holds (checked by peek).
    if (step % 97 === 0) {
      let sum = 0;
      for (const [k, size] of [...held]) {
        const [s, bn] = k.split("/").map(Number);
        const p = c.peek(s, bn);
        if (p === undefined) held.delete(k);
        else {
          expect(p.sizeBytes).toBe(size);
          sum += size;
        }
      }
      expect(c.sizeBytes).toBe(sum);
      expect(c.blockCount).toBe(held.size);
      expect(c.sizeBytes).toBeLessThanOrEqual(50_000);
    }
  }
});

describe("buffers of dropped blocks are reused, never under a cursor", () => {
  test("cursors on cached blocks read their records while point reads churn a tiny cache", async () => {
    const ks = defineKeyspace({ key: "<u32be>", value: "bytes" });
    // 1 KiB blocks and a cache of about four of them: every read evicts.
    const tree = await ZoneTree.open({
      dir: "/db",
      keyspace: ks,
      fs: memoryFileSystem(),
      maintenance: "manual",
      blockSizeBytes: 1024,
      blockCacheMaxBytes: 4 * 1300,
    });
    const n = 20_000;
    const valueOf = (i: number) => new Uint8Array(24).fill(i % 251);
    for (let i = 0; i < n; i += 1000) {
      tree.batch(Array.from({ length: 1000 }, (_, j) => ({ put: i + j, value: valueOf(i + j) })));
    }
    tree.maintenance.moveMutableSegmentForward();
    await tree.maintenance.merge();
    const rng = new Prng(0xb10c);
    // Bounded ranges read through the cache (their blocks are cached and pinned); the full
    // scans peek at cached blocks. Point reads in between load and evict blocks all the time.
    const ranges = [
      tree.range({ gte: 0, lt: n }),
      tree.range({ gte: 5000, lt: n, reverse: true }),
      tree.range({}),
      tree.range({ reverse: true, limit: n }),
    ];
    const next = [0, n - 1, 0, n - 1];
    const step = [1, -1, 1, -1];
    for (let round = 0; round < n; round++) {
      for (let r = 0; r < ranges.length; r++) {
        const it = ranges[r].next();
        if (it.done) continue;
        const [k, v] = it.value;
        expect(k).toBe(next[r]);
        expect(v[0]).toBe(k % 251);
        expect(v[23]).toBe(k % 251);
        next[r] += step[r];
        // Reuse the cache hard between cursor steps.
        for (let g = 0; g < 3; g++) {
          const key = rng.int(n);
          expect(tree.get(key)![5]).toBe(key % 251);
        }
      }
    }
    expect(next).toEqual([n, 4999, n, -1]);
    await tree.close();
  });
});
