/**
 * Keeps the garbage collector's young generation small in Bun while the engine hands out many
 * short-lived objects: the key and value copies of a scan, a `get`'s value.
 *
 * Why: in JavaScriptCore the bytes allowed between two young-generation collections grow with
 * the heap, and the heap counts array-buffer memory, so a tree holding a few hundred MB in its
 * in-memory segments lets 150-250 MB of garbage pile up between collections, and that memory
 * comes to the process fresh each cycle: nearly every 4 KiB of it costs a page fault. Measured
 * on the 2-core VM: 1,000,000 100-byte copies took ~450 ms
 * and ~52k faults beside 200 MB of live buffers against ~70 ms and ~2k without them; a full
 * scan of a 1M-record in-memory tree took ~84k faults. A young-generation collection after
 * every {@link PACE_BYTES} of such allocation finds little alive (the caller's loop dropped it)
 * and lets the next allocations reuse pages that are still mapped. Measured: 1M copies beside
 * 200 MB of buffers in ~110 ms with a collection every ~15 MB (~60 ms every ~3 MB); in the peer
 * harness 4 and 16 MiB did the same (scans 1.5-2.0M records/s against 1.0-1.4M unpaced, random
 * gets 360-510k against 340-390k). 16 MiB is above the collector's own budget for a small heap
 * (6-9 MB seen), so a process without a large tree sees at most one extra collection for every
 * two of its own.
 * `bench/alloc_pressure.ts` shows the cost that this avoids.
 *
 * Only in Bun (through `bun:jsc`'s `edenGC`, reached with `import.meta.require`); elsewhere
 * {@link pace} does nothing: V8's young generation has a fixed, small size. Objects the caller
 * keeps are not copied or freed by it (the collector does not move objects); they are marked
 * once, as they would be at the next collection anyway.
 *
 * Called by the read paths that return copies (`tree_engine.ts` for point reads,
 * `api/tree_iterator.ts` for ranges and for a `TreeIterator`'s keys and values), and by
 * `ZoneTree.batch` for its ops: the caller made an array of op objects (as a rule with their
 * keys and values) for the call, garbage once the batch is written. Measured on the 2-core VM,
 * 1M 16-byte keys with 100-byte values in batches of 1,000 (the peer harness's `seq-insert`,
 * first load of a process; `bun bench/batch_load.ts` against `PACE=0`, 8 alternating
 * processes): ~48k page faults against ~58k unpaced, median 1.46M records/s against 1.33M. Not
 * by single writes (`upsert` and the like): the engine allocates next to nothing per record (keys and values are copied into
 * arenas), and pacing by the bytes written only added collections to `seq-insert-single`.
 * Leaf module: imports nothing.
 *
 * @module
 */

/** Bytes of short-lived allocation between two collections this module asks for. */
export const PACE_BYTES = 16 << 20;

/**
 * Estimated bytes of the objects of one copy or decoded value handed out (a point read's value,
 * an iterator's value or raw key), counted with its length.
 */
export const COPY_OVERHEAD_BYTES = 64;

/** `bun:jsc`'s young-generation collection, or null where there is none (not Bun). */
type EdenGc = () => void;
let edenGc: EdenGc | null | undefined;
let pending = 0;

function findEdenGc(): EdenGc | null {
  try {
    const bun = (globalThis as { Bun?: unknown }).Bun;
    const req = (import.meta as unknown as { require?: (id: string) => unknown }).require;
    if (bun === undefined || typeof req !== "function") return null;
    const gc = (req("bun:jsc") as { edenGC?: unknown }).edenGC;
    return typeof gc === "function" ? gc as EdenGc : null;
  } catch {
    return null;
  }
}

/**
 * Counts `bytes` of short-lived allocation made for a caller (copies handed out, with their
 * objects' overhead) and runs a young-generation collection each time the count passes
 * {@link PACE_BYTES}.
 */
export function pace(bytes: number): void {
  pending += bytes;
  if (pending < PACE_BYTES) return;
  pending = 0;
  if (edenGc === undefined) edenGc = findEdenGc();
  if (edenGc !== null) edenGc();
}

/**
 * Turns pacing off (`false`) or back on (`true`: the runtime's collector, if any; or the given
 * `collector`, which tests count), and clears the bytes counted. Returns whether pacing was on.
 * For measurements and tests.
 */
export function setGcPacing(on: boolean, collector?: () => void): boolean {
  if (edenGc === undefined) edenGc = findEdenGc();
  const was = edenGc !== null;
  edenGc = on ? collector ?? findEdenGc() : null;
  pending = 0;
  return was;
}
