/**
 * `verify` of a single-part disk segment: re-reads the footer and index from the file, then
 * every block (never from the cache), and checks what the read path only assumes: keys strictly
 * ascending by the comparer within and across blocks, every sparse key equal to the record at
 * its ordinal, the last key, the unused bits of each kinds bitset, and every footer count
 * (records, deletion markers, expiring records, opIndex range, raw key and value bytes).
 * Throws CorruptionError naming the file and offset of the first problem. Called by
 * `SinglePartDiskSegment.verify` (and through it by the engine's and the CLI's verify).
 *
 * @module
 */
import { CorruptionError } from "../api/errors.ts";
import { compareBytes } from "../util/bytes.ts";
import { BlockView } from "./block.ts";
import { KeyProbe } from "./key_probe.ts";
import type { Footer } from "./format.ts";
import { newScratch, type SinglePartDiskSegment } from "./segment_reader.ts";
import type { SegmentIndex } from "./sparse_index.ts";

/** Checks every block of `seg` against the freshly read `footer` and `index`. */
export function verifySegmentBlocks(
  seg: SinglePartDiskSegment,
  footer: Footer,
  index: SegmentIndex,
): void {
  const view = new BlockView(seg.keyWidth, seg.valueWidth);
  const scratch = newScratch();
  const totals = { deletes: 0, expiring: 0, minOp: Infinity, maxOp: 0, keyBytes: 0, valueBytes: 0 };
  let prev: Uint8Array | undefined;
  let entry = 0;
  const probe = new KeyProbe();
  for (let b = 0; b < index.blockCount; b++) {
    seg.readBlock(b, view, scratch, index);
    const at = (what: string) =>
      new CorruptionError(seg.path, index.blockOffset[b], `block ${b}: ${what}`);
    if (!view.kindsPaddingClear()) throw at("unused kinds bits are set");
    for (let i = 0; i < view.count; i++) {
      const key = view.keyCopy(i);
      if (prev !== undefined && seg.compare(prev, key) >= 0) {
        throw at(`record ${i} is not above the previous key`);
      }
      if (entry < index.sparseCount && index.entryOrdinal[entry] === view.first + i) {
        if (index.compareEntry(probe.set(key), entry) !== 0) {
          throw new CorruptionError(
            seg.path,
            footer.indexOffset,
            `sparse key ${entry} differs from its record`,
          );
        }
        entry++;
      }
      const op = view.opIndex(i);
      if (op < totals.minOp) totals.minOp = op;
      if (op > totals.maxOp) totals.maxOp = op;
      if (view.kind(i) !== 0) totals.deletes++;
      if (view.expiresAt(i) !== 0) totals.expiring++;
      totals.keyBytes += key.length;
      totals.valueBytes += view.valueLength(i);
      prev = key;
    }
  }
  checkTotals(seg.path, footer, index, totals, prev);
}

function checkTotals(
  path: string,
  f: Footer,
  index: SegmentIndex,
  t: {
    deletes: number;
    expiring: number;
    minOp: number;
    maxOp: number;
    keyBytes: number;
    valueBytes: number;
  },
  last: Uint8Array | undefined,
): void {
  const footerAt = f.indexOffset + f.indexLength;
  const bad = (what: string) => new CorruptionError(path, footerAt, what);
  if (last !== undefined && compareBytes(last, index.lastKey) !== 0) {
    throw new CorruptionError(
      path,
      footerAt - f.lastKeyLength,
      "stored last key differs from the last record",
    );
  }
  if (t.deletes !== f.deleteCount) {
    throw bad(`footer deleteCount ${f.deleteCount}, blocks hold ${t.deletes}`);
  }
  if (t.expiring !== f.expiringCount) {
    throw bad(`footer expiringCount ${f.expiringCount}, blocks hold ${t.expiring}`);
  }
  const minOp = f.recordCount === 0 ? 0 : t.minOp;
  if (minOp !== f.minOpIndex || t.maxOp !== f.maxOpIndex) {
    throw bad("footer opIndex range differs from the blocks");
  }
  if (t.keyBytes !== f.rawKeyBytes || t.valueBytes !== f.rawValueBytes) {
    throw bad("footer raw byte counts differ");
  }
}
