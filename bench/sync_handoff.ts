/**
 * What handing a WAL frame's sync to another thread costs, by how the caller waits for it:
 * rounds of "write a 116 KB frame, start its `fdatasync`, do some work meanwhile, wait for the
 * sync" (a durable batch of 1,000 records: its frame, and up to ~0.3 ms of work, what applying a
 * sequential batch takes), with the sync
 *
 * - `message`: posted to a Worker (as the engine's sync helper takes it, `helper_thread.ts`),
 *   the caller sleeping in `Atomics.wait` on the answer's cell;
 * - `message+spin`: the same, the caller checking the cell for up to 2 ms before it sleeps
 *   (what the local file handle's ticket does, `local_file_system.ts`);
 * - `ring` / `ring+spin`: the request written to shared memory that the Worker sleeps on with
 *   `Atomics.wait` instead of its event loop (tried for the engine; no faster than `message`
 *   once the caller spins, so not used);
 * - `inline`: done on the caller's thread after the work.
 *
 * Prints microseconds per round, three alternating passes each, with 4, 1 and 0 units of work
 * (~75 us each here). Bun only: under Deno a descriptor is not valid in a Worker (the engine's
 * helper opens the file by path there). The file is `bench-sync-handoff.tmp` in the OS's
 * temporary directory (removed at the end).
 *
 *   bun bench/sync_handoff.ts
 */
import * as fs from "node:fs";
import * as os from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";

const ROUNDS = 1000;
const FRAME = new Uint8Array(116_000).fill(1);
const SLOTS = 64;

const MESSAGE_WORKER = `
const { parentPort } = require("node:worker_threads");
const fs = require("node:fs");
parentPort.on("message", (m) => {
  const cell = new Int32Array(m.cell);
  fs.fdatasyncSync(m.fd);
  Atomics.store(cell, 0, 1);
  Atomics.notify(cell, 0);
});
`;
const RING_WORKER = `
const { workerData } = require("node:worker_threads");
const fs = require("node:fs");
const ring = new Int32Array(workerData.ring);
let seen = 0;
for (;;) {
  const posted = Atomics.load(ring, 0);
  if (posted === seen) { Atomics.wait(ring, 0, seen); continue; }
  for (; seen !== posted; seen = (seen + 1) | 0) {
    const at = 2 + (seen & ${SLOTS - 1}) * 2;
    fs.fdatasyncSync(Atomics.load(ring, at));
    Atomics.store(ring, at + 1, 1);
    Atomics.notify(ring, at + 1);
  }
}
`;

const path = join(os.tmpdir(), "bench-sync-handoff.tmp");
const fd = fs.openSync(path, "w+");
const ring = new Int32Array(new SharedArrayBuffer(4 * (2 + SLOTS * 2)));
const messageWorker = new Worker(MESSAGE_WORKER, { eval: true });
const ringWorker = new Worker(RING_WORKER, { eval: true, workerData: { ring: ring.buffer } });
messageWorker.unref();
ringWorker.unref();
await new Promise((r) => setTimeout(r, 300)); // both Workers up

/** A unit of work: ~75 us of allocation and arithmetic here. */
function work(): number {
  const a: number[] = [];
  let x = 0;
  for (let i = 0; i < 20_000; i++) {
    a.push(i * 1.5);
    x += a[i];
  }
  return x;
}

let posted = 0;
let sink = 0;

function round(how: string, units: number): void {
  fs.writeSync(fd, FRAME, 0, FRAME.length, 0);
  if (how === "inline") {
    for (let u = 0; u < units; u++) sink += work();
    fs.fdatasyncSync(fd);
    return;
  }
  let cell: Int32Array;
  if (how === "message") {
    cell = new Int32Array(new SharedArrayBuffer(8));
    messageWorker.postMessage({ fd, cell: cell.buffer });
  } else {
    const at = 2 + (posted & (SLOTS - 1)) * 2;
    Atomics.store(ring, at, fd);
    Atomics.store(ring, at + 1, 0);
    posted = (posted + 1) | 0;
    Atomics.store(ring, 0, posted);
    Atomics.notify(ring, 0);
    cell = ring.subarray(at + 1, at + 2);
  }
  for (let u = 0; u < units; u++) sink += work();
  if (how.endsWith("+spin")) {
    const until = performance.now() + 2;
    while (Atomics.load(cell, 0) === 0 && performance.now() < until);
  }
  while (Atomics.load(cell, 0) === 0) Atomics.wait(cell, 0, 0, 1000);
}

const ways = ["message", "message+spin", "ring", "ring+spin", "inline"];
for (const units of [4, 1, 0]) {
  const results = new Map<string, string[]>(ways.map((w) => [w, []]));
  for (let pass = 0; pass < 3; pass++) {
    for (const how of ways) {
      const start = performance.now();
      for (let i = 0; i < ROUNDS; i++) round(how, units);
      results.get(how)!.push(((performance.now() - start) / ROUNDS * 1000).toFixed(0));
    }
  }
  console.log(`with ${units} x ~75 us of work per round:`);
  for (const [how, us] of results) console.log(`  ${how.padEnd(10)} ${us.join(" / ")} us per round`);
}
fs.closeSync(fd);
fs.rmSync(path, { force: true });
if (sink === 42) console.log(""); // keeps the work from being optimised away
