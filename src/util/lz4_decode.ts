/**
 * A bounds-checked LZ4 raw block decoder, faster than `lz4js.decompressBlock` for the disk
 * segment read path (point reads and scans decode one block per miss): long literal runs are
 * copied with `set`, long non-overlapping matches with `copyWithin`, short ones with a loop.
 *
 * Every length and offset is checked against the input and the output before use, so any input
 * (even one that slipped past a checksum) yields either exactly `dst.length` bytes or
 * `false`; it never reads or writes out of bounds and never loops without consuming input.
 * Produces the same bytes as any LZ4 block decoder (the format is the LZ4 block format).
 *
 * Leaf module: imports nothing.
 *
 * @module
 */

/** Runs at least this long are copied with a native call instead of a loop. */
const NATIVE_COPY_MIN = 32;

/**
 * Decodes the LZ4 block `src[start, end)` into `dst`, which must come out exactly full.
 * Returns true on success, false when the input is malformed or the size differs.
 */
export function lz4DecodeInto(
  src: Uint8Array,
  start: number,
  end: number,
  dst: Uint8Array,
): boolean {
  let s = start;
  let d = 0;
  const dEnd = dst.length;
  while (s < end) {
    const token = src[s++];
    let lit = token >>> 4;
    if (lit === 15) {
      let b = 255;
      while (b === 255) {
        if (s >= end) return false;
        b = src[s++];
        lit += b;
      }
    }
    if (lit > end - s || lit > dEnd - d) return false;
    if (lit >= NATIVE_COPY_MIN) {
      dst.set(src.subarray(s, s + lit), d);
      d += lit;
      s += lit;
    } else {
      for (let k = 0; k < lit; k++) dst[d++] = src[s++];
    }
    if (s >= end) break; // the last sequence has literals only
    if (end - s < 2) return false;
    const offset = src[s] | (src[s + 1] << 8);
    s += 2;
    if (offset === 0 || offset > d) return false;
    let len = token & 15;
    if (len === 15) {
      let b = 255;
      while (b === 255) {
        if (s >= end) return false;
        b = src[s++];
        len += b;
      }
    }
    len += 4;
    if (len > dEnd - d) return false;
    let m = d - offset;
    if (len >= NATIVE_COPY_MIN && offset >= len) {
      dst.copyWithin(d, m, m + len);
      d += len;
    } else {
      // Overlapping matches (offset < len) repeat a pattern: a forward byte loop does that.
      for (let k = 0; k < len; k++) dst[d++] = dst[m++];
    }
  }
  return d === dEnd;
}

/**
 * Whether `src[start, end)` can be the start of an LZ4 block that decodes to `rawLength` bytes,
 * without decoding it: every match offset points into the bytes produced so far, and no length
 * passes `rawLength`. `end` may cut the block short (a peek at its first bytes): what lies past
 * it is not judged. A real block always passes; arbitrary bytes rarely get past two sequences
 * (an offset must be at most the few literals before it). Used by WAL replay to rule out
 * garbage before checksumming it.
 */
export function lz4PlausiblePrefix(
  src: Uint8Array,
  start: number,
  end: number,
  rawLength: number,
): boolean {
  let s = start;
  let d = 0;
  while (s < end) {
    const token = src[s++];
    let lit = token >>> 4;
    if (lit === 15) {
      let b = 255;
      while (b === 255) {
        if (s >= end) return true;
        b = src[s++];
        lit += b;
      }
    }
    if (lit > rawLength - d) return false;
    s += lit;
    d += lit;
    if (end - s < 2) return true; // the last sequence (literals only), or cut short
    const offset = src[s] | (src[s + 1] << 8);
    s += 2;
    if (offset === 0 || offset > d) return false;
    let len = token & 15;
    if (len === 15) {
      let b = 255;
      while (b === 255) {
        if (s >= end) return true;
        b = src[s++];
        len += b;
      }
    }
    len += 4;
    if (len > rawLength - d) return false;
    d += len;
  }
  return true;
}
