// Measures WalWriter append cost per mode (not a test; run by hand):
//   bun tests/wal/append_cost.bench.ts [local|memory]
// Appends 16-byte keys with 100-byte values (half repeated, so lz4 finds something) and prints
// the cost of appendOne alone and of appends plus the final flush/close (all work included).
import * as nodeFs from "node:fs";
import * as os from "node:os";
import type { FileSystem } from "../../src/fs/file_system.ts";
import { localFileSystem } from "../../src/fs/local_file_system.ts";
import { memoryFileSystem } from "../../src/fs/memory_file_system.ts";
import { Prng } from "../../src/util/prng.ts";
import type { WalMode } from "../../src/wal/wal_format.ts";
import { WalWriter } from "../../src/wal/wal_writer.ts";

const where = process.argv[2] === "memory" ? "memory" : "local";
const prng = new Prng(42);
const KEYS = 4096;
const keys = Array.from({ length: KEYS }, () => prng.bytes(16));
const values = Array.from({ length: KEYS }, () => {
  const half = prng.bytes(50);
  return new Uint8Array([...half, ...half]);
});

function run(mode: WalMode, count: number, fs: FileSystem, dir: string, round: number) {
  const path = `${dir}/${mode}-${round}.wal`;
  const wal = WalWriter.create(fs, path, 1, mode);
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const k = i & (KEYS - 1);
    wal.appendOne(i + 1, 0, keys[k], values[k], 0);
  }
  const t1 = performance.now();
  return { wal, t0, t1 };
}

/** Async mode as an application sees it: bursts of 1000 appends with event-loop turns between. */
async function runYielding(count: number, fs: FileSystem, dir: string) {
  const wal = WalWriter.create(fs, `${dir}/yield.wal`, 1, "async-compressed");
  let inAppend = 0;
  const t0 = performance.now();
  for (let i = 0; i < count; i += 1000) {
    const s = performance.now();
    for (let j = i; j < i + 1000; j++) {
      const k = j & (KEYS - 1);
      wal.appendOne(j + 1, 0, keys[k], values[k], 0);
    }
    inAppend += performance.now() - s;
    await new Promise((r) => setTimeout(r, 0));
  }
  await wal.close();
  const total = performance.now() - t0;
  console.log(
    `${where} async-compressed, yielding every 1000: appendOne ${
      (inAppend * 1e6 / count).toFixed(0)
    } ns/op, ` +
      `wall incl. background compress/write/sync ${(total * 1e6 / count).toFixed(0)} ns/op, file ${
        (wal.sizeBytes / count).toFixed(1)
      } B/op`,
  );
}

const dir = where === "local" ? nodeFs.mkdtempSync(`${os.tmpdir()}/zt-walbench-`) : "/b";
const fs = where === "local" ? localFileSystem() : memoryFileSystem();
fs.mkdirp(dir);
try {
  for (
    const [mode, count] of [["none", 1_000_000], ["async-compressed", 1_000_000], [
      "sync-compressed",
      2000,
    ], ["sync", 2000]] as const
  ) {
    for (let round = 0; round < 3; round++) {
      const { wal, t0, t1 } = run(mode, count, fs, dir, round);
      await wal.close();
      const t2 = performance.now();
      if (round < 2) continue; // warm-up rounds
      const perOp = ((t1 - t0) * 1e6) / count;
      const total = ((t2 - t0) * 1e6) / count;
      console.log(
        `${where} ${mode.padEnd(17)} ${String(count).padStart(8)} ops: appendOne ${
          perOp.toFixed(0).padStart(6)
        } ns/op, ` +
          `with flush+close ${total.toFixed(0).padStart(6)} ns/op, file ${
            (wal.sizeBytes / count).toFixed(1)
          } B/op`,
      );
    }
  }
  for (let round = 0; round < 2; round++) {
    await runYielding(300_000, fs, dir).then(() => fs.remove(`${dir}/yield.wal`));
  }
} finally {
  if (where === "local") nodeFs.rmSync(dir, { recursive: true, force: true });
}
