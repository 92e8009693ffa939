// Shared helpers of the disk segment tests: seeded record generation, a sorted-array model and
// the checks that compare a segment (get, scans, seeks) with it.
import { expect } from "bun:test";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import { type FileSystem, joinPath } from "../../src/fs/file_system.ts";
import { localFileSystem } from "../../src/fs/local_file_system.ts";
import { memoryFileSystem } from "../../src/fs/memory_file_system.ts";
import {
  KIND_DELETE,
  KIND_PUT,
  newSlot,
  type RecordCursor,
  type SegmentReader,
} from "../../src/iter/record.ts";
import { compareBytes } from "../../src/util/bytes.ts";
import type { Prng } from "../../src/util/prng.ts";

/** A record of the model (plain, owned copies). */
export interface Rec {
  key: Uint8Array;
  value: Uint8Array;
  opIndex: number;
  kind: number;
  expiresAt: number;
}

/** What shape of records to generate. */
export interface Shape {
  keyFixedWidth?: number;
  valueFixedWidth?: number;
  /** Values larger than this appear now and then (variable values only). */
  largeValueBytes?: number;
}

/** `n` records with unique keys, sorted, with deletion markers, expiry, empty and large values. */
export function genRecords(rng: Prng, n: number, shape: Shape): Rec[] {
  const seen = new Set<string>();
  const out: Rec[] = [];
  let guard = 0;
  while (out.length < n && guard++ < n * 20) {
    const key = genKey(rng, shape.keyFixedWidth);
    const id = key.join(",");
    if (seen.has(id)) continue;
    seen.add(id);
    out.push({
      key,
      value: genValue(rng, shape),
      opIndex: rng.next() < 0.5 ? rng.int(1000) : rng.int(2 ** 31) * 2 ** 14 + rng.int(2 ** 14),
      kind: rng.next() < 0.1 ? KIND_DELETE : KIND_PUT,
      expiresAt: rng.next() < 0.2 ? 1_700_000_000_000 + rng.int(2 ** 30) : 0,
    });
  }
  out.sort((a, b) => compareBytes(a.key, b.key));
  return out;
}

function genKey(rng: Prng, width: number | undefined): Uint8Array {
  // A small alphabet makes shared prefixes (and neighbours that differ late) common.
  const len = width ?? (rng.next() < 0.02 ? 0 : 1 + rng.int(12));
  const k = new Uint8Array(len);
  for (let i = 0; i < len; i++) k[i] = rng.next() < 0.7 ? 0x61 + rng.int(4) : rng.int(256);
  return k;
}

function genValue(rng: Prng, shape: Shape): Uint8Array {
  let len = shape.valueFixedWidth;
  if (len === undefined) {
    const r = rng.next();
    len = r < 0.1
      ? 0
      : r < 0.12 && shape.largeValueBytes
      ? shape.largeValueBytes + rng.int(shape.largeValueBytes)
      : rng.int(40);
  }
  const v = new Uint8Array(len);
  // Repetitive content so that LZ4 finds matches; a random byte now and then.
  const seed = rng.int(8);
  for (let i = 0; i < len; i++) v[i] = rng.next() < 0.1 ? rng.int(256) : 0x30 + ((i + seed) % 10);
  return v;
}

