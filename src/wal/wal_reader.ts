/**
 * Replays a WAL file (layout in `wal_format.ts`): checks every frame's CRC, then hands each op
 * to a visitor in log order. Called by recovery when a tree opens; the caller emits a torn tail
 * on the `error` event and passes `validLength` to `WalWriter.openForAppend`, which cuts it off.
 *
 * Where the log ends: at the end of the file, or where only zeros follow (the writer writes
 * zeros ahead of its frames in the sync modes, see `PREALLOC_BYTES` in `wal_writer.ts`).
 *
 * Torn tail or corruption? The writer issues a write only once every earlier write is durable,
 * so a crash can damage only the last frame. Hence, at the first frame that is damaged
 * (checksum mismatch, impossible header, length past the end of the file, zeros before
 * non-zero bytes):
 * - if some valid frame starts after it, the damage is in the middle: `CorruptionError` naming
 *   the file and the damaged frame's offset;
 * - otherwise it is a torn tail: replay stops there and reports it.
 * A candidate frame after the damage counts once its header is plausible, its payload parses
 * (raw: well-formed records; LZ4: possible sequences) and its checksum holds. The checksums are
 * bounded by a budget; when it runs out the answer is corruption (the data stays for a repair)
 * rather than a cut. Without the parse, the byte runs of a torn multi-megabyte frame that pass
 * for frame headers spent that budget, and a crash during such a write could not reopen.
 * A frame whose checksum holds but whose records do not parse cannot come from a torn write, so
 * it is always corruption. A file shorter than its header, or whose header fails its checksum
 * with no valid frame after it, was torn while being created: an empty log with a torn tail.
 *
 * Invariants: no length read from the file is used to allocate or read before it is checked
 * against what remains in the file (or frame) and against `FRAME_PAYLOAD_MAX_BYTES`; the ops of
 * a frame are visited only after the whole frame passed its CRC and every record in it parsed,
 * so a damaged batch is never half-applied. Keys and values handed to the visitor are subarrays
 * of a buffer made for that frame alone and never reused, so the caller may keep them (they keep
 * their frame's payload alive).
 *
 * @module
 */
import { CorruptionError, IOError } from "../api/errors.ts";
import type { FileHandle, FileSystem } from "../fs/file_system.ts";
import { readU64, readVarint } from "../util/bytes.ts";
import { crc32c, type Crc32Function } from "../util/crc32c.ts";
import { crc32 } from "../util/crc32.ts";
import { lz4Decompress } from "../util/lz4.ts";
import { lz4PlausiblePrefix } from "../util/lz4_decode.ts";
import {
  decodeWalHeader,
  FRAME_HEADER_LZ4_BYTES,
  FRAME_HEADER_RAW_BYTES,
  FRAME_PAYLOAD_MAX_BYTES,
  FRAME_TYPE_LZ4,
  FRAME_TYPE_RAW,
  HEADER_CHECKSUM_MISMATCH,
  LZ4_EXPANSION_MAX,
  OP_FLAG_EXPIRES,
  OP_KIND_MAX,
  RECORD_MIN_BYTES,
  WAL_HEADER_BYTES,
  walFrameChecksum,
} from "./wal_format.ts";

/** Receives one op: its opIndex, kind, key, value and expiresAt (epoch ms, 0 = never). */
export type WalVisitor = (
  opIndex: number,
  kind: number,
  key: Uint8Array,
  value: Uint8Array,
  expiresAt: number,
) => void;

/** What a replay found. */
export interface WalReplayResult {
  /** The segment id from the header; -1 when the header itself was torn. */
  segmentId: number;
  /** Bytes of the file that hold the header and whole, valid frames (0 if the header is torn). */
  validLength: number;
  /** The opIndex of the last op visited; -1 when there was none. */
  lastOpIndex: number;
  /** Where and why replay stopped early, when the file ends in a torn frame. */
  tornTail?: { offset: number; reason: string };
}

/** Bytes read from the file at a time (frames larger than this are read whole). */
const READ_CHUNK_BYTES = 1 << 20;
/**
 * Deciding "valid frame after the damage?" checksums candidate frames; past this many bytes of
 * checksumming (or 4x the file size) replay stops guessing and reports corruption, which keeps
 * the data for a repair tool rather than cutting it off.
 */
