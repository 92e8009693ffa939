/**
 * The shapes the engine codes against for disk segments: what a writer returns
 * (`DiskSegmentInfo`), what the write options are, and the `DiskSegment` reader interface that
 * both single-part and multipart disk segments implement (a `SegmentReader` plus file names,
 * sizes, `verify` and `close`).
 *
 * @module
 */
import type { Comparer, RecordCursor, RecordSlot, SegmentReader } from "../iter/record.ts";
import type { DiskLayout } from "./format.ts";

/** How to write a single-part disk segment (or a part). */
export interface DiskSegmentWriteOptions {
  /** The keyspace comparer; records must arrive strictly ascending by it (asserted). */
  compare: Comparer;
  /** Every key has this many bytes (fixed-key layouts); `undefined` = variable keys. */
  keyFixedWidth?: number;
  /** Every value has this many bytes (fixed-value layouts; 0 allowed); `undefined` = variable. */
  valueFixedWidth?: number;
  /** Block codec: "lz4" compresses a block when that saves at least 1/32, else stores it raw. */
  compression: "lz4" | "none";
  /** A sparse index entry every `sparseStep` records (default 1024); 0 = block first keys only. */
  sparseStep?: number;
  /** Target raw block size (default `DEFAULT_BLOCK_SIZE_BYTES`, 16 KiB). */
  blockSizeBytes?: number;
  /** Format version to write (default `FORMAT_VERSION`); tests write the previous one with 1. */
  formatVersion?: number;
}

/** What a written single-part disk segment holds (also what its footer says). */
export interface DiskSegmentInfo {
  /** Segment (or part) id; names its file. */
  readonly id: number;
  /** Physical layout. */
  readonly layout: DiskLayout;
  /** File names (not paths) in the data directory. */
  readonly files: readonly string[];
  /** Bytes on disk. */
  readonly sizeBytes: number;
  /** Records, deletion markers included. */
  readonly recordCount: number;
  /** Deletion markers. */
  readonly deleteCount: number;
  /** Records with an expiresAt. */
  readonly expiringCount: number;
  /** Smallest and largest opIndex (0 and 0 when empty). */
  readonly minOpIndex: number;
  /** See minOpIndex. */
  readonly maxOpIndex: number;
  /** First key (a copy), `undefined` when empty. */
  readonly firstKey: Uint8Array | undefined;
  /** Last key (a copy), `undefined` when empty. */
  readonly lastKey: Uint8Array | undefined;
  /** Blocks written. */
  readonly blockCount: number;
  /** Sum of key lengths and of value lengths (the raw data size, for stats and benches). */
  readonly rawKeyBytes: number;
  /** See rawKeyBytes. */
  readonly rawValueBytes: number;
}

/** Options of a disk segment cursor. */
export interface DiskCursorOptions {
  /**
   * Load blocks through the block cache (and insert them). Default false: a scan keeps its
   * current block in its own buffer and only reads blocks already cached, so it evicts nothing.
   */
  fillCache?: boolean;
}

/** A disk segment opened for reading: single-part or multipart. */
export interface DiskSegment extends SegmentReader {
  /** Physical layout (of every part). */
  readonly layout: DiskLayout;
  /** Bytes on disk over all its files. */
  readonly sizeBytes: number;
  /** Every file it reads (names, not paths): for multipart, the descriptor then every part's. */
  readonly files: readonly string[];
  /** First and last key (`undefined` when empty). Shared: do not modify. */
  readonly firstKey: Uint8Array | undefined;
  /** See firstKey. */
  readonly lastKey: Uint8Array | undefined;
  /** Largest opIndex in the segment (0 when empty): a floor for the tree's lastOpIndex. */
  readonly maxOpIndex: number;
  /** Deletion markers held. */
  readonly deleteCount: number;
  /** Bytes of index held in memory. */
  readonly indexBytes: number;
  /**
   * Fills `out` (key, value, opIndex, kind, expiresAt) and returns true, or returns false when
   * the key is absent. `out.key` is set to `key`; `out.value` is a fresh copy the caller owns.
   * Deletion markers and expired records are returned as they are (visibility is the iterator
   * layer's job).
   */
  get(key: Uint8Array, out: RecordSlot): boolean;
  /** A new cursor (see RecordCursor); `key`/`value` stay valid until it moves. */
  cursor(reverse: boolean, options?: DiskCursorOptions): RecordCursor;
  /**
   * Reads every byte of every file from storage (not from the cache), checks every checksum,
   * every structure field and the key order, and throws CorruptionError naming the file and
   * offset of the first problem.
   */
  verify(): void;
  /** Closes the file handles; later reads throw. Idempotent. Does not delete files. */
  close(): void;
}
