/**
 * The data of the peer benchmark (issue 6), generated from fixed seeds so that every engine and
 * every run gets identical bytes. Keys and values are views into a few large buffers, built
 * before any timer starts. Values are random bytes, so compression cannot flatter anyone.
 */
import { Prng } from "../../src/util/prng.ts";

export type Bytes = Uint8Array;
export type Entry = [Bytes, Bytes];

/** Readings are one minute apart, so a one-hour window holds 60 readings of a sensor. */
export const TS_BASE_MS = 1_700_000_000_000;
export const TS_STEP_MS = 60_000;
export const HOUR_MS = 3_600_000;

/** `n` random bytes (four per PRNG call). */
export function randomBytes(prng: Prng, n: number): Bytes {
  const words = new Uint32Array(Math.ceil(n / 4));
  for (let i = 0; i < words.length; i++) words[i] = prng.u32();
  return new Uint8Array(words.buffer, 0, n);
}

/** `count` views of `width` bytes each over one buffer. */
export function views(buffer: Bytes, width: number, count: number): Bytes[] {
  const out = new Array<Bytes>(count);
  for (let i = 0; i < count; i++) {
    out[i] = buffer.subarray(i * width, (i + 1) * width);
  }
  return out;
}

/** The 16-byte big-endian encoding of counter `i` (i < 2^53). */
export function counterKey(i: number, out: Bytes = new Uint8Array(16)): Bytes {
  const view = new DataView(out.buffer, out.byteOffset, 16);
  view.setUint32(8, Math.floor(i / 0x1_0000_0000));
  view.setUint32(12, i >>> 0);
  return out;
}

/** The keys of the given counters, as views into one fresh buffer (no identity with the loaded keys). */
export function counterKeys(counters: number[]): Bytes[] {
  const buffer = new Uint8Array(counters.length * 16);
  for (let i = 0; i < counters.length; i++) {
    counterKey(counters[i], buffer.subarray(i * 16, i * 16 + 16));
  }
  return views(buffer, 16, counters.length);
}

/** Keys 0..n-1 as 16-byte big-endian counters, and one random value of `valueBytes` each. */
export function counterData(n: number, valueBytes: number, seed: number) {
  const keyBuffer = new Uint8Array(n * 16);
  for (let i = 0; i < n; i++) {
    counterKey(i, keyBuffer.subarray(i * 16, i * 16 + 16));
  }
  const values = views(
    randomBytes(new Prng(seed), n * valueBytes),
    valueBytes,
    n,
  );
  return { keys: views(keyBuffer, 16, n), values };
}

/** A seeded permutation of 0..n-1 (Fisher-Yates). */
export function permutation(n: number, prng: Prng): Uint32Array {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = prng.int(i + 1);
    const t = out[i];
    out[i] = out[j];
    out[j] = t;
  }
  return out;
}

/** The entries in `order` (default ascending), cut into batches of `size`. */
export function batches(
  keys: Bytes[],
  values: Bytes[],
  size: number,
  order?: Uint32Array,
): Entry[][] {
  const out: Entry[][] = [];
  for (let start = 0; start < keys.length; start += size) {
    const batch: Entry[] = [];
    for (let i = start; i < Math.min(start + size, keys.length); i++) {
      const j = order ? order[i] : i;
      batch.push([keys[j], values[j]]);
    }
    out.push(batch);
  }
  return out;
}

/** The sensor id of sensor number `s`. */
export function sensorId(s: number): string {
  return `sensor-${String(s).padStart(4, "0")}`;
}

/**
 * The bytes of key `sensor:<str>:ts:<u64be>` as every engine gets them: utf8(sensor id), the
 * terminator 0x00 0x00, then the timestamp as 8 bytes big-endian. Without `ts`: the prefix of
 * every reading of that sensor.
 */
export function tsKey(sensor: string, ts?: number): Bytes {
  const id = new TextEncoder().encode(sensor);
  const out = new Uint8Array(id.length + 2 + (ts === undefined ? 0 : 8));
  out.set(id);
  if (ts !== undefined) {
    const view = new DataView(out.buffer);
    view.setUint32(id.length + 2, Math.floor(ts / 0x1_0000_0000));
    view.setUint32(id.length + 6, ts >>> 0);
  }
  return out;
}

/** The first key after every key with prefix tsKey(sensor): the terminator's last byte + 1. */
export function tsPrefixEnd(sensor: string): Bytes {
  const out = tsKey(sensor);
  out[out.length - 1] = 0x01;
  return out;
}

/**
 * `sensors` x `readings` time-series entries in arrival order: time-first (every sensor's reading
 * for minute 0, then minute 1, ...), one batch per minute; 16-byte random values. Keys are views
 * into one buffer, so the harness itself stays small in RSS.
 */
export function tsData(sensors: number, readings: number, seed: number): Entry[][] {
  const values = views(
    randomBytes(new Prng(seed), sensors * readings * 16),
    16,
    sensors * readings,
  );
  const prefixes = Array.from({ length: sensors }, (_, s) => tsKey(sensorId(s)));
  const keyBytes = prefixes.reduce((sum, p) => sum + p.length + 8, 0) * readings;
  const keyBuffer = new Uint8Array(keyBytes);
  const view = new DataView(keyBuffer.buffer);
  let offset = 0;
  const out: Entry[][] = [];
  for (let r = 0; r < readings; r++) {
    const ts = TS_BASE_MS + r * TS_STEP_MS;
    const batch: Entry[] = [];
    for (let s = 0; s < sensors; s++) {
      const start = offset;
      keyBuffer.set(prefixes[s], offset);
      offset += prefixes[s].length;
      view.setUint32(offset, Math.floor(ts / 0x1_0000_0000));
      view.setUint32(offset + 4, ts >>> 0);
      offset += 8;
      batch.push([keyBuffer.subarray(start, offset), values[r * sensors + s]]);
    }
    out.push(batch);
  }
  return out;
}
