/**
 * Read benchmark (issues 3 and 4): N records (default 1,000,000) of `<bytes:16>` keys and 100-byte
 * random values (value codec "bytes"), loaded in a seeded random order with `maintenance:
 * "manual"` and `wal: "async-compressed"`, then read in three states:
 *
 *   (a) memory: every record in the mutable segment (one B+tree); also "5 layers": the same
 *       records spread over four read-only segments and the mutable segment;
 *   (b) disk, warm: after `moveMutableSegmentForward()` + `await maintenance.merge()`, with the
 *       default 64 MiB block cache (warmed by one untimed pass) and with a 1 GiB cache that holds
 *       every block;
 *   (c) disk, cold: right after close + reopen (empty block cache; the OS page cache is warm,
 *       this does not drop it).
 *
 * Timed: random `get` of present keys and of missing keys (between two present keys), full
 * forward and reverse `range({})` (decoding keys and values), `keys()`, the reopen of the merged
 * tree, and the disk bytes after the full merge against the raw data size.
 *
 *   bun bench/read_bench.ts [--n 1000000] [--gets 1000000] [--samples 5] [--only regexp]
 *   deno run -A bench/read_bench.ts (same flags)
 *
 * @module
 */
import { defineKeyspace, ZoneTree } from "../mod.ts";
import {
  banner,
  dirBytes,
  flags,
  fmtNs,
  fullGc,
  KEY_BYTES,
  measureManual,
  missingKey,
  presentKey,
  randomValues,
  removeDir,
  RUNTIME,
  schedstat,
  sequentialKeys,
  shuffled,
  startTimer,
  tempDir,
  VALUE_BYTES,
} from "./bench_common.ts";
import { Prng } from "../src/util/prng.ts";

const args = flags({ n: "1000000", gets: "1000000", samples: "5", only: "" });
const N = Number(args.n);
const GETS = Math.min(Number(args.gets), N);
const SAMPLES = Number(args.samples);
const COLD_GETS = Math.min(100_000, GETS);

const keyspace = defineKeyspace({ name: "bench", key: "<bytes:16>", value: "bytes" });
type Tree = ZoneTree<Uint8Array, Uint8Array, Uint8Array>;

const keys = sequentialKeys(N);
const values = randomValues(N, 2);
const order = shuffled(Array.from({ length: N }, (_, i) => i), 1);
const rng = new Prng(3);
const present: Uint8Array[] = [];
const missing: Uint8Array[] = [];
for (let i = 0; i < GETS; i++) present.push(presentKey(rng.int(N)));
for (let i = 0; i < GETS; i++) missing.push(missingKey(rng.int(N)));

/** `--only` is a regular expression matched against workload names. */
const onlyRe = new RegExp(args.only);
const want = (name: string) => args.only === "" || onlyRe.test(name);

async function load(dir: string, layers: number, cache?: number): Promise<Tree> {
  const tree = await ZoneTree.open({
    dir,
    keyspace,
    maintenance: "manual",
    mutableSegmentMaxItemCount: 1e9,
    mutableSegmentMaxBytes: 2 ** 40,
    ...(cache === undefined ? {} : { blockCacheMaxBytes: cache }),
  });
  const per = Math.ceil(N / layers);
  for (let i = 0; i < N; i++) {
    const r = order[i];
    tree.upsert(keys[r], values[r]);
    if ((i + 1) % per === 0 && i + 1 < N) tree.maintenance.moveMutableSegmentForward();
  }
  await tree.flush();
  return tree;
}

async function gets(state: string, tree: Tree, note = ""): Promise<void> {
  for (const [kind, probes] of [["present", present], ["missing", missing]] as const) {
    const name = `get ${kind}, ${state}`;
    if (!want(name)) continue;
    await measureManual(name, probes.length, SAMPLES, () => {
      const stop = startTimer();
      let found = 0;
      for (let i = 0; i < probes.length; i++) if (tree.get(probes[i]) !== undefined) found++;
      const t = stop();
      if (found !== (kind === "present" ? probes.length : 0)) {
        throw new Error(`${name}: found ${found}`);
      }
      return t;
    }, note);
  }
}

