/**
 * In "async-compressed" mode a crash may lose the newest acknowledged writes, but what survives
 * must be a prefix of the writes: never a later write without an earlier one. Within one WAL the
 * writer keeps that (a frame is written only once every earlier one is synced); this file checks
 * it across the WAL rotation of a segment move, where the old WAL's last buffer and the new
 * WAL's first frames race. A tree on the in-memory provider writes ascending keys in batches,
 * some loops yielding to the event loop and some not, with segments of 3-6 MiB (WALs past the 1 MiB write bound) so it rotates
 * often; after each batch the files are copied twice: as they are (the process was killed: the
 * page cache survives) and cut to what was synced plus a random part of the rest (power loss).
 * Each copy must open with exactly keys 0..m-1 for some m, with every key synced by a `flush`
 * that returned before the copy.
 */
import { expect, test } from "bun:test";
import { type MemoryFileSystem, memoryFileSystem, ZoneTree } from "../../mod.ts";
import { Prng } from "../../src/util/prng.ts";
import { prefixKeyspace as ks, prefixValue as valueOf, survivingPrefix } from "../crash/prefix_child.ts";

const prefixLength = (fs: MemoryFileSystem) => survivingPrefix("/db", fs);

for (const seed of [1, 2, 3]) {
  test(`a crash around WAL rotations leaves a prefix of the writes (seed ${seed})`, async () => {
    const prng = new Prng(seed);
    const fs = memoryFileSystem();
    const tree = await ZoneTree.open({
      dir: "/db",
      keyspace: ks,
      fs,
      wal: "async-compressed",
      mutableSegmentMaxBytes: (3 + prng.int(4)) << 20,
      maintenance: "auto",
    });
    let next = 0;
    let flushed = 0; // every key below this was durable when a flush returned
    let moves = 0;
    tree.events.on("segment-moved", () => moves++);
    let copies = 0;
    for (let round = 0; round < 14; round++) {
      // A burst of batches without yielding (the writer never sees the event loop turn), or
      // with a yield after each batch.
      const batches = 1 + prng.int(30);
      const yielding = prng.int(2) === 0;
      for (let b = 0; b < batches; b++) {
        const size = 1 + prng.int(2000);
        const ops = [];
        for (let i = 0; i < size; i++, next++) ops.push({ put: next, value: valueOf(next) });
        tree.batch(ops);
        if (yielding) await new Promise((r) => setTimeout(r, prng.int(3)));
      }
      if (prng.int(6) === 0) {
        await tree.flush();
        flushed = next;
      }
      const killed = fs.clone();
      const m1 = await prefixLength(killed);
      expect(m1).toBeGreaterThanOrEqual(flushed);
      const powerLoss = fs.clone();
      powerLoss.crash({ keepUnsynced: "random", seed: seed * 1000 + round });
      const m2 = await prefixLength(powerLoss);
      expect(m2).toBeGreaterThanOrEqual(flushed);
      copies += 2;
    }
    await tree.close();
    expect(await prefixLength(fs)).toBe(next);
    expect(moves).toBeGreaterThan(5);
    expect(copies).toBe(28);
  }, 60_000);
}
