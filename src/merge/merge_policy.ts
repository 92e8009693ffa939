/**
 * Merge decisions, with no I/O: what a merge keeps of each record, when the disk segment moves
 * to the bottom segments, when a merge is due. `merger.ts` does the I/O and asks these.
 *
 * @module
 */
import { KIND_DELETE } from "../iter/record.ts";

/** Keep the record as it is. */
export const KEEP = 0;
/** Keep only a deletion marker in its place (it still hides older versions below). */
export const KEEP_AS_DELETE = 1;
/** Drop the record. */
export const DROP = 2;

/**
 * What a merge keeps of the newest record of a key. `nothingBelow` is true when no segment
 * older than the merge output exists (no bottom segments under it): deletion markers and
 * expired records then hide nothing and are dropped. Otherwise an expired record becomes a
 * deletion marker, so that an older version in a bottom segment does not come back.
 */
export function survivorOf(kind: number, expiresAt: number, now: number, nothingBelow: boolean): number {
  const expired = expiresAt !== 0 && expiresAt <= now;
  if (kind === KIND_DELETE || expired) {
    if (nothingBelow) return DROP;
    return kind === KIND_DELETE ? KEEP : KEEP_AS_DELETE;
  }
  return KEEP;
}

/** True when a disk segment of `recordCount` records moves to the bottom segments. */
export function movesToBottom(recordCount: number, diskSegmentMaxItemCount: number): boolean {
  return recordCount >= diskSegmentMaxItemCount;
}