const RESYNC_CRC_BUDGET_MIN_BYTES = 64 << 20;
/**
 * Bytes of a resync candidate's payload that are parsed at least before its checksum, when the
 * rest of the file is too large to read at once or the walk budget is spent (garbage fails in its
 * first records or sequences; a real frame passes, as it replays).
 */
const RESYNC_PEEK_BYTES = 4096;
/** Largest rest of a file after the damage that the resync check reads at once. */
const RESYNC_LOAD_MAX_BYTES = 64 << 20;

/**
 * Replays the WAL at `path`, calling `visit` for every op of every valid frame in order.
 * Throws `CorruptionError` (file, offset) for damage before the tail and `IOError` when the file
 * cannot be read.
 *
 * @example
 * ```ts
 * import { memoryFileSystem } from "../fs/memory_file_system.ts";
 * import { WalWriter } from "./wal_writer.ts";
 * import { replayWal } from "./wal_reader.ts";
 * const fs = memoryFileSystem();
 * const wal = WalWriter.create(fs, "/1.wal", 1, "sync");
 * wal.appendOne(7, 0, new Uint8Array([1]), new Uint8Array([2]), 0);
 * wal.closeSync();
 * const seen: number[] = [];
 * const result = replayWal(fs, "/1.wal", (opIndex) => seen.push(opIndex));
 * console.assert(result.lastOpIndex === 7 && seen[0] === 7);
 * ```
 */
