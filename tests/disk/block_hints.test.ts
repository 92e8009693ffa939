/**
 * The search hints of cached blocks (`BlockView.buildHints`) only narrow a binary search: a
 * block with hints must answer every `search` exactly as the same block without them, for keys
 * that share long prefixes, differ in their last byte, are prefixes of each other, and for probes
 * below, inside, equal to and above the block's shared prefix. Seeded: a failure names its seed.
 */
import { describe, expect, test } from "bun:test";
import { BlockView } from "../../src/disk/block.ts";
import { BlockBuilder } from "../../src/disk/block_builder.ts";
import { KeyProbe } from "../../src/disk/key_probe.ts";
import { compareBytes } from "../../src/util/bytes.ts";
import { Prng } from "../../src/util/prng.ts";
import { testSeed } from "./helpers.ts";

/** Sorted unique keys that all start with `prefix`, then 0..6 bytes from a small alphabet. */
function keysWithPrefix(rng: Prng, prefix: Uint8Array, n: number, width?: number): Uint8Array[] {
  const seen = new Map<string, Uint8Array>();
  for (let guard = 0; seen.size < n && guard < n * 50; guard++) {
    const tail = width === undefined ? rng.int(7) : width - prefix.length;
    const k = new Uint8Array(prefix.length + tail);
    k.set(prefix);
    for (let i = prefix.length; i < k.length; i++) {
      k[i] = rng.next() < 0.6 ? rng.int(3) : rng.int(256); // many near-ties
    }
    seen.set(k.join(","), k);
  }
  return [...seen.values()].sort(compareBytes);
}

/** A probe near the block's keys: a key, a key with a byte changed, cut or extended. */
function probeNear(rng: Prng, keys: Uint8Array[], prefix: Uint8Array): Uint8Array {
  const r = rng.next();
  if (r < 0.1) return prefix.slice(0, rng.int(prefix.length + 1));
  const k = keys[rng.int(keys.length)].slice();
  if (r < 0.3) return k;
  if (r < 0.5 && k.length > 0) {
    k[rng.int(k.length)] = rng.int(256);
    return k;
  }
  if (r < 0.7) return k.slice(0, rng.int(k.length + 1));
  const longer = new Uint8Array(k.length + 1 + rng.int(5));
  longer.set(k);
  for (let i = k.length; i < longer.length; i++) longer[i] = rng.int(3);
  return longer;
}

function build(keys: Uint8Array[], width: number): { plain: BlockView; hinted: BlockView } {
  const b = new BlockBuilder(width, 0);
  keys.forEach((k, i) => b.add(k, new Uint8Array(0), i + 1, 0, 0));
  const raw = b.finish().slice();
  const plain = new BlockView(width, 0);
  const hinted = new BlockView(width, 0);
  expect(plain.load(raw, raw.length, keys.length, 0)).toBeUndefined();
  expect(hinted.load(raw, raw.length, keys.length, 0)).toBeUndefined();
  const before = hinted.sizeBytes;
  hinted.buildHints();
  expect(hinted.sizeBytes).toBe(before + 4 * keys.length);
  return { plain, hinted };
}

describe("block search hints", () => {
  for (const [name, width] of [["variable keys", 0], ["fixed keys", 9]] as const) {
    test(`a hinted block searches exactly like a plain one (${name})`, () => {
      const seed = testSeed(0x41e7 + width);
      const rng = new Prng(seed);
      const probe = new KeyProbe();
      for (let round = 0; round < 60; round++) {
        const prefixLength = width === 0 ? rng.int(8) : rng.int(width - 2);
        const prefix = new Uint8Array(prefixLength).map(() => rng.int(4));
        const keys = keysWithPrefix(rng, prefix, 1 + rng.int(300), width || undefined);
        const { plain, hinted } = build(keys, width);
        for (let i = 0; i < 200; i++) {
          const p = width === 0 ? probeNear(rng, keys, prefix) : fixedProbe(rng, keys, width);
          probe.set(p);
          const lo = rng.int(keys.length + 1);
          const hi = lo + rng.int(keys.length - lo + 1);
          for (const strict of [false, true]) {
            const want = plain.search(probe, lo, hi, strict);
            const got = hinted.search(probe, lo, hi, strict);
            if (got !== want) {
              expect(`seed ${seed} probe ${[...p]} [${lo},${hi}) strict=${strict}: ${got}`)
                .toBe(`seed ${seed} probe ${[...p]} [${lo},${hi}) strict=${strict}: ${want}`);
            }
          }
        }
      }
    });
  }
});

function fixedProbe(rng: Prng, keys: Uint8Array[], width: number): Uint8Array {
  const k = keys[rng.int(keys.length)].slice();
  if (rng.next() < 0.5) k[rng.int(width)] = rng.int(256);
  return k;
}
