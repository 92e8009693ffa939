/**
 * Appends records to one WAL file, in one of the four modes of API.md §6. The engine keeps one
 * writer per in-memory segment and calls `appendOne`/`appendBatch` before it applies a write.
 * The byte layout is in `wal_format.ts`.
 *
 * Modes:
 * - "sync": each append is one raw frame, written and fdatasync'ed before the call returns
 *   (`appendBatchOverlapped`: the sync runs on the helper thread until `settleSync`, so that
 *   the engine applies a large batch meanwhile).
 * - "sync-compressed": the same, with the frame lz4-compressed when that makes it smaller.
 * - "async-compressed": appends are encoded into an in-memory buffer (no syscall); a background
 *   step writes the whole buffer as one frame (lz4 when smaller) and fdatasyncs it, at most
 *   every `SYNC_INTERVAL_MS` while appends keep coming. When the buffer passes
 *   `ASYNC_BUFFER_MAX_BYTES` the append itself writes it (raw) if the file is synced. While a
 *   background sync is in flight and the event loop has turned since it began (so it is slow,
 *   not starved), the buffer grows instead, and only past `ASYNC_BUFFER_HARD_MAX_BYTES` does
 *   the append wait for that sync; a writer that has not yielded since waits at 1 MiB, so the
 *   next background sync overlaps its work. Memory stays bounded.
 * - In both compressed modes, a frame of 4 KiB or more that LZ4 shrinks by less than a fifth
 *   makes the next 16 frames go out raw without trying (incompressible values cost the
 *   compressor about 1 µs per 130-byte op for a 10% smaller log).
 *   `flush()` resolves once everything appended before it is durable.
 * - "none": nothing is written and no file exists; the writer only counts bytes.
 *
 * Invariants that make a crash at any point recoverable by `replayWal`:
 * - Each write to the file is one whole frame (or the header) right after the last frame, or
 *   zeros after that frame (the sync modes write 1 MiB of zeros ahead whenever a frame reaches
 *   the end of the file, so that later frames' syncs do not also commit a larger file; see
 *   {@link PREALLOC_BYTES}). The reader takes zeros to the end of the file for the end of the
 *   log; a clean close cuts them off.
 * - At most one write is not yet synced: a write is only issued once every earlier write is
 *   durable (in async mode the overflow path syncs first, blocking, or waits for the sync it
 *   started on the helper thread after its previous write: `FileHandle.startSync`, local files,
 *   see `util/helper_thread.ts`; in the sync modes every append, flush and close first waits
 *   for an overlapped batch's sync). So after a crash only the
 *   last frame can be damaged, and the reader can tell a torn tail from corruption in the middle.
 * - Across the logs of consecutive segments ({@link WalWriter.follow}): no frame of a log is
 *   written before every record of the previous log is durable, so what a crash leaves of all
 *   the logs together is a prefix of the writes.
 * - After any write or sync fails the writer is poisoned: every later call throws the same
 *   `IOError` (after a failed fsync the page cache can no longer be trusted, and a half-written
 *   frame must stay the last thing in the file).
 *
 * @module
 */
import { ClosedError, IOError } from "../api/errors.ts";
import type { FileHandle, FileSystem, SyncTicket } from "../fs/file_system.ts";
import { assert } from "../util/assert.ts";
import { writeVarint } from "../util/bytes.ts";
import type { Crc32Function } from "../util/crc32c.ts";
import { lz4BlockBound, lz4CompressInto } from "../util/lz4_block.ts";
import {
  decodeWalHeader,
  dirOf,
  encodeWalHeader,
  FRAME_HEADER_LZ4_BYTES,
  FRAME_HEADER_RAW_BYTES,
  FRAME_PAYLOAD_MAX_BYTES,
  FRAME_TYPE_LZ4,
  FRAME_TYPE_RAW,
  OP_FLAG_EXPIRES,
  OpColumns,
  OP_KIND_MAX,
  WAL_FORMAT_VERSION,
  WAL_HEADER_BYTES,
  walFrameChecksum,
  type WalBatch,
  type WalMode,
  type WalOp,
} from "./wal_format.ts";

/**
 * In async mode, an append that grows the buffer past this writes it at once, unless the
 * previous write is still being synced in the background: then the buffer keeps growing, up to
 * {@link ASYNC_BUFFER_HARD_MAX_BYTES}, until that sync lands.
 */
export const ASYNC_BUFFER_MAX_BYTES = 1 << 20;
/**
 * In async mode, the most bytes buffered before an append blocks on the background sync in
 * flight (a synchronous fsync on the caller's thread). Under a merge's I/O an fsync took 11-39
 * ms, and every append that overflowed the 1 MiB buffer used to wait for it.
 */