export function replayWal(fs: FileSystem, path: string, visit: WalVisitor): WalReplayResult {
  let handle: FileHandle;
  try {
    handle = fs.openFile(path, { readOnly: true });
  } catch (e) {
    throw new IOError(`cannot open WAL ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    return new Replay(path, new FileWindow(path, handle), visit).run();
  } finally {
    handle.close();
  }
}

/** A read window over the file, so frames are read in large chunks, not one syscall each. */
class FileWindow {
  buf: Uint8Array = new Uint8Array(0);
  /** File offset of `buf[0]`. */
  start = 0;
  /** File offset after the last loaded byte. */
  end = 0;
  readonly size: number;

  constructor(private readonly path: string, private readonly handle: FileHandle) {
    this.size = handle.size();
  }

  /**
   * Makes file bytes `[off, off + n)` readable at `buf[off - start]`. The caller checked that
   * `off + n <= size`, so `n` is bounded by the file's real size.
   */
  load(off: number, n: number): Uint8Array {
    if (off >= this.start && off + n <= this.end) return this.buf;
    const want = Math.min(Math.max(n, READ_CHUNK_BYTES), this.size - off);
    if (this.buf.length < want) this.buf = new Uint8Array(want);
    let got: number;
    try {
      got = this.handle.read(this.buf, off, want);
    } catch (e) {
      throw new IOError(`cannot read WAL ${this.path} at ${off}: ${(e as Error).message}`, {
        cause: e,
      });
    }
    if (got < n) throw new IOError(`WAL ${this.path} shrank while being read (offset ${off})`);
    this.start = off;
    this.end = off + got;
    return this.buf;
  }
}

function u32(b: Uint8Array, i: number): number {
  return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
}

class Replay {
  private lastOpIndex = -1;
  private readonly cursor = [0];
  /** The frame checksum of the file's format version; undefined while the header is unread or damaged. */
  private frameCrc: Crc32Function | undefined;
  /** Set by `checkFrame` for the frame it accepted. */
  private frameHeaderBytes = 0;
  private frameType = 0;
  private framePayloadBytes = 0;
  private frameRawBytes = 0;

  constructor(
    private readonly path: string,
    private readonly win: FileWindow,
    private readonly visit: WalVisitor,
  ) {}

  run(): WalReplayResult {
    const size = this.win.size;
    if (size < WAL_HEADER_BYTES) {
      return this.tornAtCreation(size === 0 ? "empty file" : "file header is torn");
    }
    const headerBytes = this.win.load(0, WAL_HEADER_BYTES);
    const header = decodeWalHeader(headerBytes, 0 - this.win.start);
    if (typeof header === "number") {
      this.frameCrc = walFrameChecksum(headerBytes[5 - this.win.start]);
    }
    if (typeof header === "string") {
      if (header !== HEADER_CHECKSUM_MISMATCH || this.validFrameAfter(0)) {
        throw new CorruptionError(this.path, 0, header);
      }
      return this.tornAtCreation(header);
    }
    let off = WAL_HEADER_BYTES;
    while (off < size) {
      const next = this.readFrame(off);
      if (typeof next === "string") {
        // Only zeros from here on: the writer's zeros ahead of its frames (sync modes; see
        // PREALLOC_BYTES in wal_writer.ts), or a last frame of which nothing reached the disk.
        // The log ends here either way, and nothing acknowledged was lost.
        if (this.zerosFrom(off)) {
          return { segmentId: header, validLength: off, lastOpIndex: this.lastOpIndex };
        }
        if (this.validFrameAfter(off)) throw new CorruptionError(this.path, off, next);
        const tornTail = { offset: off, reason: next };
        return { segmentId: header, validLength: off, lastOpIndex: this.lastOpIndex, tornTail };
      }
      off = next;
    }
    return { segmentId: header, validLength: off, lastOpIndex: this.lastOpIndex };
  }

  /** Whether every byte from `off` to the end of the file is zero. */
  private zerosFrom(off: number): boolean {
    const size = this.win.size;
    for (let p = off; p < size;) {
      const n = Math.min(READ_CHUNK_BYTES, size - p);
      const b = this.win.load(p, n);
      for (let i = p - this.win.start, end = i + n; i < end; i++) if (b[i] !== 0) return false;
      p += n;
    }
    return true;
  }

  private tornAtCreation(reason: string): WalReplayResult {
    return { segmentId: -1, validLength: 0, lastOpIndex: -1, tornTail: { offset: 0, reason } };
  }

  /**
   * Checks the frame at `off`: a plausible header, a length that fits in the file, and the CRC.
   * Returns the frame's end offset, or why it is not a valid frame.
   */
  private checkFrame(off: number): number | string {
    const left = this.win.size - off;
    if (left < FRAME_HEADER_RAW_BYTES) return "truncated frame header";
    let b = this.win.load(off, Math.min(FRAME_HEADER_LZ4_BYTES, left));
    let i = off - this.win.start;
    const payloadBytes = u32(b, i);
    const type = b[i + 8];
    if (type !== FRAME_TYPE_RAW && type !== FRAME_TYPE_LZ4) return `unknown frame type ${type}`;
    const headerBytes = type === FRAME_TYPE_LZ4 ? FRAME_HEADER_LZ4_BYTES : FRAME_HEADER_RAW_BYTES;
    if (left < headerBytes) return "truncated frame header";
    if (payloadBytes === 0) return "empty frame (zeros)";
    if (payloadBytes > FRAME_PAYLOAD_MAX_BYTES || payloadBytes > left - headerBytes) {
      return `frame of ${payloadBytes} bytes runs past the end of the file`;
    }
    let rawBytes = payloadBytes;
    if (type === FRAME_TYPE_LZ4) {
      rawBytes = u32(b, i + 9);
      if (rawBytes > FRAME_PAYLOAD_MAX_BYTES || rawBytes > payloadBytes * LZ4_EXPANSION_MAX + 64) {
        return `implausible decompressed length ${rawBytes}`;
      }
    }
    if (rawBytes < RECORD_MIN_BYTES) return "frame too short to hold a record";
    const crc = u32(b, i + 4);
    b = this.win.load(off, headerBytes + payloadBytes);
    i = off - this.win.start;
    const frameCrc = this.frameCrc;
    if (frameCrc !== undefined) {
      if (frameCrc(b, i + 8, i + headerBytes + payloadBytes) !== crc) return "checksum mismatch";
    } else if (
      // The header is damaged, so its version is unknown: a frame of either version counts.
      crc32(b, i + 8, i + headerBytes + payloadBytes) !== crc &&
      crc32c(b, i + 8, i + headerBytes + payloadBytes) !== crc
    ) return "checksum mismatch";
    this.frameHeaderBytes = headerBytes;
    this.frameType = type;
    this.framePayloadBytes = payloadBytes;
    this.frameRawBytes = rawBytes;
    return off + headerBytes + payloadBytes;
  }

  /** Checks, decodes and visits the frame at `off`; returns its end or why it is damaged. */
  private readFrame(off: number): number | string {
    const end = this.checkFrame(off);
    if (typeof end === "string") return end;
    const i = off - this.win.start + this.frameHeaderBytes;
    const stored = this.win.buf.subarray(i, i + this.framePayloadBytes);
    let payload: Uint8Array | undefined;
    if (this.frameType === FRAME_TYPE_RAW) {
      payload = stored.slice();
    } else {
      payload = lz4Decompress(stored, this.frameRawBytes);
      if (payload === undefined) {
        throw new CorruptionError(
          this.path,
          off,
          "lz4 payload does not decode to its recorded length",
        );
      }
    }
    this.parseRecords(payload, off, false);
    this.parseRecords(payload, off, true);
    return end;
  }

  /**
   * Walks the records of a payload. With `visiting` false it only validates (so a malformed
   * frame throws before any of its ops is visited); with true it visits every op.
   */
  private parseRecords(p: Uint8Array, frameOff: number, visiting: boolean): void {
    const bad = this.walkRecords(p, p.length, visiting);
    if (bad !== undefined) this.malformed(frameOff, this.cursor[0], bad);
  }

  /**
   * Checks the records of a payload of `end` bytes whose first `p.length` bytes are `p` (all of
   * it for a frame being replayed; a peek at its start for a resync candidate), visiting every
   * op when `visiting` (only with the whole payload, after a validating walk). Returns undefined
   * when every record is well formed, or, for a peek, well formed as far as the peeked bytes go;
   * else what is wrong, with its payload position in `cursor[0]`. Both replay and
   * {@link validFrameAfter} use it, so a frame that replays always passes the resync check.
   */
  private walkRecords(p: Uint8Array, end: number, visiting: boolean): string | undefined {
    const view = new DataView(p.buffer, p.byteOffset, p.length);
    const cur = this.cursor;
    // Bytes a check may read; past them a peek stops, plausible so far.
    const have = p.length;
    let pos = 0;
    while (pos < end) {
      if (end - pos < RECORD_MIN_BYTES) return this.badAt(pos, "record shorter than its header");
      if (pos + RECORD_MIN_BYTES > have) return undefined;
      const opIndex = readU64(view, pos);
      if (opIndex < 0) return this.badAt(pos, "opIndex exceeds 2^53");
      const count = readVarint(p, pos + 8, have, cur);
      if (count < 0 && have < end && pos + 16 >= have) return undefined;
      // Every op takes at least 4 bytes, which bounds the count by what remains.
      if (count < 1 || count > (end - pos) / 4) return this.badAt(pos, `bad op count ${count}`);
      if (opIndex > Number.MAX_SAFE_INTEGER - (count - 1)) return this.badAt(pos, "opIndex overflow");
      let q = cur[0];
      for (let k = 0; k < count; k++) {
        if (end - q < 4) return this.badAt(q, "op runs past the end of the frame");
        if (q + 4 > have) return undefined;
        const kind = p[q];
        const flags = p[q + 1];
        if (kind > OP_KIND_MAX) return this.badAt(q, `unknown op kind ${kind}`);
        if ((flags & ~OP_FLAG_EXPIRES) !== 0) return this.badAt(q, `unknown op flags ${flags}`);
        const keyLength = readVarint(p, q + 2, have, cur);
        if (keyLength < 0 && have < end && q + 10 >= have) return undefined;
        if (keyLength < 0 || keyLength > end - cur[0]) return this.badAt(q, "bad key length");
        const keyStart = cur[0];
        q = keyStart + keyLength;
        if (q >= have && have < end) return undefined;
        const valueLength = readVarint(p, q, have, cur);
        if (valueLength < 0 && have < end && q + 8 >= have) return undefined;
        if (valueLength < 0 || valueLength > end - cur[0]) return this.badAt(q, "bad value length");
        const valueStart = cur[0];
        q = valueStart + valueLength;
        let expiresAt = 0;
        if ((flags & OP_FLAG_EXPIRES) !== 0) {
          if (end - q < 8) return this.badAt(q, "expiresAt runs past the end of the frame");
          if (q + 8 > have) return undefined;
          expiresAt = view.getFloat64(q);
          if (!Number.isFinite(expiresAt)) return this.badAt(q, `bad expiresAt ${expiresAt}`);
          q += 8;
        }
        if (visiting) {
          const key = p.subarray(keyStart, keyStart + keyLength);
          this.visit(
            opIndex + k,
            kind,
            key,
            p.subarray(valueStart, valueStart + valueLength),
            expiresAt,
          );
        }
      }
      if (visiting) this.lastOpIndex = opIndex + count - 1;
      pos = q;
    }
    return undefined;
  }

  /** `what`, with `at` left in `cursor[0]`: how {@link walkRecords} reports a malformation. */
  private badAt(at: number, what: string): string {
    this.cursor[0] = at;
    return what;
  }

  private malformed(frameOff: number, payloadPos: number, what: string): never {
    throw new CorruptionError(
      this.path,
      frameOff,
      `malformed record at payload byte ${payloadPos}: ${what}`,
    );
  }

  /**
   * True when a valid frame starts anywhere after `off` (then the damage at `off` is not a torn
   * tail). Cheap checks come first (frame type, length within the file; raw: an opIndex after
   * the last one seen, then records that parse; LZ4: a plausible decoded length, then possible
   * sequences); only candidates passing them are checksummed, within a budget.
   */
  private validFrameAfter(off: number): boolean {
    const size = this.win.size;
    // The rest of the file in one read unless it is large: candidates then cost no reads.
    if (size - off <= RESYNC_LOAD_MAX_BYTES) this.win.load(off, size - off);
    let budget = Math.max(RESYNC_CRC_BUDGET_MIN_BYTES, 4 * size);
    // Bytes of candidate payloads whose records may be walked whole; past it, only peeks.
    let walkBudget = budget;
    for (let p = off + 1; p + FRAME_HEADER_RAW_BYTES + RECORD_MIN_BYTES <= size; p++) {
      const b = this.win.load(p, Math.min(FRAME_HEADER_LZ4_BYTES + 8, size - p));
      const i = p - this.win.start;
      const type = b[i + 8];
      if (type !== FRAME_TYPE_RAW && type !== FRAME_TYPE_LZ4) continue;
      const headerBytes = type === FRAME_TYPE_LZ4 ? FRAME_HEADER_LZ4_BYTES : FRAME_HEADER_RAW_BYTES;
      const payloadBytes = u32(b, i);
      if (payloadBytes === 0 || payloadBytes > size - p - headerBytes) continue;
      const rawBytes = u32(b, i + 9); // LZ4: the decoded length; raw: the high word of the opIndex
      if (type === FRAME_TYPE_RAW) {
        if (payloadBytes < RECORD_MIN_BYTES || rawBytes > 0x1f_ffff) continue;
        const opIndex = rawBytes * 0x1_0000_0000 + u32(b, i + 13);
        if (opIndex <= this.lastOpIndex) continue;
      } else {
        if (rawBytes <= payloadBytes || rawBytes > payloadBytes * LZ4_EXPANSION_MAX + 64) continue;
        if (b[i + 13] >> 4 === 0) continue;
      }
      // Its payload must look like one before it costs a checksum (a torn frame's payload is
      // full of byte runs that pass the checks above): raw, well-formed records; LZ4, possible
      // sequences. All of it when the rest of the file is in the window (within a budget),
      // else its first RESYNC_PEEK_BYTES.
      const start = p + headerBytes;
      const peek = Math.min(payloadBytes, RESYNC_PEEK_BYTES);
      const w = this.win.load(start, peek);
      const at = start - this.win.start;
      const have = Math.max(peek, Math.min(payloadBytes, this.win.end - start, walkBudget));
      walkBudget -= have;
      if (type === FRAME_TYPE_RAW) {
        if (this.walkRecords(w.subarray(at, at + have), payloadBytes, false) !== undefined) {
          continue;
        }
      } else if (!lz4PlausiblePrefix(w, at, at + have, rawBytes)) {
        continue;
      }
      budget -= payloadBytes;
      if (budget < 0) return true;
      if (typeof this.checkFrame(p) === "number") return true;
    }
    return false;
  }
}
