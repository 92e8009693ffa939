/**
 * CRC-32 (IEEE 802.3, the zlib/gzip/PNG one; check value of "123456789" = 0xCBF43926), the
 * checksum of disk segment blocks from format version 2 on (`disk/format.ts`).
 *
 * Chosen over our CRC-32C for blocks because both runtimes compute it natively: `node:zlib`'s
 * `crc32` (Bun, Deno, Node 20.15+) runs at ~0.025 ns per byte here against ~0.5 (Bun) and ~0.84
 * (Deno) for CRC-32C in JavaScript (`bench/crc_bench.ts`), and a block-cache miss checks a whole
 * block: ~7 us of a ~16 us miss for a 14 KB block, now ~0.4 us. Same guarantees as any CRC-32
 * over a block (every burst of up to 32 bits, every odd number of flipped bits). Where `crc32`
 * is missing, the same slicing-by-16 JavaScript as CRC-32C with the IEEE polynomial.
 *
 * @module
 */
import * as zlib from "node:zlib";
import { type Crc32Function, slicingCrc } from "./crc32c.ts";

/** The JavaScript CRC-32 (also the reference for the native one in tests). */
export const crc32Js: Crc32Function = slicingCrc(0xedb88320);

type NativeCrc32 = (data: Uint8Array, value?: number) => number;

function nativeCrc32(): NativeCrc32 | undefined {
  const f = (zlib as { crc32?: NativeCrc32 }).crc32;
  if (typeof f !== "function") return undefined;
  try {
    // Trust it only if it is this CRC (check value) and continues a running one like ours.
    const check = new TextEncoder().encode("123456789");
    if (f(check) !== 0xcbf43926) return undefined;
    if (f(check.subarray(4), f(check.subarray(0, 4))) !== 0xcbf43926) return undefined;
  } catch {
    return undefined;
  }
  return f;
}

const native = nativeCrc32();
/** Ranges shorter than this are checksummed in JavaScript (a WAL frame of one small write). */
const NATIVE_MIN_BYTES = 256;

/** Whether {@link crc32} runs natively (`node:zlib`), not in JavaScript. */
export const crc32IsNative: boolean = native !== undefined;

/**
 * CRC-32 (IEEE) of `bytes[start, end)`, continuing from `crc` (0 to start a new checksum).
 * Returns an unsigned 32-bit number.
 */
export const crc32: Crc32Function = native === undefined ? crc32Js : (
  bytes: Uint8Array,
  start = 0,
  end = bytes.length,
  crc = 0,
): number => {
  // A short range costs less in JavaScript than a view and a call into the runtime.
  if (end - start < NATIVE_MIN_BYTES) return crc32Js(bytes, start, end, crc);
  return native(start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end), crc) >>> 0;
};