export const ASYNC_BUFFER_HARD_MAX_BYTES = 8 << 20;
/** In async mode, the least time between background syncs while appends keep arriving. */
export const SYNC_INTERVAL_MS = 2;
/** A frame that LZ4 shrinks by less than 1/this makes the next frames skip compression. */
const LZ4_MIN_SAVING = 5;
/** Frames written raw, without trying LZ4, after one that did not compress well. */
const LZ4_SKIP_FRAMES = 16;
/** Only frames this large judge compressibility (small ones are cheap to try, and noisy). */
const LZ4_PROBE_MIN_BYTES = 4096;
/** Records are encoded after this much room, so a frame header fits in front without a copy. */
const PAYLOAD_START = FRAME_HEADER_LZ4_BYTES;
/** Worst-case bytes of a record beyond its keys and values: opIndex, count, then per op. */
const RECORD_HEADER_MAX = 8 + 5;
const OP_OVERHEAD_MAX = 2 + 5 + 5 + 8;
/** Buffers that grew past this for one huge batch are shrunk back after it is written. */
const BUFFER_KEEP_MAX_BYTES = 4 * ASYNC_BUFFER_MAX_BYTES;
/**
 * In the sync modes, zeros written past the last frame whenever a frame under
 * {@link PREALLOC_FRAME_MAX_BYTES} reaches the end of the file, so that the frames after it
 * overwrite blocks inside the file instead of growing it. An `fdatasync` after a write that
 * grows a file also commits the new size and block allocation to the filesystem's journal; one
 * after an overwrite flushes data only. PostgreSQL zero-fills its WAL segments for the same
 * reason. Measured with `bun bench/wal_prealloc.ts` on the 2-core VM we benchmark on (ext4),
 * write + `fdatasync` per frame, two runs: 130-byte frames 225-255 us appended, 150-210 us with
 * these zeros ahead (their cost included); 116 KB frames 390-515 us against 290-440 us.
 */
export const PREALLOC_BYTES = 1 << 20;
/**
 * Frames this large or larger are not followed by zeros: their sync is bound by the data itself,
 * and writing as many zeros again cost more than the journal commit it saved (1 MB frames,
 * `bench/wal_prealloc.ts`: 960-1330 us appended, 980-1375 us with zeros ahead).
 */
export const PREALLOC_FRAME_MAX_BYTES = 256 * 1024;
let zeros: Uint8Array | undefined;

const MODE_SYNC = 0;
const MODE_SYNC_COMPRESSED = 1;
const MODE_ASYNC = 2;
const MODE_NONE = 3;
const MODE_CODES: Record<WalMode, number> = {
  "sync": MODE_SYNC,
  "sync-compressed": MODE_SYNC_COMPRESSED,
  "async-compressed": MODE_ASYNC,
  "none": MODE_NONE,
};

