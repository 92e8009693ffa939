/**
 * What a first touch of memory costs on this machine: fills 116 MB of fresh 1 MiB arrays (the
 * arena a million 16-byte keys with 100-byte values take) and then refills one array the same
 * number of times, printing time and minor page faults for each. In a VM whose host backs guest
 * memory lazily, the fresh fill can cost 10x the refill; every engine pays it for new memory.
 *
 *   bun bench/first_touch.ts
 */
const RECORD = new Uint8Array(116).fill(7);
const CHUNK = 1 << 20;
const N = 1_000_000;

function fill(fresh: boolean): { ms: number; faults: number; chunks: number } {
  const f0 = process.resourceUsage().minorPageFault;
  const start = performance.now();
  const kept: Uint8Array[] = [];
  let chunk = new Uint8Array(CHUNK);
  let used = 0;
  for (let i = 0; i < N; i++) {
    if (used + RECORD.length > CHUNK) {
      if (fresh) {
        kept.push(chunk);
        chunk = new Uint8Array(CHUNK);
      }
      used = 0;
    }
    chunk.set(RECORD, used);
    used += RECORD.length;
  }
  const ms = performance.now() - start;
  return { ms, faults: process.resourceUsage().minorPageFault - f0, chunks: kept.length + 1 };
}

for (let run = 1; run <= 3; run++) {
  for (const fresh of [true, false]) {
    const r = fill(fresh);
    console.log(
      `run ${run} ${fresh ? "fresh " : "reused"}: ${r.ms.toFixed(0)} ms, ${r.faults} page faults` +
        (r.faults > 1000 ? ` (${(r.ms * 1000 / r.faults).toFixed(1)} us each, at most)` : "") +
        `, ${r.chunks} MiB arrays`,
    );
  }
}
