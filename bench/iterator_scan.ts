/**
 * A full scan through `tree.iterator()` (reading `key` and `value` at every step) of a tree of
 * 1,000,000 in-memory records (16-byte keys, 100-byte values), three scans per process, each
 * after a full collection: time and minor page faults. With `PACE=0` the engine's collection
 * pacing (`src/util/gc_pacer.ts`) is off, as it was for iterators before edc15cc.
 *
 *   bun bench/iterator_scan.ts
 *   PACE=0 bun bench/iterator_scan.ts
 *
 * Seen in Bun 1.4.5 on the 2-core VM (2026-12-07, 3 alternating processes each): paced 163-227
 * ms and 1-4k faults a scan; unpaced 484-662 ms and 44-50k faults.
 */
import { defineKeyspace, memoryFileSystem, ZoneTree } from "../mod.ts";
import { setGcPacing } from "../src/util/gc_pacer.ts";

if (process.env.PACE === "0") setGcPacing(false);
const gc = (globalThis as { Bun?: { gc(full: boolean): void } }).Bun?.gc;
const tree = await ZoneTree.open({
  dir: "/db",
  fs: memoryFileSystem(),
  keyspace: defineKeyspace({ key: "<bytes:16>", value: "bytes" }),
});
const value = new Uint8Array(100);
for (let b = 0; b < 1000; b++) {
  const ops = [];
  for (let i = 0; i < 1000; i++) {
    const key = new Uint8Array(16);
    new DataView(key.buffer).setUint32(12, b * 1000 + i);
    ops.push({ put: key, value });
  }
  tree.batch(ops);
}
const scans: string[] = [];
for (let r = 0; r < 3; r++) {
  gc?.(true);
  const faults = process.resourceUsage().minorPageFault;
  const t = performance.now();
  using it = tree.iterator();
  let n = 0;
  while (it.next()) {
    it.key;
    it.value;
    n++;
  }
  if (n !== 1_000_000) throw new Error(`scanned ${n} records`);
  const ms = (performance.now() - t).toFixed(0);
  scans.push(`${ms} ms, ${process.resourceUsage().minorPageFault - faults} faults`);
}
console.log(process.env.PACE === "0" ? "unpaced:" : "paced:", scans.join(" | "));
await tree.close();