async function scans(state: string, tree: Tree): Promise<void> {
  const cases: [string, () => Iterable<unknown>][] = [
    ["range({}) forward", () => tree.range({})],
    ["range({reverse:true})", () => tree.range({ reverse: true })],
    ["keys() forward", () => tree.keys()],
  ];
  for (const [what, make] of cases) {
    const name = `${what}, ${state}`;
    if (!want(name)) continue;
    await measureManual(name, N, Math.min(SAMPLES, 3), () => {
      fullGc();
      const stop = startTimer();
      let n = 0;
      for (const _ of make()) n++;
      const t = stop();
      if (n !== N) throw new Error(`${name}: ${n} records`);
      return t;
    });
  }
}

async function main(): Promise<void> {
  banner(
    `read_bench (${RUNTIME}): N=${N}, ${GETS} gets per sample (cold: first ${COLD_GETS} after reopen)`,
  );
  // (a) memory
  {
    const dir = tempDir("read-mem");
    const tree = await load(dir, 1);
    await gets("memory (1 mutable segment)", tree);
    await scans("memory (1 segment)", tree);
    await tree.close();
    removeDir(dir);
  }
  if (want("5 layers")) {
    const dir = tempDir("read-mem5");
    const tree = await load(dir, 5);
    await gets("memory (5 layers)", tree);
    await scans("memory (5 layers)", tree);
    await tree.close();
    removeDir(dir);
  }
  // (b) disk
  const dir = tempDir("read-disk");
  try {
    let tree = await load(dir, 1);
    tree.maintenance.moveMutableSegmentForward();
    const s0 = schedstat();
    const stop = startTimer();
    await tree.maintenance.merge();
    const mergeNs = stop();
    const s1 = schedstat();
    const mergeOwn = s0 && s1
      ? ` (own ${fmtNs(mergeNs - (s1.waitNs - s0.waitNs))}, CPU ${fmtNs(s1.runNs - s0.runNs)})`
      : "";
    const stats = tree.stats();
    const raw = N * (KEY_BYTES + VALUE_BYTES);
    const files = dirBytes(dir);
    console.log(
      `merge of ${N} records: ${
        fmtNs(mergeNs)
      } wall${mergeOwn}; disk bytes after the full merge: ${stats.diskBytes} ` +
        `(directory ${files}) vs raw ${raw} (${(stats.diskBytes / raw * 100).toFixed(1)}%)`,
    );
    for (let i = 0; i < present.length; i++) tree.get(present[i]); // warm the cache
    await gets(
      "disk, 64 MiB cache warm",
      tree,
      `cache ${(tree.stats().blockCacheBytes / 2 ** 20).toFixed(0)} MiB`,
    );
    await scans("disk", tree);
    await tree.close();

    tree = await ZoneTree.open({
      dir,
      keyspace,
      maintenance: "manual",
      blockCacheMaxBytes: 2 ** 30,
    });
    for (let i = 0; i < present.length; i++) tree.get(present[i]);
    for (let i = 0; i < missing.length; i++) tree.get(missing[i]);
    await gets(
      "disk, 1 GiB cache warm",
      tree,
      `cache ${(tree.stats().blockCacheBytes / 2 ** 20).toFixed(0)} MiB`,
    );
    await tree.close();

    // (c) cold: each sample reopens (untimed) and times the first COLD_GETS gets.
    for (const [kind, probes] of [["present", present], ["missing", missing]] as const) {
      const name = `get ${kind}, disk cold (first ${COLD_GETS} after reopen)`;
      if (!want(name)) continue;
      await measureManual(name, COLD_GETS, SAMPLES, async () => {
        const t = await ZoneTree.open({ dir, keyspace, maintenance: "manual" });
        try {
          const stop = startTimer();
          for (let i = 0; i < COLD_GETS; i++) t.get(probes[i]);
          return stop();
        } finally {
          await t.close();
        }
      });
    }
    for (const withGet of [false, true]) {
      const name = withGet ? "reopen + first get (merged tree)" : "reopen (merged tree)";
      if (!want(name)) continue;
      await measureManual(name, 1, Math.max(SAMPLES, 5), async () => {
        fullGc();
        const stop = startTimer();
        const t = await ZoneTree.open({ dir, keyspace });
        if (withGet && t.get(present[0]) === undefined) throw new Error("reopen lost a record");
        const ns = stop();
        await t.close();
        return ns;
      }, `${N} records`);
    }
  } finally {
    removeDir(dir);
  }
}

await main();
