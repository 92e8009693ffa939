/**
 * The merger: writes the merge of newer records (the read-only segments, through one merging
 * cursor) and an older disk segment into a new disk segment, and nothing else. Publishing the
 * result (metadata, the segment set, deleting what it replaced) is the engine's job.
 *
 * Multipart (default): the old segment's parts are visited in key order. A part that no newer
 * record falls into is carried forward unchanged (same part file, nothing written); a part that
 * newer records touch is rewritten together with them into new parts. The range of part i is
 * [first key of part i, first key of part i+1), with newer keys below the first part counted in
 * the first part, so every newer record lands in exactly one part's rewrite.
 *
 *   old parts:   [ A ][ B ][ C ][ D ]       newer records touch B
 *   new parts:   [ A ][ B2 ][ C ][ D ]      A, C, D carried; B2 written
 *
 * Newer records that all lie above the last part's last key (appends) leave the last part
 * untouched when it has at least `partMinItemCount` records; they become parts after it:
 *
 *   old parts:   [ A ][ B ]                 newer records all > last key of B
 *   new parts:   [ A ][ B ][ E ]            A, B carried; E written
 *
 * Single mode writes everything into one part file.
 *
 * Work is done in slices: the merge yields to the event loop when a slice has run for
 * `sliceMs`, so that callers are not stalled while a large merge runs.
 *
 * @module
 */
import type { FileSystem } from "../fs/file_system.ts";
import { type Comparer, KIND_DELETE, newSlot, type RecordCursor, type RecordSlot } from "../iter/record.ts";
import type { DiskSegment, DiskSegmentInfo, DiskSegmentWriteOptions } from "../disk/disk_segment.ts";
import { DiskSegmentWriter } from "../disk/segment_writer.ts";
import type { PreloadedIndex } from "../disk/segment_reader.ts";
import { MultipartDiskSegment, type PartRef, writeMultipartDescriptor } from "../disk/multipart.ts";
import { partTargetItemCount } from "../disk/multipart.ts";
import { DROP, KEEP_AS_DELETE, survivorOf } from "./merge_policy.ts";
import type { TombstoneSet } from "../iter/range_tombstones.ts";

/** What a merge reads and how it writes. */
export interface MergeJob {
  fs: FileSystem;
  dir: string;
  compare: Comparer;
  /** Forward cursor over the newer records (newest version per key; deletion markers included). */
  newer: RecordCursor;
  /** The older disk segment, or undefined. */
  base: DiskSegment | undefined;
  /** No segment lies below the output: deletion markers and expired records can be dropped. */
  nothingBelow: boolean;
  /** Time that decides expiry (epoch ms). */
  now: number;
  /** Range tombstones to apply: a record they hide is not written. */
  tombstones: TombstoneSet;
  /** Tombstones that leave the WALs with this merge: a part they overlap is rewritten. */
  touching: TombstoneSet;
  mode: "multipart" | "single";
  write: DiskSegmentWriteOptions;
  partMinItemCount: number;
  partMaxItemCount: number;
  /** Hands out fresh segment ids (parts and descriptor). */
  allocateId: () => number;
  /** Longest stretch of work between yields to the event loop. */
  sliceMs: number;
}

/** The new disk segment a merge wrote. */
export interface MergeResult {
  /** Segment id: the multipart descriptor's, or the single part's. */
  id: number;
  /** Part ids in key order (`[id]` for single). */
  parts: number[];
  recordCount: number;
  /** Bytes written by this merge (new part files and the descriptor). */
  bytesWritten: number;
  /** Parts carried forward without rewriting. */
  carriedParts: number;
  /** Files this merge created (to remove if publishing fails). */
  createdFiles: string[];
  /**
   * The footer and decoded index of every part, when the merge ran in a Worker (which reads
   * them back after writing): the engine's thread opens the segment without decoding them again.
   */
  preloaded?: PreloadedIndex[];
}

/** Resolves on the next turn of the event loop (after timers and I/O callbacks that are due). */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Runs a merge. Returns undefined when nothing survives (the result is an empty segment). */
export async function runMerge(job: MergeJob): Promise<MergeResult | undefined> {
  const m = new MergeRun(job);
  try {
    return await m.run();
  } catch (e) {
    m.abort();
    throw e;
  }
}

class MergeRun {
  readonly job: MergeJob;
  readonly out: RecordSlot = newSlot();
  /** Finished parts of the output, written or carried, in key order. */
  readonly parts: PartRef[] = [];
  readonly created: string[] = [];
  writer: DiskSegmentWriter | undefined;
  cut: number;
  bytesWritten = 0;
  carried = 0;
  sliceStart = performance.now();
  counter = 0;
  /** The current part reached its record target: `pause()` finishes it before the next emit. */
  partFull = false;
  /** The value a deletion marker carries: zero bytes, or zeros of the fixed value width. */
  readonly deleteValue: Uint8Array;

  constructor(job: MergeJob) {
    this.job = job;
    this.deleteValue = new Uint8Array(job.write.valueFixedWidth ?? 0);
    this.cut = job.mode === "single"
      ? Number.MAX_SAFE_INTEGER
      : partTargetItemCount(undefined, job.partMinItemCount, job.partMaxItemCount);
  }

