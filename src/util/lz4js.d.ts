// Type declarations for the parts of the `lz4js` package that the engine uses.
export function compressBound(n: number): number;
export function compressBlock(
  src: Uint8Array,
  dst: Uint8Array,
  sIndex: number,
  sLength: number,
  hashTable: Uint32Array,
): number;
export function decompressBlock(
  src: Uint8Array,
  dst: Uint8Array,
  sIndex: number,
  sLength: number,
  dIndex: number,
): number;
