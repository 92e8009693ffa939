/**
 * A fast LZ4 block compressor that writes into a caller's buffer. It produces standard raw LZ4
 * blocks, so `lz4Decompress` of `lz4.ts` reads them; it exists because the WAL compresses on the
 * event loop thread and `lz4js.compressBlock` runs at about 50 MB/s there (this one at several
 * times that), and because writing straight into the frame buffer saves a copy and an
 * allocation per frame.
 *
 * Invariants of the LZ4 block format that this keeps: every match is at least 4 bytes, starts at
 * least 12 bytes before the end and ends at least 5 bytes before it (the last 5 bytes are always
 * literals); match offsets are 1..65535.
 *
 * The hash table is reused between calls without clearing: entries store `position + base`, and
 * `base` moves past every earlier call's positions, so stale entries read as out of range.
 * Leaf module: imports nothing. Called by `src/wal/wal_writer.ts` and `src/disk/segment_writer.ts`.
 *
 * @module
 */

const HASH_LOG = 14;
const MIN_MATCH = 4;
const LAST_LITERALS = 5;
const MF_LIMIT = 12;
const MAX_OFFSET = 65535;
/** Larger inputs are stored raw: table entries (position + base) must stay below 2^31. */
const MAX_INPUT_BYTES = 0x2000_0000;
/** After this many misses in a row the search step grows (skips incompressible data quickly). */
const SKIP_TRIGGER = 6;

const table = new Int32Array(1 << HASH_LOG);
let base = 1;

/** Worst-case output size for `n` input bytes (incompressible data plus length bytes). */
export function lz4BlockBound(n: number): number {
  return n + Math.floor(n / 255) + 16;
}

function read32(b: Uint8Array, i: number): number {
  return b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24);
}

/** Writes an LZ4 length continuation (the part above 15) as 255-runs; returns the new position. */
function writeLengthTail(dst: Uint8Array, d: number, n: number): number {
  while (n >= 255) {
    dst[d++] = 255;
    n -= 255;
  }
  dst[d++] = n;
  return d;
}

function copyBytes(dst: Uint8Array, d: number, src: Uint8Array, from: number, to: number): number {
  if (to - from > 32) {
    dst.set(src.subarray(from, to), d);
    return d + (to - from);
  }
  while (from < to) dst[d++] = src[from++];
  return d;
}

/** Emits one sequence: literals `src[anchor, ip)` then a match; returns the new position. */
function emitSequence(
  dst: Uint8Array,
  d: number,
  src: Uint8Array,
  anchor: number,
  ip: number,
  offset: number,
  matchLength: number,
): number {
  const literals = ip - anchor;
  const ml = matchLength - MIN_MATCH;
  const tokenPos = d++;
  let token = ml < 15 ? ml : 15;
  if (literals >= 15) {
    token |= 0xf0;
    d = writeLengthTail(dst, d, literals - 15);
  } else {
    token |= literals << 4;
  }
  dst[tokenPos] = token;
  d = copyBytes(dst, d, src, anchor, ip);
  dst[d++] = offset & 0xff;
  dst[d++] = offset >>> 8;
  if (ml >= 15) d = writeLengthTail(dst, d, ml - 15);
  return d;
}

/** Emits the final literals-only sequence. */
function emitLastLiterals(
  dst: Uint8Array,
  d: number,
  src: Uint8Array,
  anchor: number,
  end: number,
): number {
  const literals = end - anchor;
  if (literals >= 15) {
    dst[d++] = 0xf0;
    d = writeLengthTail(dst, d, literals - 15);
  } else {
    dst[d++] = literals << 4;
  }
  return copyBytes(dst, d, src, anchor, end);
}

/** Moves `base` past this call's positions; clears the table when the numbers would overflow. */
function advanceBase(length: number): number {
  const b = base;
  base += length + MAX_OFFSET + 1;
  if (base > 0x3fff_ffff) {
    table.fill(0);
    base = 1;
    return advanceBase(length);
  }
  return b;
}

/**
 * Compresses `src[start, end)` into `dst` at `dstStart` as one raw LZ4 block. Returns the number
 * of bytes written, or -1 when the block would not be smaller than the input (store it raw).
 * `dst` must have room for `end - start` bytes after `dstStart`.
 */
export function lz4CompressInto(
  src: Uint8Array,
  start: number,
  end: number,
  dst: Uint8Array,
  dstStart: number,
): number {
  const length = end - start;
  if (length < MF_LIMIT + 4 || length > MAX_INPUT_BYTES) return -1;
  if (dst.length - dstStart < length) throw new RangeError("lz4CompressInto: dst too small");
  // Give up once the output could no longer be smaller than the input.
  const dstLimit = dstStart + length - 1;
  const b = advanceBase(length) - start;
  const mfLimit = end - MF_LIMIT;
  const matchLimit = end - LAST_LITERALS;
  const shift = 32 - HASH_LOG;
  let anchor = start;
  let ip = start;
  let d = dstStart;
  let misses = 1 << SKIP_TRIGGER;
  while (ip < mfLimit) {
    const seq = read32(src, ip);
    const h = Math.imul(seq, 0x9e3779b1) >>> shift;
    let ref = table[h] - b;
    table[h] = ip + b;
    if (ref < start || ip - ref > MAX_OFFSET || read32(src, ref) !== seq) {
      ip += misses++ >> SKIP_TRIGGER;
      continue;
    }
    misses = 1 << SKIP_TRIGGER;
    while (ip > anchor && ref > start && src[ip - 1] === src[ref - 1]) {
      ip--;
      ref--;
    }
    let n = MIN_MATCH;
    while (ip + n < matchLimit && src[ip + n] === src[ref + n]) n++;
    // Worst case of a sequence: token, literal-length bytes, literals, offset, match-length bytes.
    const literals = ip - anchor;
    if (d + literals + ((literals / 255) | 0) + ((n / 255) | 0) + 6 > dstLimit) return -1;
    d = emitSequence(dst, d, src, anchor, ip, ip - ref, n);
    ip += n;
    anchor = ip;
    if (ip < mfLimit) table[Math.imul(read32(src, ip - 2), 0x9e3779b1) >>> shift] = ip - 2 + b;
  }
  const rest = end - anchor;
  if (d + rest + ((rest / 255) | 0) + 2 > dstLimit) return -1;
  return emitLastLiterals(dst, d, src, anchor, end) - dstStart;
}
