// Child process of wal_child.test.ts (not a test). Usage: bun child_writer.ts <path> <mode>
// Recovers the WAL at <path> (replay, cut the torn tail), then appends ops forever. Op contents
// and batch boundaries are a pure function of the opIndex, so the parent can check them.
// Prints "R <lastOpIndex>" after recovery, then "A <opIndex>" once every op up to opIndex is
// acknowledged as durable (sync modes: the append returned; async: a flush resolved).
import { localFileSystem } from "../../src/fs/local_file_system.ts";
import type { WalMode } from "../../src/wal/wal_format.ts";
import { replayWal } from "../../src/wal/wal_reader.ts";
import { WalWriter } from "../../src/wal/wal_writer.ts";
import { batchSizeAt, opAt } from "./child_ops.ts";

const [path, mode] = process.argv.slice(2) as [string, WalMode];
const fs = localFileSystem();
let wal: WalWriter;
let next = 1;
if (fs.stat(path) === undefined) {
  wal = WalWriter.create(fs, path, 1, mode);
} else {
  const r = replayWal(fs, path, () => {});
  next = r.lastOpIndex + 1 || 1;
  wal = WalWriter.openForAppend(fs, path, mode, r.validLength, 1);
}
process.stdout.write(`R ${next - 1}\n`);

for (;;) {
  const n = batchSizeAt(next);
  if (n === 1) {
    const op = opAt(next);
    wal.appendOne(next, op.kind, op.key, op.value, op.expiresAt);
  } else {
    wal.appendBatch(next, Array.from({ length: n }, (_, i) => opAt(next + i)));
  }
  next += n;
  if (mode === "async-compressed") {
    if (next % 7 === 0) await new Promise((r) => setTimeout(r, 0));
    if (next % 50 < n) {
      await wal.flush();
      process.stdout.write(`A ${next - 1}\n`);
    }
  } else {
    process.stdout.write(`A ${next - 1}\n`);
  }
}
