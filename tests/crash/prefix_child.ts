/**
 * Child of `prefix_kill.test.ts`: writes ascending `<u32be>` keys 0, 1, 2, ... in batches to a
 * tree in "async-compressed" mode with small segments (so its WAL rotates every few MiB), in
 * bursts that never yield to the event loop and in stretches that yield after every batch, until
 * it is killed. Prints `READY` once writing starts and `FLUSHED <n>` each time a `flush()` that
 * was called after key n-1 resolved (keys below n are durable), with the number of WAL syncs
 * started on the helper thread so far.
 *   bun tests/crash/prefix_child.ts <dir> <seed> [<segment MiB>, default 3-6 by the seed]
 */
import process from "node:process";
import { defineKeyspace, type FileSystem, ZoneTree } from "../../mod.ts";
import { helperStats } from "../../src/util/helper_thread.ts";
import { Prng } from "../../src/util/prng.ts";

export const prefixKeyspace = defineKeyspace({ key: "<u32be>", value: "bytes" });

/** The value stored under key `i` (the parent checks survivors against it). */
export function prefixValue(i: number): Uint8Array {
  const v = new Uint8Array(96);
  for (let j = 0; j < v.length; j++) v[j] = (i * 31 + j * 7) & 0xff;
  return v;
}

/**
 * Opens the tree at `dir` and returns m if it holds exactly keys 0..m-1 (distinct naturals: m of
 * them, the largest m-1), else throws naming the gap. Values are spot-checked.
 */
export async function survivingPrefix(dir: string, fs?: FileSystem): Promise<number> {
  const tree = await ZoneTree.open({ dir, keyspace: prefixKeyspace, fs, maintenance: "manual" });
  try {
    const m = tree.count();
    let last = -1;
    for (const [key] of tree.range({ reverse: true, limit: 1 })) last = key;
    if (last !== m - 1) throw new Error(`${m} keys survived, but the largest is ${last}`);
    for (let i = 0; i < m; i += 997) {
      const v = tree.get(i);
      if (v === undefined || !prefixValue(i).every((x, j) => v[j] === x) || v.length !== 96) {
        throw new Error(`key ${i} has a wrong value`);
      }
    }
    return m;
  } finally {
    await tree.close();
  }
}

if (import.meta.main) {
  const [dir, seedText, segmentMiB] = process.argv.slice(2);
  const prng = new Prng(Number(seedText));
  const tree = await ZoneTree.open({
    dir,
    keyspace: prefixKeyspace,
    wal: "async-compressed",
    mutableSegmentMaxBytes: (segmentMiB ? Number(segmentMiB) : 3 + prng.int(4)) << 20,
  });
  let next = 0;
  process.stdout.write("READY\n");
  for (;;) {
    const yielding = prng.int(2) === 0;
    for (let b = 1 + prng.int(30); b > 0; b--) {
      const ops = [];
      for (let i = 1 + prng.int(2000); i > 0; i--, next++) {
        ops.push({ put: next, value: prefixValue(next) });
      }
      tree.batch(ops);
      if (yielding) await new Promise((r) => setTimeout(r, prng.int(3)));
    }
    if (prng.int(8) === 0) {
      const n = next;
      await tree.flush();
      process.stdout.write(`FLUSHED ${n} ${helperStats().syncsStarted}\n`);
    }
  }
}
