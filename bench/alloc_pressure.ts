/**
 * What a reader's allocations cost while a large tree is held in memory: times 1,000,000
 * allocations of 100-byte arrays (the value copies a scan or `get` hands out, here with nothing
 * else around them) and counts the minor page faults, before any tree exists, while a tree of
 * `N` records (16-byte keys, 100-byte values, loaded without yielding, so they stay in its
 * in-memory segments) is open, and after it is closed.
 *
 *   bun bench/alloc_pressure.ts              # N=1000000
 *   N=250000 bun bench/alloc_pressure.ts
 *   STATS=1 bun bench/alloc_pressure.ts      # also the JS heap's size with the tree open
 *
 * Seen in Bun 1.4.5 on the 2-core VM (2026-12-06), rep 2 of 3: no tree 113 ms and ~3k page
 * faults per million; 1M-record tree open 438 ms and ~37k faults; after close 119 ms and ~4k.
 * By tree size (records: ms, faults): 1k: 122, 2k; 60k: 205, 11k; 150k: 246, 20k; 250k: 408,
 * 31k. The faults grow with the JS heap (`STATS=1` prints it: 27 MB at 60k records, 70 MB at
 * 250k, 210-250 MB at 1M, nearly all of it the tree's buffers, counted as the heap's extra memory)
 * and stop growing once a million allocations fit in one young-generation cycle: the collector's
 * budget between collections grows with the heap, so the nursery runs through fresh memory and
 * nearly every new page of it faults. A full scan of the 1M-record tree takes ~66k faults.
 * Peers whose data lives outside the JS heap (lmdb-js, bun:sqlite, classic-level) allocate
 * their results in a small heap.
 */
import { defineKeyspace, ZoneTree } from "../mod.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Prng } from "../src/util/prng.ts";

const N = Number(process.env.N ?? 1_000_000);
const ALLOCS = 1_000_000;
const bun = (globalThis as { Bun?: { gc(full: boolean): void } }).Bun;
const src = new Uint8Array(100).fill(7);
let sink: unknown;

/** Time and page faults of `ALLOCS` fresh 100-byte copies, each put in a pair as a scan does. */
function allocate(label: string): void {
  for (let rep = 0; rep < 3; rep++) {
    bun?.gc(true);
    const f0 = process.resourceUsage().minorPageFault;
    const t = performance.now();
    for (let i = 0; i < ALLOCS; i++) {
      const out = new Uint8Array(100);
      for (let j = 0; j < 100; j++) out[j] = src[j];
      sink = [i, out];
    }
    const ms = performance.now() - t;
    const faults = process.resourceUsage().minorPageFault - f0;
    console.log(`${label.padEnd(24)} rep ${rep}: ${ms.toFixed(0)} ms, ${faults} page faults`);
  }
}

allocate("no tree");
const dir = mkdtempSync(join(tmpdir(), "zt-alloc-"));
const tree = await ZoneTree.open({
  dir,
  keyspace: defineKeyspace({ key: "<bytes:16>", value: "bytes" }),
});
const prng = new Prng(3);
const value = new Uint8Array(100);
for (let b = 0; b < N; b += 1000) {
  const ops = [];
  for (let j = 0; j < 1000 && b + j < N; j++) {
    const key = new Uint8Array(16);
    new DataView(key.buffer).setUint32(12, prng.u32());
    ops.push({ put: key, value });
  }
  tree.batch(ops);
}
if (process.env.STATS && bun !== undefined) {
  const { heapStats } = await import("bun:jsc");
  bun.gc(true);
  const h = heapStats() as { heapSize: number; extraMemorySize?: number };
  const mb = (n = 0) => (n / 2 ** 20).toFixed(0);
  console.log(`JS heap ${mb(h.heapSize)} MB, of it extra memory ${mb(h.extraMemorySize)} MB`);
}
allocate(`tree of ${N} open`);
await tree.close();
allocate("after close");
rmSync(dir, { recursive: true, force: true });
if (sink === undefined) throw new Error("unreachable");