/** First index in `recs` whose key is >= key (> with strict). */
export function lowerBound(recs: Rec[], key: Uint8Array, strict: boolean): number {
  let lo = 0;
  let hi = recs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareBytes(recs[mid].key, key);
    if (c < 0 || (strict && c === 0)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function sameRecord(c: RecordCursor | Rec, r: Rec, where: string): void {
  if (compareBytes(c.key, r.key) !== 0) {
    expect(`${where}: key ${[...c.key]}`).toBe(`${where}: key ${[...r.key]}`);
  }
  // A cursor's copy equals the record's value and is its own (writing to it changes nothing).
  if ("copyValue" in c && (c as RecordCursor).valid) {
    const copy = c.copyValue();
    if (compareBytes(copy, r.value) !== 0) expect(`${where}: copyValue of ${[...r.key]}`).toBe("equal");
    if (copy.length > 0) {
      copy[0] ^= 0xff;
      if (compareBytes(c.value, r.value) !== 0) expect(`${where}: copyValue aliases the value`).toBe("a copy");
    }
  }
  if (compareBytes(c.value, r.value) !== 0) {
    expect(`${where}: value of ${[...r.key]}`).toBe("equal");
  }
  if (c.opIndex !== r.opIndex || c.kind !== r.kind || c.expiresAt !== r.expiresAt) {
    expect(`${where}: ${c.opIndex}/${c.kind}/${c.expiresAt}`).toBe(
      `${where}: ${r.opIndex}/${r.kind}/${r.expiresAt}`,
    );
  }
}

/** Every key hits with its exact record; keys around and between miss. */
export function checkGets(
  seg: SegmentReader,
  recs: Rec[],
  rng: Prng,
  width: number | undefined,
): void {
  const out = newSlot();
  for (const r of recs) {
    if (!seg.get(r.key, out)) expect(`get ${[...r.key]}`).toBe("hit");
    sameRecord(out, r, "get");
  }
  for (let i = 0; i < 300; i++) {
    const probe = genKey(rng, width);
    const at = lowerBound(recs, probe, false);
    const present = at < recs.length && compareBytes(recs[at].key, probe) === 0;
    expect(seg.get(probe, out)).toBe(present);
  }
  if (width === undefined && recs.length > 0) {
    // Just above the last key, and a strict prefix of keys: both absent unless stored.
    const above = new Uint8Array([...recs[recs.length - 1].key, 0]);
    expect(seg.get(above, out)).toBe(false);
  }
}

/** Full forward and reverse scans equal the model. */
export function checkScans(seg: SegmentReader, recs: Rec[]): void {
  const f = seg.cursor(false);
  let i = 0;
  while (f.next()) sameRecord(f, recs[i], `forward #${i++}`);
  expect(i).toBe(recs.length);
  expect(f.next()).toBe(false);
  f.close();
  const r = seg.cursor(true);
  i = recs.length;
  while (r.next()) sameRecord(r, recs[--i], `reverse #${i}`);
  expect(i).toBe(0);
  r.close();
}

/** Random seeks (existing and absent targets, both directions, both bounds) equal the model. */
export function checkSeeks(
  seg: SegmentReader,
  recs: Rec[],
  rng: Prng,
  width: number | undefined,
  count = 400,
): void {
  const fwd = seg.cursor(false);
  const rev = seg.cursor(true);
  for (let s = 0; s < count; s++) {
    const target = recs.length > 0 && rng.next() < 0.5
      ? recs[rng.int(recs.length)].key
      : genKey(rng, width);
    const exclusive = rng.next() < 0.5;
    const reverse = rng.next() < 0.5;
    const c = reverse ? rev : fwd;
    let at = reverse
      ? lowerBound(recs, target, !exclusive) - 1
      : lowerBound(recs, target, exclusive);
    const where = `seek ${reverse ? "rev" : "fwd"} ${exclusive ? "excl" : "incl"} ${[...target]}`;
    expect(c.seek(target, exclusive)).toBe(at >= 0 && at < recs.length);
    for (let k = 0; k < 3 && at >= 0 && at < recs.length; k++) {
      expect(c.valid).toBe(true);
      sameRecord(c, recs[at], where);
      c.next();
      at += reverse ? -1 : 1;
    }
    if (at < 0 || at >= recs.length) expect(c.valid).toBe(false);
  }
  expect(fwd.seek(undefined)).toBe(recs.length > 0);
  expect(rev.seek(undefined)).toBe(recs.length > 0);
  if (recs.length > 0) {
    sameRecord(fwd, recs[0], "seek(undefined) forward");
    sameRecord(rev, recs[recs.length - 1], "seek(undefined) reverse");
  }
  fwd.close();
  rev.close();
}

/** Adapts model records to a pull source with a reused slot (like a merge feeds the writer). */
export function pullFrom(recs: Rec[]): () => Rec | undefined {
  let i = 0;
  const slot = newSlot();
  return () => {
    if (i >= recs.length) return undefined;
    const r = recs[i++];
    slot.key = r.key;
    slot.value = r.value;
    slot.opIndex = r.opIndex;
    slot.kind = r.kind;
    slot.expiresAt = r.expiresAt;
    return slot;
  };
}

/** A storage provider for a test: local files in a fresh temp dir, or memory. */
export interface TestStore {
  fs: FileSystem;
  dir: string;
  cleanup(): void;
}

/** Fresh local temp dir. */
export function localStore(): TestStore {
  const dir = nodeFs.mkdtempSync(joinPath(os.tmpdir(), "zt-disk-"));
  return {
    fs: localFileSystem(),
    dir,
    cleanup: () => nodeFs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** Fresh memory file system. */
export function memoryStore(): TestStore {
  const fs = memoryFileSystem();
  fs.mkdirp("/db");
  return { fs, dir: "/db", cleanup: () => {} };
}

/** The seed of a randomized test: ZT_SEED if set, else a fixed default (printed on failure). */
export function testSeed(fallback: number): number {
  const env = typeof process !== "undefined" ? process.env.ZT_SEED : undefined;
  return env ? Number(env) : fallback;
}
