/**
 * What an `fdatasync` after a frame costs by where the frame lands (the reason for the sync
 * modes' zeros ahead, `PREALLOC_BYTES` in `src/wal/wal_writer.ts`): 500 rounds of "write a frame,
 * fdatasync", with the frame
 *
 * - `append`: at the end of the file, growing it (the sync also commits the new size and the
 *   block allocation to the filesystem's journal);
 * - `zeroed`: over zeros written and synced beforehand (the sync flushes data only);
 * - `ahead`: at the end of the zeros, with 1 MiB more written after a frame that reaches it
 *   (what the writer does for frames under 256 KiB; the zeros' cost included).
 *
 * Prints microseconds per round for 130-byte, 116 KB and 1 MB frames, three alternating passes
 * each. The file is `bench-wal-prealloc.tmp` in the current directory (so it measures the disk
 * the data would be on; removed at the end).
 *
 *   bun bench/wal_prealloc.ts
 */
import * as fs from "node:fs";

const ROUNDS = 500;
const AHEAD = 1 << 20;
const path = "bench-wal-prealloc.tmp";

function round(how: string, frameBytes: number): number {
  const frame = new Uint8Array(frameBytes).fill(3);
  const zeros = new Uint8Array(AHEAD);
  fs.rmSync(path, { force: true });
  const fd = fs.openSync(path, "w+");
  let zeroed = 0;
  if (how === "zeroed") {
    while (zeroed < ROUNDS * frameBytes) {
      fs.writeSync(fd, zeros, 0, AHEAD, zeroed);
      zeroed += AHEAD;
    }
    fs.fsyncSync(fd);
  }
  const start = performance.now();
  let pos = 0;
  for (let i = 0; i < ROUNDS; i++) {
    fs.writeSync(fd, frame, 0, frameBytes, pos);
    pos += frameBytes;
    if (how === "ahead" && pos >= zeroed) {
      fs.writeSync(fd, zeros, 0, AHEAD, pos);
      zeroed = pos + AHEAD;
    }
    fs.fdatasyncSync(fd);
  }
  const us = (performance.now() - start) / ROUNDS * 1000;
  fs.closeSync(fd);
  fs.rmSync(path, { force: true });
  return us;
}

for (const frameBytes of [130, 116_000, 1_000_000]) {
  const results = new Map<string, string[]>([["append", []], ["zeroed", []], ["ahead", []]]);
  for (let pass = 0; pass < 3; pass++) {
    for (const [how, out] of results) out.push(round(how, frameBytes).toFixed(0));
  }
  console.log(`${frameBytes}-byte frames:`);
  for (const [how, us] of results) console.log(`  ${how.padEnd(7)} ${us.join(" / ")} us per write + fdatasync`);
}
