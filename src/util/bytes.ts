/**
 * Byte helpers shared by every layer: memcmp order, unsigned LEB128 varints, 48/64-bit integers
 * stored as JS numbers, and a growable output buffer. Leaf module: imports nothing.
 *
 * @module
 */

/** Compares two byte strings in unsigned memcmp order (shorter prefix first). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    const d = a[i] - b[i];
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** Longest run {@link copyOf} copies in a loop rather than with `slice`. */
const COPY_LOOP_MAX = 64;

/** Copies of at most this many bytes are pooled (see {@link RUNTIME_POOLS_COPIES}). */
export const POOLED_COPY_MAX = 256;
/** Bytes of one slab of pooled copies. */
const POOL_SLAB_BYTES = 8192;

/**
 * Whether small copies handed to callers are views into shared slabs (Deno) rather than arrays
 * of their own (Bun and others). Deno's V8 is built without on-heap typed arrays, so every
 * `new Uint8Array(n)`, however small, gets a backing store from `malloc` (and a free after a
 * collection): ~1.1 µs for 16 bytes on the 2-core VM, against ~0.05 µs for a view of an existing
 * buffer (Bun: ~0.015 µs for either; `bench/small_copies.ts`). A scan returns one or two copies
 * a record, and a write encodes its key into a new array, so this was most of a Deno scan's
 * time. The views work as Node's `Buffer` pool does: a copy's `buffer` is the 8 KiB slab (use
 * `byteOffset` and `byteLength`), each copy has bytes of its own (nothing else is ever written
 * there), and a slab lives as long as any copy in it (a caller keeping a few copies out of many
 * can `slice()` them).
 */
export const RUNTIME_POOLS_COPIES: boolean =
  typeof (globalThis as { Deno?: { version?: unknown } }).Deno?.version === "object" &&
  typeof (globalThis as { Bun?: unknown }).Bun === "undefined";

let pooled = RUNTIME_POOLS_COPIES;

/**
 * Tests: turns pooled copies on or off (default: {@link RUNTIME_POOLS_COPIES}). Returns the
 * previous setting.
 */
export function setPooledCopies(on: boolean): boolean {
  const was = pooled;
  pooled = on;
  return was;
}

let slab = new ArrayBuffer(0);
let slabUsed = 0;

/** A zero-filled view of `n` (<= {@link POOLED_COPY_MAX}) bytes of the current slab. */
function pooledArray(n: number): Uint8Array {
  // A slab whose buffer a caller transferred away is detached (length 0): start another.
  if (slabUsed + n > slab.byteLength || slab.byteLength === 0) {
    slab = new ArrayBuffer(POOL_SLAB_BYTES);
    slabUsed = 0;
  }
  const out = new Uint8Array(slab, slabUsed, n);
  slabUsed += (n + 7) & ~7; // 8-aligned, so a caller's wider view of a copy can line up
  return out;
}

/**
 * A new array of `n` bytes (zero-filled) for a copy or an encoding handed to a caller: a view
 * into a shared slab when copies are pooled (see {@link RUNTIME_POOLS_COPIES}) and `n` is at most
 * {@link POOLED_COPY_MAX}, else an array of its own.
 */
export function newCopyArray(n: number): Uint8Array {
  return pooled && n <= POOLED_COPY_MAX ? pooledArray(n) : new Uint8Array(n);
}

/**
 * A new array holding `src[start ..< end]`. Short runs (keys, small values) are copied in a
 * loop of four bytes a step: in Bun that allocates and fills them faster than `slice`, which
 * calls into the runtime; from {@link COPY_LOOP_MAX} bytes `slice` is faster (`bun
 * bench/copy_bytes.ts`, Bun 1.4.5: 24 bytes ~25 against ~33 ns, 64 bytes ~32 against ~32 ns,
 * 100 bytes ~44 against ~34 ns, 200 bytes ~80 against ~47 ns). When copies are pooled (see
 * {@link RUNTIME_POOLS_COPIES}), a copy of up to {@link POOLED_COPY_MAX} bytes is a view into a
 * shared slab.
 */
export function copyOf(src: Uint8Array, start: number, end: number): Uint8Array {
  const n = end - start;
  if (n > COPY_LOOP_MAX && (!pooled || n > POOLED_COPY_MAX)) return src.slice(start, end);
  const out = newCopyArray(n);
  if (n > COPY_LOOP_MAX) {
    out.set(src.subarray(start, end));
    return out;
  }
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const s = start + i;
    out[i] = src[s];
    out[i + 1] = src[s + 1];
    out[i + 2] = src[s + 2];
    out[i + 3] = src[s + 3];
  }
  for (; i < n; i++) out[i] = src[start + i];
  return out;
}

/** Longest run {@link copyInto} copies in a loop rather than with `set`. */
const SET_LOOP_MAX = 64;

