/**
 * A record stream: records (key, value, opIndex, kind, expiresAt) packed into plain
 * `ArrayBuffer` chunks, so that the newer side of a merge can be handed to a merge Worker by
 * transfer (no copy, no structured clone of a million small objects).
 *
 * Layout of one record, little-endian, records back to back inside a chunk:
 *
 *   offset 0   u32  key length K
 *   offset 4   u32  value length V
 *   offset 8   u8   kind (KIND_PUT / KIND_DELETE)
 *   offset 9   f64  opIndex
 *   offset 17  f64  expiresAt (epoch ms, 0 = never)
 *   offset 25  K bytes key, then V bytes value
 *
 * A record never spans two chunks: a record larger than the chunk size gets a chunk of its own.
 * Chunks live in memory only (never on disk), so there is no checksum.
 *
 * @module
 */
import { EMPTY, KIND_PUT, type RecordCursor, type RecordSlot } from "../iter/record.ts";

/** Bytes of the fixed part of one record. */
const HEADER_BYTES = 25;
/** Target size of one chunk. */
const CHUNK_BYTES = 1 << 20;

/** A chunk as it travels: its buffer and the bytes of it in use. */
export interface RecordChunk {
  buffer: ArrayBuffer;
  length: number;
}

/** Packs records into chunks, in the order they are added. */
export class RecordStreamWriter {
  readonly chunks: RecordChunk[] = [];
  recordCount = 0;
  #bytes: Uint8Array = new Uint8Array(0);
  #view: DataView = new DataView(this.#bytes.buffer);
  #pos = 0;

  /** Appends a copy of `r`. */
  add(r: RecordSlot): void {
    const k = r.key.length;
    const v = r.value.length;
    const size = HEADER_BYTES + k + v;
    if (this.#pos + size > this.#bytes.length) this.#newChunk(size);
    const view = this.#view;
    const p = this.#pos;
    view.setUint32(p, k, true);
    view.setUint32(p + 4, v, true);
    view.setUint8(p + 8, r.kind);
    view.setFloat64(p + 9, r.opIndex, true);
    view.setFloat64(p + 17, r.expiresAt, true);
    this.#bytes.set(r.key, p + HEADER_BYTES);
    this.#bytes.set(r.value, p + HEADER_BYTES + k);
    this.#pos = p + size;
    this.chunks[this.chunks.length - 1].length = this.#pos;
    this.recordCount++;
  }

  #newChunk(atLeast: number): void {
    const buffer = new ArrayBuffer(Math.max(CHUNK_BYTES, atLeast));
    this.#bytes = new Uint8Array(buffer);
    this.#view = new DataView(buffer);
    this.#pos = 0;
    this.chunks.push({ buffer, length: 0 });
  }
}

/**
 * A forward cursor over the records of a stream, in the order they were added (which must be
 * ascending key order for a merge). `key` and `value` are views into the chunks: they stay valid
 * as long as the chunks do. `seek` with a target scans from the start (merges only ever seek to
 * the first record).
 */
export class RecordStreamCursor implements RecordCursor {
  readonly reverse = false;
  valid = false;
  key: Uint8Array = EMPTY;
  value: Uint8Array = EMPTY;
  opIndex = 0;
  kind: number = KIND_PUT;
  expiresAt = 0;
  readonly #chunks: RecordChunk[];
  readonly #compare: (a: Uint8Array, b: Uint8Array) => number;
  #chunk = -1;
  #bytes: Uint8Array = EMPTY;
  #view: DataView = new DataView(new ArrayBuffer(0));
  #end = 0;
  #pos = 0;

  constructor(chunks: RecordChunk[], compare: (a: Uint8Array, b: Uint8Array) => number) {
    this.#chunks = chunks;
    this.#compare = compare;
  }

  /** See RecordCursor.copyValue. */
  copyValue(): Uint8Array {
    return this.valid ? this.value.slice() : new Uint8Array(0);
  }

  seek(target: Uint8Array | undefined, exclusive = false): boolean {
    this.#chunk = -1;
    this.#end = 0;
    this.#pos = 0;
    this.#read();
    if (target === undefined) return this.valid;
    while (this.valid) {
      const c = this.#compare(this.key, target);
      if (c > 0 || (c === 0 && !exclusive)) break;
      this.#read();
    }
    return this.valid;
  }

  next(): boolean {
    if (this.#chunk < 0) return this.seek(undefined);
    return this.#read();
  }

  /** Reads the record at the current position and moves past it. */
  #read(): boolean {
    while (this.#pos >= this.#end) {
      if (++this.#chunk >= this.#chunks.length) {
        this.valid = false;
        this.key = EMPTY;
        this.value = EMPTY;
        return false;
      }
      const c = this.#chunks[this.#chunk];
      this.#bytes = new Uint8Array(c.buffer, 0, c.length);
      this.#view = new DataView(c.buffer, 0, c.length);
      this.#end = c.length;
      this.#pos = 0;
    }
    const view = this.#view;
    const p = this.#pos;
    const k = view.getUint32(p, true);
    const v = view.getUint32(p + 4, true);
    this.kind = view.getUint8(p + 8);
    this.opIndex = view.getFloat64(p + 9, true);
    this.expiresAt = view.getFloat64(p + 17, true);
    const ks = p + HEADER_BYTES;
    this.key = this.#bytes.subarray(ks, ks + k);
    this.value = this.#bytes.subarray(ks + k, ks + k + v);
    this.#pos = ks + k + v;
    this.valid = true;
    return true;
  }

  close(): void {
    this.valid = false;
  }
}
