/**
 * A merged tree of the peer benchmark's counter data: `bun bench/merged_tree_bench.ts [n]`
 * (default 1,000,000; also `deno run -A`). Loads n 16-byte big-endian counter keys with 100-byte
 * random values in batches of 1,000 (merging as it goes, maintenance manual, no change-feed
 * retention unless RET=<bytes>), merges everything, then prints the directory's bytes per file
 * and three rounds of 300,000 random gets (default 64 MiB block cache) and full forward and
 * reverse scans. Environment: BLOCK=<bytes> (blockSizeBytes), CACHE=<bytes> (blockCacheMaxBytes).
 * Each round also prints the block-cache misses per get and the file reads behind them (count,
 * µs each, bytes each), timed around the provider's `read`.
 */
import { defineKeyspace, type FileSystem, localFileSystem, ZoneTree } from "../mod.ts";
import { counterData, counterKeys } from "./peers/data.ts";
import { Prng } from "../src/util/prng.ts";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
const n = Number(process.argv[2] ?? 1_000_000);
const { keys, values } = counterData(n, 100, 1);
const dir = mkdtempSync(join(tmpdir(), "zt-merged-"));
/** File reads since the last round: count, milliseconds, bytes. */
const reads = { n: 0, ms: 0, bytes: 0 };
/** The local provider, with every handle's `read` timed into `reads`. */
function timedReads(): FileSystem {
  const fs = localFileSystem();
  const openFile = fs.openFile.bind(fs);
  fs.openFile = (path, options) => {
    const h = openFile(path, options);
    const read = h.read.bind(h);
    h.read = (buf, position, length) => {
      const t = performance.now();
      const got = read(buf, position, length);
      reads.ms += performance.now() - t;
      reads.n++;
      reads.bytes += got;
      return got;
    };
    return h;
  };
  return fs;
}
const tree = await ZoneTree.open({ dir, fs: timedReads(), keyspace: defineKeyspace({ key: "<bytes:16>", value: "bytes" }), maintenance: "manual", changeFeedRetentionBytes: Number(process.env.RET ?? 0), ...(process.env.BLOCK ? { blockSizeBytes: Number(process.env.BLOCK) } : {}), ...(process.env.CACHE ? { blockCacheMaxBytes: Number(process.env.CACHE) } : {}) });
for (let b = 0; b < n; b += 1000) {
  const ops = [];
  for (let i = b; i < Math.min(n, b + 1000); i++) ops.push({ put: keys[i], value: values[i] });
  tree.batch(ops);
  if (tree.stats().readOnlySegmentsCount > 0) await tree.maintenance.merge();
}
tree.maintenance.moveMutableSegmentForward();
await tree.maintenance.merge();
await tree.flush();
let total = 0; const files: string[] = [];
for (const f of readdirSync(dir)) { const s = statSync(join(dir, f)).size; total += s; files.push(`${f}=${(s / 1e6).toFixed(1)}`); }
console.log("disk MB", (total / 1e6).toFixed(1), files.join(" "));
const prng = new Prng(3);
const present = counterKeys(Array.from({ length: 300000 }, () => prng.u32() % n));
for (let r = 0; r < 3; r++) {
  reads.n = reads.ms = reads.bytes = 0;
  let t = performance.now();
  for (const k of present) if (tree.get(k) === undefined) throw new Error("miss");
  const g = (performance.now() - t) * 1000 / present.length;
  const perRead = reads.n === 0 ? "" : `, ${(reads.ms * 1000 / reads.n).toFixed(2)} us and ${(reads.bytes / reads.n / 1e3).toFixed(1)} KB each`;
  console.log(`gets: ${(reads.n / present.length).toFixed(2)} file reads per get${perRead}`);
  t = performance.now(); let c = 0;
  for (const _ of tree.range({})) c++;
  const s = performance.now() - t;
  t = performance.now();
  for (const _ of tree.range({ reverse: true })) c++;
  const rs = performance.now() - t;
  console.log(`get ${g.toFixed(2)} us  scan ${s.toFixed(0)} ms  rev ${rs.toFixed(0)} ms cache ${(tree.stats().blockCacheBytes / 1e6).toFixed(0)}MB`);
}
await tree.close();
rmSync(dir, { recursive: true, force: true });
