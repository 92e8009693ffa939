/**
 * Checksum speed over a 16 KiB block (the default disk block), ns per byte: CRC-32C in
 * JavaScript (WAL frames, metadata, index regions, format-1 blocks), CRC-32 through `node:zlib`
 * (format-2 blocks) and its JavaScript fallback.
 *
 *   bun bench/crc_bench.ts        # or: deno run -A bench/crc_bench.ts
 */
import { crc32, crc32IsNative, crc32Js } from "../src/util/crc32.ts";
import { crc32c } from "../src/util/crc32c.ts";
import { Prng } from "../src/util/prng.ts";

const N = 16 * 1024;
const block = new Prng(1).bytes(N);
const ROUNDS = 20_000;
const time = (f: () => number) => {
  let x = 0;
  const t = performance.now();
  for (let k = 0; k < ROUNDS; k++) x ^= f();
  return { ns: ((performance.now() - t) * 1e6) / (ROUNDS * N), x };
};
console.log(`crc32 native: ${crc32IsNative}`);
for (let r = 0; r < 3; r++) {
  const a = time(() => crc32c(block));
  const b = time(() => crc32(block));
  const c = time(() => crc32Js(block));
  console.log(
    `crc32c (js) ${a.ns.toFixed(3)} ns/B | crc32 ${b.ns.toFixed(3)} ns/B | crc32 (js) ${c.ns.toFixed(3)} ns/B` +
      ` (checksums ${a.x}, ${b.x}, ${c.x})`,
  );
}
