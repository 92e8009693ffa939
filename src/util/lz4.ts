/**
 * LZ4 block compression through `lz4js` (raw blocks, no frame: our own framing carries the
 * lengths and checksums). Callers must verify a checksum before decompressing: lz4js does not
 * bounds-check malformed input, so only bytes that passed a CRC reach `lz4Decompress`, and the
 * decompressed length is checked against the recorded one.
 *
 * @module
 */
// @ts-types="./lz4js.d.ts"
import * as lz4js from "lz4js";

let hashTable: Uint32Array | undefined;

/**
 * Compresses `src[start, end)`. Returns the compressed bytes, or `undefined` when compression
 * would not make the data smaller (the caller then stores it raw).
 */
export function lz4Compress(src: Uint8Array, start = 0, end = src.length): Uint8Array | undefined {
  const length = end - start;
  if (length < 16) return undefined;
  hashTable ??= new Uint32Array(65536);
  hashTable.fill(0);
  const dst = new Uint8Array(lz4js.compressBound(length));
  const written = lz4js.compressBlock(src, dst, start, length, hashTable);
  if (written <= 0 || written >= length) return undefined;
  return dst.subarray(0, written);
}

/**
 * Decompresses a raw LZ4 block that must expand to exactly `rawLength` bytes. Returns
 * `undefined` if it does not (the caller reports corruption).
 */
export function lz4Decompress(src: Uint8Array, rawLength: number): Uint8Array | undefined {
  const dst = new Uint8Array(rawLength);
  let produced: number;
  try {
    produced = lz4js.decompressBlock(src, dst, 0, src.length, 0);
  } catch {
    return undefined;
  }
  return produced === rawLength ? dst : undefined;
}
