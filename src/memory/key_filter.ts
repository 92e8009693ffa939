/**
 * A blocked Bloom filter over the keys of one in-memory segment, so that a point read skips the
 * segments that cannot hold its key without descending their B+trees. A read of a key held by
 * one of five in-memory segments otherwise descends three of them on average, and each descent
 * of a 200k-record tree is cache misses (measured: 62% of a random `get`'s CPU).
 *
 * Shape: `2^n` blocks of 512 bits (16 Int32 words, one 64-byte cache line). A key sets
 * {@link PROBES} bits inside one block, so a probe touches one cache line. The key is hashed
 * once per read ({@link keyHash}) and the same 32-bit hash is probed in every segment; the block
 * and the bit positions are derived from it by independent finalizers.
 *
 * Guarantees: no false negatives (every added key reports `mayContain` true); false positives
 * at about 1% with 10 bits per key, and fewer when the segment holds fewer keys than its
 * capacity. Past its capacity the filter still answers correctly, only less selectively.
 *
 * Called by `mutable_segment.ts` (adds) and the engine's read path (probes).
 *
 * @module
 */

/** Bits set per key, all inside one 512-bit block. */
export const PROBES = 6;
/** Filter bits per key of capacity (before rounding the block count up to a power of two). */
export const BITS_PER_KEY = 10;
/** Largest filter, in blocks (2^16 blocks = 4 MiB, 3.3M keys at 10 bits each). */
const MAX_BLOCKS = 1 << 16;

/**
 * A 32-bit hash of all of `key`'s bytes (murmur3 x86_32 with a fixed seed), as an int32.
 * Deterministic across runtimes and processes; never persisted.
 */
export function keyHash(key: Uint8Array): number {
  return keyHashAt(key, 0, key.length);
}

/** {@link keyHash} of `bytes[start, start + n)` (no view needed). */
export function keyHashAt(key: Uint8Array, start: number, n: number): number {
  let h = 0x2d358dcc;
  let i = start;
  const end = start + n;
  for (; i + 4 <= end; i += 4) {
    h = mixBlock(h, key[i] | (key[i + 1] << 8) | (key[i + 2] << 16) | (key[i + 3] << 24));
  }
  const rest = end - i;
  if (rest > 0) {
    let k = key[i];
    if (rest > 1) k |= key[i + 1] << 8;
    if (rest > 2) k |= key[i + 2] << 16;
    h = mixTail(h, k);
  }
  return finish(h, n);
}

/**
 * {@link keyHash} of an `n`-byte key held as big-endian u32 words from `words[base]` on (the
 * B+tree's inline key form: zero-padded words, no byte past the key read), the same value as
 * {@link keyHashAt} on its bytes. A frozen tree's hash index and a growing key filter hash
 * every key of a segment; from the leaves' inline words they read memory in order instead of
 * one arena record per key, scattered in arrival order.
 */
export function keyHashWords(words: Uint32Array, base: number, n: number): number {
  let h = 0x2d358dcc;
  const whole = n >>> 2;
  for (let w = 0; w < whole; w++) {
    const x = words[base + w];
    h = mixBlock(h, (x >>> 24) | ((x >>> 8) & 0xff00) | ((x << 8) & 0xff0000) | (x << 24));
  }
  const rest = n & 3;
  if (rest > 0) {
    const x = words[base + whole];
    let k = x >>> 24;
    if (rest > 1) k |= ((x >>> 16) & 0xff) << 8;
    if (rest > 2) k |= ((x >>> 8) & 0xff) << 16;
    h = mixTail(h, k);
  }
  return finish(h, n);
}

/** murmur3's step for a whole 4-byte block `k` (little-endian). */
function mixBlock(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  h ^= Math.imul(k, 0x1b873593);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** murmur3's step for the last 1-3 bytes `k`. */
function mixTail(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  return h ^ Math.imul(k, 0x1b873593);
}

/** murmur3's finalization of `h` for a key of `n` bytes. */
function finish(h: number, n: number): number {
  h ^= n;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** A second, independent 32-bit value from a hash (the bit positions' stride). */
function stride(h: number): number {
  let x = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  x = Math.imul(x ^ (x >>> 12), 0x297a2d39);
  return (x ^ (x >>> 15)) | 1;
}

/** A blocked Bloom filter of 32-bit key hashes (see the module doc). */
export class KeyFilter {
  /** Keys the filter was sized for (it keeps working past it, less selectively). */
  readonly capacity: number;
  private readonly words: Int32Array;
  private readonly blockMask: number;

  /** A filter sized for `capacity` keys at {@link BITS_PER_KEY} bits each (at least one block). */
  constructor(capacity: number) {
    this.capacity = capacity;
    const wanted = Math.ceil((Math.max(1, capacity) * BITS_PER_KEY) / 512);
    let blocks = 1;
    while (blocks < wanted && blocks < MAX_BLOCKS) blocks *= 2;
    this.words = new Int32Array(blocks * 16);
    this.blockMask = blocks - 1;
  }

  /** Bytes of memory the filter's bits take. */
  get byteSize(): number {
    return this.words.byteLength;
  }

  /** Records the key whose {@link keyHash} is `h`. */
  add(h: number): void {
    const words = this.words;
    const base = (h & this.blockMask) << 4;
    const step = stride(h);
    let x = h;
    for (let p = 0; p < PROBES; p++) {
      x = (x + step) | 0;
      const bit = x >>> 23; // 9 bits: 0..511
      words[base + (bit >>> 5)] |= 1 << (bit & 31);
    }
  }

  /** False only if no key with hash `h` was added; true otherwise (maybe added). */
  mayContain(h: number): boolean {
    const words = this.words;
    const base = (h & this.blockMask) << 4;
    const step = stride(h);
    let x = h;
    for (let p = 0; p < PROBES; p++) {
      x = (x + step) | 0;
      const bit = x >>> 23;
      if ((words[base + (bit >>> 5)] & (1 << (bit & 31))) === 0) return false;
    }
    return true;
  }
}