  async run(): Promise<MergeResult | undefined> {
    const { job } = this;
    const newer = job.newer;
    newer.seek(undefined);
    const baseParts = job.base === undefined
      ? []
      : job.base instanceof MultipartDiskSegment
      ? job.base.parts
      : [job.base];
    for (let i = 0; i < baseParts.length; i++) {
      const part = baseParts[i];
      const nextFirst = baseParts[i + 1]?.firstKey;
      let touched = newer.valid && (nextFirst === undefined || job.compare(newer.key, nextFirst) < 0);
      // Appends (every newer key above the last part's last key) leave the last part as it is,
      // once it holds at least multipartMinItemCount records: the new records become new parts
      // after it. Without this, ascending keys (counters, time-bucket-first keys) rewrote the
      // last part, up to multipartMaxItemCount records, at every merge.
      if (
        touched && nextFirst === undefined && part.lastKey !== undefined &&
        part.recordCount >= job.partMinItemCount && job.compare(newer.key, part.lastKey) > 0
      ) touched = false;
      touched ||= job.touching.size > 0 && part.firstKey !== undefined && part.lastKey !== undefined &&
        job.touching.overlaps(part.firstKey, part.lastKey);
      if (!touched && job.mode === "multipart") {
        await this.finishPart();
        this.parts.push({ id: part.id, recordCount: part.recordCount, firstKey: part.firstKey, lastKey: part.lastKey });
        this.carried++;
        continue;
      }
      const pc = part.cursor(false);
      try {
        pc.seek(undefined);
        await this.mergeTwo(newer, pc, nextFirst);
      } finally {
        pc.close();
      }
    }
    for (; newer.valid; newer.next()) if (this.emit(newer)) await this.pause();
    await this.finishPart();
    return this.finish();
  }

  /** Merges `newer` (up to `limit`, exclusive) with all of `older`; newer wins ties. */
  async mergeTwo(newer: RecordCursor, older: RecordCursor, limit: Uint8Array | undefined): Promise<void> {
    const compare = this.job.compare;
    for (;;) {
      const nv = newer.valid && (limit === undefined || compare(newer.key, limit) < 0);
      const ov = older.valid;
      if (!nv && !ov) return;
      if (nv && ov) {
        const c = compare(newer.key, older.key);
        if (c <= 0) {
          if (c === 0) older.next();
          if (this.emit(newer)) await this.pause();
          newer.next();
        } else {
          if (this.emit(older)) await this.pause();
          older.next();
        }
      } else if (nv) {
        if (this.emit(newer)) await this.pause();
        newer.next();
      } else {
        if (this.emit(older)) await this.pause();
        older.next();
      }
    }
  }

  /**
   * Writes the surviving form of `r` (if any). Returns true when the slice is over or the part
   * is full: the caller then awaits `pause()` before the next `emit`. Synchronous on purpose: an
   * async call per record costs a promise and a microtask turn each.
   */
  emit(r: RecordSlot): boolean {
    const job = this.job;
    const hidden = job.tombstones.size > 0 && job.tombstones.coveringOpIndex(r.key) > r.opIndex;
    const fate = hidden ? DROP : survivorOf(r.kind, r.expiresAt, job.now, job.nothingBelow);
    if (fate !== DROP) {
      const out = this.out;
      out.key = r.key;
      out.opIndex = r.opIndex;
      if (fate === KEEP_AS_DELETE || r.kind === KIND_DELETE) {
        out.kind = KIND_DELETE;
        out.value = this.deleteValue;
        out.expiresAt = 0;
      } else {
        out.kind = r.kind;
        out.value = r.value;
        out.expiresAt = r.expiresAt;
      }
      if (this.writer === undefined) {
        const id = job.allocateId();
        this.writer = new DiskSegmentWriter(job.fs, job.dir, id, job.write);
        this.created.push(this.writer.path);
      }
      this.writer.add(out);
      if (this.writer.recordCount >= this.cut) this.partFull = true;
    }
    return this.partFull || ((++this.counter & 1023) === 0 && performance.now() - this.sliceStart > job.sliceMs);
  }

  /** Finishes a full part, and yields to the event loop when the slice is over. */
  async pause(): Promise<void> {
    if (this.partFull) {
      this.partFull = false;
      await this.finishPart();
    }
    if (performance.now() - this.sliceStart > this.job.sliceMs) await nextTurn();
    this.sliceStart = performance.now();
  }

  /**
   * Finishes the current part: writes its index and footer, then syncs it without blocking the
   * event loop (a synchronous fdatasync of a freshly written part of ~100 MB stalled callers for
   * about 90 ms).
   */
  async finishPart(): Promise<void> {
    const w = this.writer;
    if (w === undefined) return;
    this.writer = undefined;
    const info: DiskSegmentInfo = await w.finishAsync();
    this.bytesWritten += info.sizeBytes;
    this.parts.push({ id: info.id, recordCount: info.recordCount, firstKey: info.firstKey, lastKey: info.lastKey });
  }

  finish(): MergeResult | undefined {
    const { job, parts } = this;
    if (parts.length === 0) return undefined;
    const recordCount = parts.reduce((n, p) => n + p.recordCount, 0);
    if (job.mode === "single") {
      return {
        id: parts[0].id,
        parts: [parts[0].id],
        recordCount,
        bytesWritten: this.bytesWritten,
        carriedParts: 0,
        createdFiles: this.created,
      };
    }
    const id = job.allocateId();
    const desc = writeMultipartDescriptor(job.fs, job.dir, id, parts);
    this.created.push(`${job.dir}/${desc.descriptorFile}`);
    return {
      id,
      parts: parts.map((p) => p.id),
      recordCount,
      bytesWritten: this.bytesWritten + desc.descriptorBytes,
      carriedParts: this.carried,
      createdFiles: this.created,
    };
  }

  /** Removes every file this merge created. */
  abort(): void {
    this.writer?.abort();
    this.writer = undefined;
    for (const path of this.created) {
      try {
        this.job.fs.remove(path);
      } catch {
        // Best effort: an orphan left here is removed on the next open.
      }
    }
  }
}
