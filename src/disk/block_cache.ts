/**
 * The decompressed block cache shared by every disk segment of a tree: bounded in bytes of
 * decoded blocks, least recently used (approximately) first out. The engine creates one, passes it to every
 * `openDiskSegment`, reports `sizeBytes` as `stats().blockCacheBytes`, and calls `dropSegment`
 * when a segment's files go away.
 *
 * Invariants: `sizeBytes` is the sum of the cached blocks' `sizeBytes` and never exceeds
 * `capacityBytes` after a call returns; a block bigger than the whole capacity is not cached.
 * Entries are keyed by (segment id, block number) packed into one number, so a lookup allocates
 * nothing.
 *
 * Replacement is CLOCK (second chance), an LRU approximation over a ring of slots: a Map takes
 * the packed key to its slot; a hit only sets the slot's `referenced` flag; an insert takes a
 * free slot (or a new one), and eviction moves the clock hand around the ring, clearing set
 * flags and dropping the first unreferenced blocks. Every step is O(1) amortized: nothing walks
 * the Map (an earlier version evicted by iterating the Map from its oldest entry, and deletions
 * at the front of a JS Map leave holes that each later iteration skips again: with a cache full
 * of 16 KiB blocks, random point reads spent more time there than decompressing).
 *
 * @module
 */
import { assert } from "../util/assert.ts";

/** What the cache holds: anything that knows its size in bytes. */
export interface CachedBlock {
  /** Bytes charged to the cache for this block. */
  readonly sizeBytes: number;
  /**
   * Called when the cache drops the block. Returns the block's buffer when nothing reads the
   * block any more (it then gives up the buffer), for the cache to hand to a later block;
   * otherwise undefined.
   */
  release?(): Uint8Array | undefined;
}

/** Buffers of dropped blocks kept for reuse (a miss evicts one block and loads one). */
const RECYCLED_MAX = 8;

/** Segment ids and block numbers must stay below these to pack into one safe integer. */
const SEGMENT_ID_LIMIT = 2 ** 27;
const BLOCK_NO_LIMIT = 2 ** 26;

/** Default capacity when the engine passes none: 64 MiB of decoded blocks. */
export const DEFAULT_BLOCK_CACHE_BYTES = 64 * 1024 * 1024;

/** A CLOCK (approximate LRU) cache of decoded blocks, bounded in bytes. */
export class BlockCache {
  /** Upper bound on `sizeBytes`. */
  readonly capacityBytes: number;
  /** Lookups that found their block. */
  hits = 0;
  /** Lookups that did not. */
  misses = 0;
  private used = 0;
  /** Packed key -> slot. */
  private readonly slots = new Map<number, number>();
  /** Per slot: its packed key (-1 when free), its block, and its second-chance flag. */
  private keys: number[] = [];
  private blocks: (CachedBlock | undefined)[] = [];
  private referenced: boolean[] = [];
  private readonly free: number[] = [];
  private hand = 0;
  /** Buffers given up by dropped blocks (see {@link takeBuffer}). */
  private readonly recycled: Uint8Array[] = [];

  /** A cache holding at most `capacityBytes` of blocks (0 disables caching). */
  constructor(capacityBytes: number = DEFAULT_BLOCK_CACHE_BYTES) {
    assert(Number.isSafeInteger(capacityBytes) && capacityBytes >= 0, "block cache capacity");
    this.capacityBytes = capacityBytes;
  }

  /** Bytes of blocks held now (`stats().blockCacheBytes`). */
  get sizeBytes(): number {
    return this.used;
  }

  /** Blocks held now. */
  get blockCount(): number {
    return this.slots.size;
  }

  /** Whether a block of `bytes` can be cached at all. */
  fits(bytes: number): boolean {
    return bytes <= this.capacityBytes;
  }

