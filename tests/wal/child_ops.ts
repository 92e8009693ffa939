// The deterministic op stream of the child-process crash test: op contents and batch sizes are
// functions of the opIndex alone, so a parent can check what a killed child left behind.
import { Prng } from "../../src/util/prng.ts";
import type { WalOp } from "../../src/wal/wal_format.ts";

/** The op written at `opIndex`. */
export function opAt(opIndex: number): WalOp {
  const prng = new Prng(opIndex);
  const key = prng.bytes(4 + prng.int(12));
  const half = prng.bytes(prng.int(60));
  return {
    kind: prng.int(10) === 0 ? 1 : 0,
    key,
    value: new Uint8Array([...half, ...half]),
    expiresAt: 0,
  };
}

/** How many ops the append that starts at `opIndex` writes (a batch when more than one). */
export function batchSizeAt(opIndex: number): number {
  return opIndex % 3 === 0 ? 1 + (opIndex % 5) : 1;
}