/**
 * Copies all of `bytes` into `to` at `at`. A key or a small value is copied in a loop, which in
 * Bun costs less than the runtime call of `set` (the in-memory segment copies each record's key
 * and value into its arena this way; the WAL buffer's copies measured no different); longer runs
 * use `set`.
 */
export function copyInto(to: Uint8Array, at: number, bytes: Uint8Array): void {
  const n = bytes.length;
  if (n > SET_LOOP_MAX) to.set(bytes, at);
  else for (let i = 0; i < n; i++) to[at + i] = bytes[i];
}

/**
 * A copy of all of `b`: `new` + `set` (about half the cost of `slice()` in Bun: 57 vs 91 ns for
 * 100 bytes). For part of an array use {@link copyOf}: a `set` would need a view first. When
 * copies are pooled (see {@link RUNTIME_POOLS_COPIES}), a short copy is a view into a shared slab.
 */
export function copyBytes(b: Uint8Array): Uint8Array {
  const out = newCopyArray(b.length);
  out.set(b);
  return out;
}

/** True when `a` and `b` hold the same bytes. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** True when `key` starts with `prefix`. */
export function hasPrefix(key: Uint8Array, prefix: Uint8Array): boolean {
  if (key.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (key[i] !== prefix[i]) return false;
  return true;
}

/**
 * The smallest byte string greater than every string that starts with `prefix`, or `undefined`
 * when there is none (the prefix is empty or all 0xff).
 */
export function prefixSuccessor(prefix: Uint8Array): Uint8Array | undefined {
  let end = prefix.length;
  while (end > 0 && prefix[end - 1] === 0xff) end--;
  if (end === 0) return undefined;
  const out = prefix.slice(0, end);
  out[end - 1]++;
  return out;
}

/** Number of bytes `value` (a non-negative safe integer) takes as a varint. */
export function varintLength(value: number): number {
  let n = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    n++;
  }
  return n;
}

/** Writes `value` (non-negative safe integer) as a varint at `pos`; returns the new position. */
export function writeVarint(buf: Uint8Array, pos: number, value: number): number {
  while (value >= 0x80) {
    buf[pos++] = (value & 0x7f) | 0x80;
    value = Math.floor(value / 128);
  }
  buf[pos++] = value;
  return pos;
}

/**
 * Reads a varint at `pos`. Returns the value, and stores the position after it in `cursor[0]`.
 * Returns -1 when the varint runs past `end` or is longer than a safe integer allows.
 */
export function readVarint(buf: Uint8Array, pos: number, end: number, cursor: number[]): number {
  let result = 0;
  let scale = 1;
  for (let i = 0; i < 8; i++) {
    if (pos >= end) return -1;
    const b = buf[pos++];
    result += (b & 0x7f) * scale;
    if (b < 0x80) {
      cursor[0] = pos;
      return result;
    }
    scale *= 128;
  }
  return -1;
}

/** Writes a non-negative safe integer as 8 bytes big-endian (the high 11 bits are zero). */
export function writeU64(view: DataView, pos: number, value: number): void {
  view.setUint32(pos, Math.floor(value / 0x1_0000_0000));
  view.setUint32(pos + 4, value >>> 0);
}

/** Reads 8 bytes big-endian as a number; returns -1 if the value exceeds a safe integer. */
export function readU64(view: DataView, pos: number): number {
  const hi = view.getUint32(pos);
  if (hi > 0x1f_ffff) return -1;
  return hi * 0x1_0000_0000 + view.getUint32(pos + 4);
}

/** A growable byte buffer for writers that do not know their output size in advance. */
export class ByteWriter {
  /** Backing storage; bytes `[0, length)` are written. */
  buf: Uint8Array;
  /** DataView over `buf`. */
  view: DataView;
  /** Bytes written so far. */
  length = 0;

  constructor(initialCapacity = 4096) {
    this.buf = new Uint8Array(initialCapacity);
    this.view = new DataView(this.buf.buffer);
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    const need = this.length + n;
    if (need <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < need) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** Appends one byte. */
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.length++] = v;
  }

  /** Appends a 32-bit unsigned big-endian integer. */
  u32(v: number): void {
    this.ensure(4);
    this.view.setUint32(this.length, v);
    this.length += 4;
  }

  /** Appends a safe non-negative integer as 8 bytes big-endian. */
  u64(v: number): void {
    this.ensure(8);
    writeU64(this.view, this.length, v);
    this.length += 8;
  }

  /** Appends a float64 big-endian. */
  f64(v: number): void {
    this.ensure(8);
    this.view.setFloat64(this.length, v);
    this.length += 8;
  }

  /** Appends a varint. */
  varint(v: number): void {
    this.ensure(10);
    this.length = writeVarint(this.buf, this.length, v);
  }

  /** Appends raw bytes. */
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  /** The written bytes (a view, valid until the next write). */
  written(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }

  /** Forgets the written bytes, keeping the capacity. */
  reset(): void {
    this.length = 0;
  }
}