  /** The block, marked recently used; or `undefined`. */
  get(segmentId: number, blockNo: number): CachedBlock | undefined {
    const s = this.slots.get(packKey(segmentId, blockNo));
    if (s === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.referenced[s] = true;
    return this.blocks[s];
  }

  /** The block without touching its recency (scans read through this, so they do not pollute). */
  peek(segmentId: number, blockNo: number): CachedBlock | undefined {
    const s = this.slots.get(packKey(segmentId, blockNo));
    return s === undefined ? undefined : this.blocks[s];
  }

  /** Inserts (or replaces) a block, evicting cold ones to make room. */
  set(segmentId: number, blockNo: number, block: CachedBlock): void {
    const k = packKey(segmentId, blockNo);
    const old = this.slots.get(k);
    if (old !== undefined) this.remove(old);
    if (block.sizeBytes > this.capacityBytes) return;
    let s = this.free.pop();
    if (s === undefined) {
      s = this.keys.length;
      this.keys.push(k);
      this.blocks.push(block);
      this.referenced.push(false);
    } else {
      this.keys[s] = k;
      this.blocks[s] = block;
      this.referenced[s] = false;
    }
    this.slots.set(k, s);
    this.used += block.sizeBytes;
    if (this.used > this.capacityBytes) this.evict(s);
  }

  /**
   * A buffer of at least `length` bytes (and at most a quarter more) that a dropped block gave
   * up, or undefined. Reusing them saves the allocation of every miss once the cache is full:
   * Bun spent ~10 µs per 4 KiB block allocating on fresh memory, more than the read, checksum
   * and decompression together.
   */
  takeBuffer(length: number): Uint8Array | undefined {
    const bin = this.recycled;
    for (let i = bin.length - 1; i >= 0; i--) {
      const b = bin[i];
      if (b.length >= length && b.length <= length + (length >>> 2)) {
        bin[i] = bin[bin.length - 1];
        bin.pop();
        return b;
      }
    }
    return undefined;
  }

  /** Forgets every block of segment `segmentId`. */
  dropSegment(segmentId: number): void {
    assert(segmentId >= 0 && segmentId < SEGMENT_ID_LIMIT, "segment id fits the cache key");
    for (let s = 0; s < this.keys.length; s++) {
      const k = this.keys[s];
      if (k >= 0 && Math.floor(k / BLOCK_NO_LIMIT) === segmentId) this.remove(s);
    }
  }

  /** Forgets everything. */
  clear(): void {
    this.slots.clear();
    this.keys = [];
    this.blocks = [];
    this.referenced = [];
    this.free.length = 0;
    this.hand = 0;
    this.used = 0;
  }

  private remove(s: number): void {
    this.slots.delete(this.keys[s]);
    const block = this.blocks[s]!;
    this.used -= block.sizeBytes;
    const buffer = block.release?.();
    if (buffer !== undefined) {
      if (this.recycled.length === RECYCLED_MAX) this.recycled.shift();
      this.recycled.push(buffer);
    }
    this.keys[s] = -1;
    this.blocks[s] = undefined;
    this.referenced[s] = false;
    this.free.push(s);
  }

  /**
   * Moves the hand until the blocks fit, sparing `keep` (the block just inserted, which fits by
   * itself, so another block is always there to drop). Each slot is passed at most twice.
   */
  private evict(keep: number): void {
    const n = this.keys.length;
    while (this.used > this.capacityBytes) {
      const s = this.hand;
      this.hand = s + 1 === n ? 0 : s + 1;
      if (s === keep || this.keys[s] < 0) continue;
      if (this.referenced[s]) this.referenced[s] = false;
      else this.remove(s);
    }
    assert(this.used >= 0 && this.used <= this.capacityBytes, "block cache within its bound");
  }
}

function packKey(segmentId: number, blockNo: number): number {
  assert(segmentId >= 0 && segmentId < SEGMENT_ID_LIMIT, "segment id fits the cache key");
  assert(blockNo >= 0 && blockNo < BLOCK_NO_LIMIT, "block number fits the cache key");
  return segmentId * BLOCK_NO_LIMIT + blockNo;
}