interface FlushWaiter {
  target: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** opIndexes `first .. first + count - 1` must be safe non-negative integers (the format's range). */
function checkOpIndex(first: number, count: number): void {
  if (
    !(first >= 0 && first <= Number.MAX_SAFE_INTEGER - (count - 1) && Math.floor(first) === first)
  ) {
    assert(false, `bad opIndex ${first} (count ${count})`);
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * The writer of one WAL file.
 *
 * @example
 * ```ts
 * import { memoryFileSystem } from "../fs/memory_file_system.ts";
 * import { WalWriter } from "./wal_writer.ts";
 * const fs = memoryFileSystem();
 * const wal = WalWriter.create(fs, "/1.wal", 1, "async-compressed");
 * wal.appendOne(1, 0, new Uint8Array([1]), new Uint8Array([2]), 0);
 * await wal.close();
 * ```
 */
export class WalWriter {
  /** Called once with the error when a background write or sync fails. */
  onError: ((e: IOError) => void) | undefined;
  /** The file's path. */
  readonly path: string;
  /** The mode this writer was made with. */
  readonly mode: WalMode;

  private readonly modeCode: number;
  /** The frame checksum of the file's format version (`walFrameChecksum`). */
  private readonly frameCrc: Crc32Function;
  /** The file; undefined in mode "none", and while a deferred create is still opening it. */
  private handle: FileHandle | undefined;
  /** Set while a deferred create (`createDeferred`) opens and syncs the new file. */
  private opening: Promise<void> | undefined;
  /** False from the start of a background sync or create until the event loop's next turn. */
  private turnSeen = true;
  private turnProbe: ReturnType<typeof setTimeout> | undefined;
  /** What `takeOverOpen` needs from a deferred create. */
  private deferred: { fs: FileSystem; segmentId: number } | undefined;
  /** Encoded records not yet written, in `[PAYLOAD_START, len)`. */
  private buf: Uint8Array;
  private view: DataView;
  private len = PAYLOAD_START;
  /** Output buffer for compressed frames. */
  private out: Uint8Array = new Uint8Array(0);
  private outView: DataView = new DataView(this.out.buffer);
  /** Frames still to write raw without trying LZ4 (see {@link LZ4_SKIP_FRAMES}). */
  private lz4Skip = 0;
  /** Bytes in the file (header and frames), written and durable. */
  private fileBytes: number;
  private fileSyncedBytes: number;
  /**
   * Where the file ends: past {@link fileBytes} are only zeros, written ahead in the sync modes
   * (see {@link PREALLOC_BYTES}) and cut off again by a clean close.
   */
  private fileEnd: number;
  /** Record bytes appended, written into frames, and durable: flush targets compare these. */
  private appendedBytes = 0;
  private writtenBytes = 0;
  private syncedBytes = 0;
  private failure: IOError | undefined;
  /** Whether `onError` was called (it is called at most once). */
  private reported = false;
  private closing = false;
  private closed = false;
  /** The pending "write soon" timer, cleared on close so no timer outlives the writer. */
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** True while `pump` runs; set before it starts and cleared in its last synchronous step. */
  private pumpActive = false;
  /** A sync started on another thread by the overflow path, not yet seen to finish. */
  private ticket: { sync: SyncTicket; fileBytes: number; recordBytes: number } | undefined;
  private pumpDone: Promise<void> = Promise.resolve();
  private wake: (() => void) | undefined;
  private waiters: FlushWaiter[] = [];
  /**
   * The log of the previous segment (see {@link WalWriter.follow}) while some record appended to
   * it may not be durable: no frame of this log is written before all of them are.
   */
  private predecessor: WalWriter | undefined;

  private constructor(
    path: string,
    mode: WalMode,
    handle: FileHandle | undefined,
    fileBytes: number,
    version = WAL_FORMAT_VERSION,
  ) {
    this.frameCrc = walFrameChecksum(version);
    this.path = path;
    this.mode = mode;
    this.modeCode = MODE_CODES[mode];
    assert(this.modeCode !== undefined, `unknown WAL mode ${mode}`);
    this.handle = handle;
    this.fileBytes = fileBytes;
    this.fileSyncedBytes = fileBytes;
    this.fileEnd = fileBytes;
    this.buf = new Uint8Array(this.initialCapacity());
    this.view = new DataView(this.buf.buffer);
  }

  /** The async buffer holds up to a full frame plus one typical record; sync modes one record. */
  private initialCapacity(): number {
    return this.modeCode === MODE_ASYNC ? ASYNC_BUFFER_MAX_BYTES + 65536 : 4096;
  }

  /**
   * Creates a new WAL file at `path` (it must not exist) holding only the header, and makes the
   * file and its directory entry durable. In mode "none" no file is created.
   */
  static create(fs: FileSystem, path: string, segmentId: number, mode: WalMode): WalWriter {
    assert(Number.isSafeInteger(segmentId) && segmentId >= 0, `bad segment id ${segmentId}`);
    if (mode === "none") return new WalWriter(path, mode, undefined, 0);
    let handle: FileHandle | undefined;
    try {
      handle = fs.openFile(path, { create: true, exclusive: true });
      handle.append(encodeWalHeader(segmentId));
      handle.sync();
      fs.syncDir(dirOf(path));
    } catch (e) {
      handle?.close();
      throw new IOError(`cannot create WAL ${path}: ${message(e)}`, { cause: e });
    }
    return new WalWriter(path, mode, handle, WAL_HEADER_BYTES);
  }

  /**
   * Like {@link WalWriter.create}, but in mode "async-compressed" on a provider with
   * `openFileAsync` and `syncDirAsync` it returns at once: the file is created, its header
   * written and synced, and its directory entry synced off the event loop (creating a file
   * took up to 70 ms under a merge's I/O, inside the write that moved the segment forward).
   * Appends are buffered meanwhile, up to {@link ASYNC_BUFFER_HARD_MAX_BYTES}: a writer that
   * gets there without yielding to the event loop creates the file itself (`takeOverOpen`).
   * Nothing is written before the file and its entry are durable, and `flush` waits for them.
   * A failure is reported like a failed background sync (the writer is poisoned and `onError`
   * is told). Other modes and providers: `create`.
   */
  static createDeferred(fs: FileSystem, path: string, segmentId: number, mode: WalMode): WalWriter {
    if (mode !== "async-compressed" || !fs.openFileAsync || !fs.syncDirAsync) {
      return WalWriter.create(fs, path, segmentId, mode);
    }
    assert(Number.isSafeInteger(segmentId) && segmentId >= 0, `bad segment id ${segmentId}`);
    const writer = new WalWriter(path, mode, undefined, WAL_HEADER_BYTES);
    writer.opening = writer.openDeferred(fs, path, segmentId);
    return writer;
  }

  private async openDeferred(fs: FileSystem, path: string, segmentId: number): Promise<void> {
    this.deferred = { fs, segmentId };
    this.watchTurn();
    let handle: FileHandle | undefined;
    // After each step: if the append path took the create over (`takeOverOpen`), this handle
    // is a second one on the same file (or none, if the exclusive create lost): drop it. The
    // same when the writer closed or failed meanwhile (a failed take-over included).
    const takenOver = () => this.handle !== undefined || this.closed || this.failure !== undefined;
    try {
      handle = await fs.openFileAsync!(path, { create: true, exclusive: true });
      if (!takenOver()) {
        handle.append(encodeWalHeader(segmentId));
        await handle.syncAsync();
      }
      if (!takenOver()) await fs.syncDirAsync!(dirOf(path));
    } catch (e) {
      try {
        handle?.close();
      } catch {
        // The create failed already; that is the error to report.
      }
      if (takenOver()) return;
      this.opening = undefined;
      this.reportBackground(this.fail(e, "create"));
      return;
    }
    if (takenOver()) {
      handle.close(); // taken over, or closed while opening (closeSync after a failure)
      return;
    }
    this.opening = undefined;
    this.handle = handle;
    // Appends that came meanwhile go out now.
    if (this.len > PAYLOAD_START) this.kick();
  }

  /**
   * A writer that has buffered {@link ASYNC_BUFFER_HARD_MAX_BYTES} without yielding to the
   * event loop while its file is still being created (a bulk load in a tight loop) creates it
   * here, synchronously, so memory stays bounded. The file may exist already (the async create
   * ran but its continuation did not): it is opened without `exclusive`, and the header is
   * written at offset 0 (the same bytes the async path writes). The async path then sees the
   * handle and drops its own.
   */
  private takeOverOpen(): void {
    const { fs, segmentId } = this.deferred!;
    let handle: FileHandle | undefined;
    try {
      handle = fs.openFile(this.path, { create: true });
      handle.write(encodeWalHeader(segmentId), 0);
      handle.sync();
      fs.syncDir(dirOf(this.path));
    } catch (e) {
      try {
        handle?.close();
      } catch {
        // The create failed already; that is the error to report.
      }
      this.opening = undefined;
      throw this.fail(e, "create");
    }
    this.handle = handle;
    this.opening = undefined;
  }

  /**
   * Opens an existing WAL to append after its first `validLength` bytes (what `replayWal`
   * reported), cutting off a torn tail durably first. When `validLength` is below the header
   * size (a crash hit `create`), the header is written again with `segmentId`; callers should
   * pass it (the torn header no longer holds it); without it the header records 0, which only
   * tools that cross-check file names against headers would notice. In mode "none" the file is
   * left alone.
   */
  static openForAppend(
    fs: FileSystem,
    path: string,
    mode: WalMode,
    validLength: number,
    segmentId?: number,
  ): WalWriter {
    if (mode === "none") return new WalWriter(path, mode, undefined, 0);
    let handle: FileHandle | undefined;
    let version = WAL_FORMAT_VERSION;
    try {
      handle = fs.openFile(path);
      const size = handle.size();
      assert(
        validLength >= 0 && validLength <= size,
        `validLength ${validLength} of ${path} (size ${size})`,
      );
      if (validLength >= WAL_HEADER_BYTES) {
        // Frames appended to a file of the previous format carry its checksum.
        const header = new Uint8Array(WAL_HEADER_BYTES);
        handle.read(header, 0);
        if (typeof decodeWalHeader(header, 0) === "number") version = header[5];
      }
      if (validLength < WAL_HEADER_BYTES) {
        handle.truncate(0);
        handle.append(encodeWalHeader(segmentId ?? 0));
        handle.sync();
        validLength = WAL_HEADER_BYTES;
      } else if (size > validLength) {
        handle.truncate(validLength);
        handle.sync();
      }
    } catch (e) {
      handle?.close();
      if (e instanceof Error && e.name === "AssertionError") throw e;
      throw new IOError(`cannot open WAL ${path} for appending: ${message(e)}`, { cause: e });
    }
    return new WalWriter(path, mode, handle, validLength, version);
  }

  /** Bytes of the log: the file so far plus what is buffered (in "none", what would be). */
  get sizeBytes(): number {
    return this.fileBytes + this.len - PAYLOAD_START;
  }

  /**
   * Appends one op as its own record. The hot path: encodes straight into a reused buffer.
   * In the sync modes it returns once the op is durable.
   */
  appendOne(
    opIndex: number,
    kind: number,
    key: Uint8Array,
    value: Uint8Array,
    expiresAt: number,
  ): void {
    this.checkWritable();
    checkOpIndex(opIndex, 1);
    const need = RECORD_HEADER_MAX + OP_OVERHEAD_MAX + key.length + value.length;
    if (this.len + need > this.buf.length) this.grow(need);
    const start = this.len;
    this.view.setUint32(start, Math.floor(opIndex / 0x1_0000_0000));
    this.view.setUint32(start + 4, opIndex >>> 0);
    this.buf[start + 8] = 1;
    const end = this.encodeOp(start + 9, kind, key, value, expiresAt);
    this.appendedBytes += end - start;
    this.len = end;
    this.afterAppend(false);
  }

  /**
   * Appends `ops` (an array of ops, or columns) as one record (one frame in the sync modes), so
   * a crash keeps all of them or none. Op i gets opIndex `firstOpIndex + i`. An empty batch
   * writes nothing.
   */
  appendBatch(firstOpIndex: number, ops: readonly WalOp[] | WalBatch): void {
    this.appendBatchRecord(firstOpIndex, ops, false);
  }

  /**
   * Like {@link WalWriter.appendBatch}, but in the sync modes, where the file can sync on another
   * thread (`FileHandle.startSync`), the frame is written and its sync only started: the caller
   * applies the batch meanwhile and must call {@link WalWriter.settleSync} before it reports
   * the batch written. Returns true if a sync was left running (false: the batch is durable
   * already, or the mode is not a sync mode). Until it is settled, the next append, flush or
   * close waits for it first, so at most one write is ever unsynced.
   */
  appendBatchOverlapped(firstOpIndex: number, ops: readonly WalOp[] | WalBatch): boolean {
    return this.appendBatchRecord(firstOpIndex, ops, true);
  }

  /**
   * Blocks until the sync that {@link WalWriter.appendBatchOverlapped} left running has
   * finished; then everything appended is durable. Throws (and poisons the log) if it failed.
   */
  settleSync(): void {
    this.settleTicket(true);
  }

  private appendBatchRecord(
    firstOpIndex: number,
    ops: readonly WalOp[] | WalBatch,
    overlap: boolean,
  ): boolean {
    const b = Array.isArray(ops) ? OpColumns.of(ops as readonly WalOp[]) : ops as WalBatch;
    this.checkWritable();
    const n = b.count;
    if (n === 0) return false;
    checkOpIndex(firstOpIndex, n);
    const { kinds, keys, values, expiresAt } = b;
    let need = RECORD_HEADER_MAX;
    for (let i = 0; i < n; i++) need += OP_OVERHEAD_MAX + keys[i].length + values[i].length;
    if (need > FRAME_PAYLOAD_MAX_BYTES) assert(false, `batch of ${need} bytes exceeds the WAL frame limit`);
    if (this.len + need > this.buf.length) this.grow(need);
    const start = this.len;
    this.view.setUint32(start, Math.floor(firstOpIndex / 0x1_0000_0000));
    this.view.setUint32(start + 4, firstOpIndex >>> 0);
    let p = writeVarint(this.buf, start + 8, n);
    for (let i = 0; i < n; i++) p = this.encodeOp(p, kinds[i], keys[i], values[i], expiresAt[i]);
    this.appendedBytes += p - start;
    this.len = p;
    return this.afterAppend(overlap);
  }

  /**
   * Orders this log after `prev`, the log of the segment that this one's segment follows: no
   * record frame of this log is written before every record appended to `prev` is durable. So
   * after a crash (process or power) the logs together hold a prefix of the writes, never a
   * later write without an earlier one; within one log the one-unsynced-write rule does that.
   * In async mode `prev` is usually still writing and syncing its last buffer (its `close` runs
   * in the background): this log buffers meanwhile, and its background step waits for `prev`'s
   * flush. A writer that does not yield gives that close no turn, so `prev`'s buffer is written
   * here and its sync started on the helper thread, and this log keeps buffering past its 1 MiB
   * bound while that sync runs; only at the hard bound (or in `closeSync`) does it write and sync
   * `prev`'s records itself, blocking. Call before the first append.
   */
  follow(prev: WalWriter): void {
    if (prev.failure === undefined && prev.syncedBytes >= prev.appendedBytes) return;
    this.predecessor = prev;
    prev.startDrain();
  }

  /** Resolves when everything appended before the call is durable; rejects after a failure. */
  flush(): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    // The file exists and is durable once this resolves, even with nothing appended.
    if (this.opening !== undefined) return this.opening.then(() => this.flush());
    if (this.modeCode !== MODE_ASYNC) {
      try {
        this.settleTicket(true); // an overlapped batch's sync (see appendBatchOverlapped)
      } catch (e) {
        return Promise.reject(e);
      }
      return Promise.resolve();
    }
    if (this.syncedBytes >= this.appendedBytes) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiters.push({ target: this.appendedBytes, resolve, reject });
      this.kick();
    });
  }

  /** Flushes, syncs and closes the file. Idempotent; rethrows a background failure. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    try {
      if (this.failure !== undefined) throw this.failure;
      if (this.modeCode === MODE_ASYNC) {
        await this.flush();
        await this.pumpDone;
      }
      this.settleTicket(true);
      // Off the event loop: under a merge's I/O even this last fsync took 20-48 ms.
      if (this.handle !== undefined) {
        const fileTarget = this.fileBytes;
        const recordTarget = this.writtenBytes;
        try {
          await this.handle.syncAsync();
        } catch (e) {
          throw this.fail(e, "sync");
        }
        this.markSynced(fileTarget, recordTarget);
      }
    } finally {
      this.closeHandle();
    }
  }

  /** Like `close`, without waiting for the event loop: writes and syncs what is buffered. */
  closeSync(): void {
    if (this.closing) return;
    this.closing = true;
    try {
      if (this.failure !== undefined) throw this.failure;
      if (this.opening !== undefined) {
        // The file is not created yet, so it cannot take the buffered records synchronously.
        throw this.fail(new Error("closed while the file was still being created"), "close");
      }
      this.writeAndSyncNow(true);
    } finally {
      this.closeHandle();
    }
  }

  /**
   * Blocking: observes a sync in flight, writes the buffer (after the previous write is synced)
   * and syncs, so every record appended so far is durable. `closeSync` and `drainSync`.
   */
  private writeAndSyncNow(compress: boolean): void {
    this.settleTicket(true);
    if (this.len > PAYLOAD_START) this.writeAfterSync(compress);
    if (this.fileBytes > this.fileSyncedBytes) this.syncNow();
  }

  /**
   * Makes every record appended so far durable now, blocking: for a successor log that must
   * write (see {@link WalWriter.follow}). Runs beside a `close` in progress: a background sync in
   * flight is simply repeated, a deferred create is taken over. Throws this log's failure.
   */
  private drainSync(): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.syncedBytes >= this.appendedBytes) return;
    if (this.opening !== undefined) this.takeOverOpen();
    this.writeAndSyncNow(false);
  }

  /**
   * For a successor (see {@link WalWriter.follow}), at the move and from its appends past 1 MiB:
   * observes a finished sync, then writes the buffer, raw, if no write is in flight, and starts
   * its sync on the helper thread where the file can (else the background step syncs it). Never
   * blocks. A writer that does not yield would otherwise leave this to `close`'s background
   * step, which needs an event-loop turn. A failure here is recorded (the writer is poisoned)
   * and reported by `close` and the follower.
   */
  private startDrain(): void {
    // Durable already (every sync mode, a closed log), failed, or its file not created yet.
    if (this.failure !== undefined || this.syncedBytes >= this.appendedBytes) return;
    if (this.handle === undefined) return;
    try {
      this.settleTicket(false);
      if (this.len <= PAYLOAD_START || this.fileBytes !== this.fileSyncedBytes) return;
      this.writeBufferedFrame(false);
      const started = this.handle.startSync?.();
      if (started !== undefined) {
        this.ticket = { sync: started, fileBytes: this.fileBytes, recordBytes: this.writtenBytes };
        this.watchTurn();
      } else this.kick();
    } catch {
      // Recorded by `fail`: `close` rejects with it, and the follower's drain throws it.
    }
  }

  /**
   * Whether the predecessor's records are durable (then it is let go), moving its drain on
   * without blocking; below the hard bound only. Poisons this log if the predecessor failed.
   */
  private predecessorDurable(buffered: number): boolean {
    if (buffered >= ASYNC_BUFFER_HARD_MAX_BYTES) return true; // the write drains it, blocking
    const prev = this.predecessor!;
    prev.startDrain();
    if (prev.failure !== undefined) throw this.fail(prev.failure, "make the previous log durable");
    if (prev.syncedBytes < prev.appendedBytes) return false;
    this.predecessor = undefined;
    return true;
  }

  /** Waits, blocking, until the predecessor's records are durable (see `follow`). */
  private drainPredecessor(): void {
    const prev = this.predecessor!;
    try {
      prev.drainSync();
    } catch (e) {
      throw this.fail(e, "make the previous log durable");
    }
    this.predecessor = undefined;
  }

  // -------------------------------------------------------------------------------------------
  // Encoding.

  /** Encodes one op at `p`; returns the position after it. The caller made room. */
  private encodeOp(
    p: number,
    kind: number,
    key: Uint8Array,
    value: Uint8Array,
    expiresAt: number,
  ): number {
    // Checked here, not only on replay, so a bad argument fails now instead of turning into
    // "corruption" at the next open. (Messages are built only on failure: this is the hot path.)
    if (!(kind >= 0 && kind <= OP_KIND_MAX && (kind | 0) === kind)) {
      assert(false, `bad op kind ${kind}`);
    }
    const buf = this.buf;
    buf[p] = kind;
    buf[p + 1] = expiresAt !== 0 ? OP_FLAG_EXPIRES : 0;
    p = writeVarint(buf, p + 2, key.length);
    buf.set(key, p);
    p = writeVarint(buf, p + key.length, value.length);
    buf.set(value, p);
    p += value.length;
    if (expiresAt !== 0) {
      if (!Number.isFinite(expiresAt)) assert(false, `bad expiresAt ${expiresAt}`);
      this.view.setFloat64(p, expiresAt);
      p += 8;
    }
    return p;
  }

  /** Makes room for `need` more bytes after `len`, keeping the buffered records. */
  private grow(need: number): void {
    assert(need <= FRAME_PAYLOAD_MAX_BYTES, `WAL record of ${need} bytes exceeds the frame limit`);
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + need));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  private checkWritable(): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.closing) throw new ClosedError(`WAL ${this.path} is closed`);
  }

  // -------------------------------------------------------------------------------------------
  // Writing.

  /** Writes (or buffers) what was appended; returns true if a sync was left running (`overlap`). */
  private afterAppend(overlap: boolean): boolean {
    switch (this.modeCode) {
      case MODE_ASYNC: {
        const buffered = this.len - PAYLOAD_START;
        if (buffered >= ASYNC_BUFFER_MAX_BYTES) {
          // Right after a segment move the previous log's last records may not be durable yet:
          // keep buffering (up to the hard bound) while its drain moves on without blocking.
          if (this.predecessor !== undefined && !this.predecessorDurable(buffered)) {
            if (this.timer === undefined && !this.pumpActive) this.armTimer();
            return false;
          }
          this.settleTicket(false);
          // Buffering past the bound beats blocking only when the event loop has had a turn
          // since the pending sync or create began: then it is really slow. A writer that does
          // not yield would never see either finish; it writes (and waits) at the bound, as
          // before, so the background sync of each write overlaps its next megabyte of work.
          const blockNow = buffered >= ASYNC_BUFFER_HARD_MAX_BYTES || !this.turnSeen;
          if (this.opening !== undefined && blockNow) this.takeOverOpen();
          if (this.opening === undefined && (this.fileBytes === this.fileSyncedBytes || blockNow)) {
            this.writeOverflow();
            return false;
          }
        }
        if (this.timer === undefined && !this.pumpActive) this.armTimer();
        return false;
      }
      case MODE_NONE:
        // Count the bytes as if a raw frame held them, then forget the record.
        this.fileBytes += FRAME_HEADER_RAW_BYTES + this.len - PAYLOAD_START;
        this.len = PAYLOAD_START;
        this.writtenBytes = this.syncedBytes = this.appendedBytes;
        return false;
      default: {
        // An overlapped batch's sync still running: it finishes before the next frame is written.
        this.settleTicket(true);
        this.writeBufferedFrame(this.modeCode === MODE_SYNC_COMPRESSED);
        const started = overlap ? this.handle?.startSync?.() : undefined;
        if (started === undefined) {
          this.syncNow();
          return false;
        }
        this.ticket = { sync: started, fileBytes: this.fileBytes, recordBytes: this.writtenBytes };
        return true;
      }
    }
  }

  /**
   * Writes `buf[PAYLOAD_START, len)` as one frame (lz4 when `compress` and smaller) and empties
   * the buffer. Poisons the writer on failure.
   */
  private writeBufferedFrame(compress: boolean): void {
    if (this.predecessor !== undefined) this.drainPredecessor();
    const handle = this.handle!;
    const frame = this.encodeFrame(PAYLOAD_START, this.len, compress);
    const end = this.fileBytes + frame.length;
    try {
      handle.write(frame, this.fileBytes);
      if (end > this.fileEnd) this.fileEnd = end;
      // Sync modes: zeros after a frame that reached the end (see PREALLOC_BYTES). They go out
      // with this frame's sync; nothing but zeros is ever written past the last frame.
      if (
        end === this.fileEnd && frame.length < PREALLOC_FRAME_MAX_BYTES &&
        this.modeCode <= MODE_SYNC_COMPRESSED
      ) {
        zeros ??= new Uint8Array(PREALLOC_BYTES);
        handle.write(zeros, end);
        this.fileEnd = end + PREALLOC_BYTES;
      }
    } catch (e) {
      throw this.fail(e, "write");
    }
    this.fileBytes = end;
    this.writtenBytes = this.appendedBytes;
    this.len = PAYLOAD_START;
    if (this.buf.length > BUFFER_KEEP_MAX_BYTES) {
      this.buf = new Uint8Array(this.initialCapacity());
      this.view = new DataView(this.buf.buffer);
    }
    if (this.out.length > BUFFER_KEEP_MAX_BYTES) this.out = new Uint8Array(0);
  }

  /**
   * Frames the payload `buf[start, end)`: lz4 into `out` when asked and smaller, else raw, with
   * the header written in place in front of the payload.
   */
  private encodeFrame(start: number, end: number, compress: boolean): Uint8Array {
    const rawLength = end - start;
    if (compress && this.lz4Skip > 0) {
      this.lz4Skip--;
      compress = false;
    }
    if (compress) {
      const need = FRAME_HEADER_LZ4_BYTES + lz4BlockBound(rawLength);
      if (this.out.length < need) {
        this.out = new Uint8Array(need);
        this.outView = new DataView(this.out.buffer);
      }
      const n = lz4CompressInto(this.buf, start, end, this.out, FRAME_HEADER_LZ4_BYTES);
      // Values that barely compress (random bytes, already-compressed data) still cost the
      // compressor ~1 µs per 130-byte op on this thread: after such a frame, skip a few.
      if (rawLength >= LZ4_PROBE_MIN_BYTES && (n < 0 || n > rawLength - rawLength / LZ4_MIN_SAVING)) {
        this.lz4Skip = LZ4_SKIP_FRAMES;
      }
      if (n > 0) {
        const frameEnd = FRAME_HEADER_LZ4_BYTES + n;
        this.outView.setUint32(0, n);
        this.out[8] = FRAME_TYPE_LZ4;
        this.outView.setUint32(9, rawLength);
        this.outView.setUint32(4, this.frameCrc(this.out, 8, frameEnd));
        return this.out.subarray(0, frameEnd);
      }
    }
    const h = start - FRAME_HEADER_RAW_BYTES;
    this.view.setUint32(h, rawLength);
    this.buf[h + 8] = FRAME_TYPE_RAW;
    this.view.setUint32(h + 4, this.frameCrc(this.buf, h + 8, end));
    return this.buf.subarray(h, end);
  }

  /** Syncs the file now (blocking) and records everything written as durable. */
  private syncNow(): void {
    if (this.handle === undefined) return;
    try {
      this.handle.sync();
    } catch (e) {
      throw this.fail(e, "sync");
    }
    this.markSynced(this.fileBytes, this.writtenBytes);
  }

  /**
   * Async mode, buffer full (past the bound with the file synced, or past the hard bound):
   * write it from the append itself so memory stays bounded. The previous write is synced
   * first (blocking, only at the hard bound) so that at most one write is ever unsynced.
   * The frame is stored raw: LZ4 in JavaScript costs about 10 ms per MiB, which would land on
   * this caller's append (about 1.3 µs per 130-byte op); only appends that outrun the
   * background step get here, and for them keeping up matters more than a smaller log.
   */
  private writeOverflow(): void {
    this.settleTicket(true);
    this.writeAfterSync(false);
    // A writer that does not yield would sync this write on its own thread at the next
    // overflow: where the file can, the sync runs on the helper thread now, and the next
    // overflow only waits if it has not finished by then (`settleTicket`).
    const started = this.handle?.startSync?.();
    if (started !== undefined) {
      // No background step for it: the next overflow, flush, close or step observes it. As
      // for a background sync, the next overflow waits for it unless the event loop turns first.
      this.ticket = { sync: started, fileBytes: this.fileBytes, recordBytes: this.writtenBytes };
      this.watchTurn();
    } else this.kick();
  }

  /**
   * Observes the sync the overflow path started on another thread: once it has finished (or,
   * with `wait`, after blocking until it has) the write it covers is durable. Poisons the writer
   * if it failed.
   */
  private settleTicket(wait: boolean): void {
    const ticket = this.ticket;
    if (ticket === undefined) return;
    let done: boolean;
    try {
      if (wait) {
        ticket.sync.wait();
        done = true;
      } else done = ticket.sync.poll();
    } catch (e) {
      this.ticket = undefined;
      throw this.fail(e, "sync");
    }
    if (!done) return;
    this.ticket = undefined;
    this.markSynced(ticket.fileBytes, ticket.recordBytes);
  }

  /** Tells `onError` about a background failure, once. */
  private reportBackground(err: IOError): void {
    if (this.reported) return;
    this.reported = true;
    this.onError?.(err);
  }

  /** Writes the buffer as a frame once every earlier write is durable (syncing first if not). */
  private writeAfterSync(compress: boolean): void {
    if (this.fileBytes > this.fileSyncedBytes) this.syncNow();
    this.writeBufferedFrame(compress);
  }

  private markSynced(fileBytes: number, recordBytes: number): void {
    if (fileBytes > this.fileSyncedBytes) this.fileSyncedBytes = fileBytes;
    if (recordBytes > this.syncedBytes) this.syncedBytes = recordBytes;
    let done = 0;
    while (done < this.waiters.length && this.waiters[done].target <= this.syncedBytes) {
      this.waiters[done++].resolve();
    }
    if (done > 0) this.waiters.splice(0, done);
  }

  /** Records the first failure (later calls get the same error) and rejects every waiter. */
  private fail(cause: unknown, what: string): IOError {
    if (this.failure !== undefined) return this.failure;
    const err = new IOError(
      `WAL ${this.path}: ${what} failed (${message(cause)}); the log takes no more writes`,
      { cause },
    );
    this.failure = err;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(err);
    return err;
  }

  private closeHandle(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    clearTimeout(this.turnProbe);
    this.turnProbe = undefined;
    this.wake?.();
    try {
      // The zeros written ahead are cut off (not synced: a reader takes zeros for the end too).
      // Not after a failure: then nothing more is done to the file.
      if (this.fileEnd > this.fileBytes && this.failure === undefined) {
        this.handle?.truncate(this.fileBytes);
      }
      this.handle?.close();
    } catch (e) {
      throw this.fail(e, "close");
    }
  }

  // -------------------------------------------------------------------------------------------
  // The async background step.

  private armTimer(): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.kick();
    }, 0);
  }

  /** Clears `turnSeen` until the event loop's next turn (a timer proves the turn came). */
  private watchTurn(): void {
    this.turnSeen = false;
    this.turnProbe ??= setTimeout(() => {
      this.turnProbe = undefined;
      this.turnSeen = true;
    }, 0);
  }

  /** Starts the background loop, or cuts its pause short so a flush does not wait. */
  private kick(): void {
    if (this.pumpActive) {
      this.wake?.();
      return;
    }
    if (this.closed || this.failure !== undefined) return;
    this.pumpActive = true;
    this.pumpDone = this.pump();
  }

  /**
   * Writes the buffer (only once the previous write is durable), syncs, and repeats until
   * everything is durable. Pauses between rounds while nobody waits, so that syncs happen at
   * most every `SYNC_INTERVAL_MS` and each write carries more records.
   */
  private async pump(): Promise<void> {
    try {
      if (this.opening !== undefined) await this.opening;
      for (;;) {
        if (this.closed || this.failure !== undefined) return;
        this.settleTicket(false);
        const prev = this.predecessor;
        if (prev !== undefined && this.len > PAYLOAD_START) {
          // Rejects if the previous log failed: then this one takes no more writes either.
          await prev.flush();
          if (this.predecessor === prev) this.predecessor = undefined;
          continue;
        }
        if (this.len > PAYLOAD_START && this.fileBytes === this.fileSyncedBytes) {
          // A buffer that grew past the bound while a sync was in flight goes out raw: LZ4 in
          // JavaScript costs ~10 ms per MiB on the event loop.
          this.writeBufferedFrame(this.len - PAYLOAD_START <= ASYNC_BUFFER_MAX_BYTES);
        }
        if (this.fileBytes === this.fileSyncedBytes) return;
        const fileTarget = this.fileBytes;
        const recordTarget = this.writtenBytes;
        this.watchTurn();
        await this.handle!.syncAsync();
        if (this.closed) return;
        this.markSynced(fileTarget, recordTarget);
        const buffered = this.len - PAYLOAD_START;
        if (buffered > 0 && buffered < ASYNC_BUFFER_MAX_BYTES && this.waiters.length === 0) {
          await this.pause();
        }
      }
    } catch (e) {
      if (this.closed) return; // closeSync synced everything itself; a late EBADF means nothing.
      // A write failure was already recorded by `writeBufferedFrame`; `fail` returns it.
      this.reportBackground(this.fail(e, "background sync"));
    } finally {
      // Cleared in the same turn as the loop's last check, so no append can slip between.
      this.pumpActive = false;
    }
  }

  private pause(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, SYNC_INTERVAL_MS);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }
}
