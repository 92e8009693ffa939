/**
 * A search key prepared for comparing against stored keys in place, four bytes at a time.
 * Encoded keys often share long prefixes (a sensor id, then a timestamp), so a byte loop spends
 * most of a binary search walking equal bytes; comparing big-endian 32-bit words walks a
 * quarter as many steps and keeps memcmp order (big-endian words compare like their bytes). Used by the sparse index and block searches of the reader and cursors; one
 * probe per segment or cursor is reused for every lookup, so searches allocate nothing.
 *
 * @module
 */

/** A key split into big-endian 32-bit words for in-place comparison. */
export class KeyProbe {
  /** The key bytes. */
  key: Uint8Array = new Uint8Array(0);
  /** Whole words: words[j] = key bytes [4j, 4j+4) big-endian. */
  words: Uint32Array = new Uint32Array(16);
  /** Number of whole words in `key` (length >>> 2). */
  wordCount = 0;

  /** Prepares the probe for `key` (O(key length)); returns this. */
  set(key: Uint8Array): this {
    this.key = key;
    const n = key.length >>> 2;
    if (n > this.words.length) this.words = new Uint32Array(Math.max(n, this.words.length * 2));
    const w = this.words;
    for (let j = 0, p = 0; j < n; j++, p += 4) {
      w[j] = ((key[p] << 24) | (key[p + 1] << 16) | (key[p + 2] << 8) | key[p + 3]) >>> 0;
    }
    this.wordCount = n;
    return this;
  }

  /**
   * memcmp(probe key, bytes[off, off+len)): negative, zero or positive. Stored words are
   * assembled from four byte loads rather than read with DataView: Bun's JIT did not inline
   * DataView reads at this call site (it sees several views), which made a warm point read
   * about 3x slower, while typed array loads are always inlined.
   */
  compare(bytes: Uint8Array, off: number, len: number): number {
    const key = this.key;
    const n = key.length < len ? key.length : len;
    const whole = n >>> 2;
    const w = this.words;
    for (let j = 0, p = off; j < whole; j++, p += 4) {
      const b = ((bytes[p] << 24) | (bytes[p + 1] << 16) | (bytes[p + 2] << 8) | bytes[p + 3]) >>>
        0;
      const a = w[j];
      if (a !== b) return a < b ? -1 : 1;
    }
    for (let j = whole * 4; j < n; j++) {
      const d = key[j] - bytes[off + j];
      if (d !== 0) return d;
    }
    return key.length - len;
  }
}
