/**
 * CRC-32C (Castagnoli), the checksum of every WAL frame, block and metadata file.
 * Slicing-by-16 over one flat table (16 x 256 entries): 16 table lookups per 16 bytes, one
 * dependency on the running CRC per 16 bytes. Measured against slicing-by-8 with eight separate
 * tables (16 KiB input, CPU ns per byte): Bun 1.09 -> 0.82, Deno 2.44 -> 1.42. A block read
 * checks its whole stored block, so this is a large part of a block-cache miss.
 *
 * @module
 */

/** The 16 x 256 slicing table of the reflected polynomial `poly`. */
function slicingTable(poly: number): Uint32Array {
  /** table[k * 256 + b]: the CRC of byte b followed by k zero bytes. */
  const table = new Uint32Array(16 * 256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
    table[i] = c >>> 0;
  }
  for (let k = 1; k < 16; k++) {
    for (let i = 0; i < 256; i++) {
      const prev = table[(k - 1) * 256 + i];
      table[k * 256 + i] = (prev >>> 8) ^ table[prev & 0xff];
    }
  }
  return table;
}

/** A CRC-32 over `bytes[start, end)` continuing from `crc` (0 to start), unsigned. */
export type Crc32Function = (bytes: Uint8Array, start?: number, end?: number, crc?: number) => number;

/** The slicing-by-16 CRC of the reflected polynomial `poly`, in JavaScript. */
export function slicingCrc(poly: number): Crc32Function {
  const T = slicingTable(poly);
  return (bytes: Uint8Array, start = 0, end = bytes.length, crc = 0): number => {
    let c = ~crc >>> 0;
    let i = start;
    const end16 = end - ((end - start) & 15);
    while (i < end16) {
      const a =
        (c ^ (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24))) >>> 0;
      c = T[3840 + (a & 0xff)] ^ T[3584 + ((a >>> 8) & 0xff)] ^ T[3328 + ((a >>> 16) & 0xff)] ^
        T[3072 + (a >>> 24)] ^ T[2816 + bytes[i + 4]] ^ T[2560 + bytes[i + 5]] ^
        T[2304 + bytes[i + 6]] ^ T[2048 + bytes[i + 7]] ^ T[1792 + bytes[i + 8]] ^
        T[1536 + bytes[i + 9]] ^ T[1280 + bytes[i + 10]] ^ T[1024 + bytes[i + 11]] ^
        T[768 + bytes[i + 12]] ^ T[512 + bytes[i + 13]] ^ T[256 + bytes[i + 14]] ^ T[bytes[i + 15]];
      i += 16;
    }
    while (i < end) c = T[(c ^ bytes[i++]) & 0xff] ^ (c >>> 8);
    return ~c >>> 0;
  };
}

/**
 * CRC-32C of `bytes[start, end)`, continuing from `crc` (0 to start a new checksum).
 * Returns an unsigned 32-bit number.
 */
export const crc32c: Crc32Function = slicingCrc(0x82f63b78);
