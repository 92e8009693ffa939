/**
 * Frozen segments laid out again together on the helper thread (`relayoutOnHelper` with several trees) and the
 * combined run of their newest records (`CombinedRun`). Nothing a reader sees may change: the
 * run's cursors (full scans both ways, seeks to keys held and between them, inclusive and
 * exclusive) equal a merging cursor over the segments, shadowed records and deletion markers
 * included; every segment's own records, point reads and a cursor left open across the switch
 * are what they were, and each segment's arena is in key order after. Keys held inline and in
 * the arena, values from 0 bytes to over a chunk, overwrites, expiry.
 */
import { describe, expect, test } from "bun:test";
import { KIND_DELETE, KIND_PUT, newSlot, type RecordCursor } from "../../src/iter/record.ts";
import { MergingCursor } from "../../src/iter/merging_cursor.ts";
import { RELAYOUT_MIN_RECORDS } from "../../src/memory/bplus_tree.ts";
import { CombinedRun } from "../../src/memory/combined_run.ts";
import { MutableSegment } from "../../src/memory/mutable_segment.ts";
import { compareBytes } from "../../src/util/bytes.ts";
import { helperStats, type RelayoutResult, relayoutOnHelper, takeRelayout } from "../../src/util/helper_thread.ts";
import { Prng } from "../../src/util/prng.ts";

interface Rec {
  key: Uint8Array;
  value: Uint8Array;
  opIndex: number;
  kind: number;
  expiresAt: number;
}

/** Keys of 8 bytes (inline) or 40 (in the arena), ordered by `i`. */
function keyOf(i: number): Uint8Array {
  const long = i % 3 === 0;
  const k = new Uint8Array(long ? 40 : 8);
  new DataView(k.buffer).setUint32(0, i);
  if (long) k.fill(0x5a, 4);
  return k;
}

let op = 1;

/** A frozen segment of records for random ids in [0, span), written in random order. */
function segment(id: number, n: number, span: number, rng: Prng): { seg: MutableSegment; sorted: Rec[] } {
  const seg = new MutableSegment(id, compareBytes, { relayout: true });
  const model = new Map<string, Rec>();
  const put = (i: number) => {
    const key = keyOf(i);
    const kind = rng.int(10) === 0 ? KIND_DELETE : KIND_PUT;
    const roll = rng.int(1000);
    const value = kind === KIND_DELETE
      ? new Uint8Array(0)
      : new Uint8Array(roll === 0 ? (1 << 20) + 5 : roll < 20 ? 0 : rng.int(200));
    for (let j = 0; j < value.length; j += 89) value[j] = (op + j) & 255;
    if (value.length > 0) value[value.length - 1] = op & 255;
    const expiresAt = rng.int(7) === 0 ? 1_800_000_000_000 + op : 0;
    seg.put(key, value, op, kind, expiresAt);
    model.set(key.join(","), { key, value, opIndex: op, kind, expiresAt });
    op++;
  };
  for (let r = 0; r < n; r++) put(rng.int(span));
  seg.freeze();
  return { seg, sorted: [...model.values()].sort((a, b) => compareBytes(a.key, b.key)) };
}

function expectRecord(c: RecordCursor, want: Rec): void {
  expect(c.valid).toBe(true);
  expect(compareBytes(c.key, want.key)).toBe(0);
  expect(c.kind).toBe(want.kind);
  expect(c.opIndex).toBe(want.opIndex);
  expect(c.expiresAt).toBe(want.expiresAt);
  expect(Buffer.compare(c.copyValue(), want.value)).toBe(0);
  expect(Buffer.compare(c.value, want.value)).toBe(0);
}

function records(c: RecordCursor): Rec[] {
  const out: Rec[] = [];
  while (c.next()) {
    out.push({ key: c.key.slice(), value: c.copyValue(), opIndex: c.opIndex, kind: c.kind, expiresAt: c.expiresAt });
  }
  return out;
}

async function combined(segs: MutableSegment[]): Promise<{ result: RelayoutResult; bytes: number[] }> {
  for (const s of segs) s.joinRelayout();
  const inputs = segs.map((s) => s.relayoutInput()!);
  const bytes = inputs.map((input) => input.bytes);
  const ticket = relayoutOnHelper(inputs, 1 << 20, true);
  expect(ticket).toBeDefined();
  const deadline = Date.now() + 20_000;
  for (;;) {
    const result = takeRelayout(ticket!);
    if (result === null) throw new Error("combine failed");
    if (result !== undefined) return { result, bytes };
    if (Date.now() > deadline) throw new Error("combine did not finish in 20 s");
    await Bun.sleep(2);
  }
}

describe("combined run of frozen segments", () => {
  test("equals a merge of the segments; the segments read as before, laid out in key order", async () => {
    const rng = new Prng(0xc0b1);
    const n = RELAYOUT_MIN_RECORDS;
    const span = 3 * n;
    // Newest first (as the engine's read-only queue): the first segment's records win.
    const parts = [segment(3, n, span, rng), segment(2, n, span, rng), segment(1, n, span, rng)];
    const segs = parts.map((p) => p.seg);
    const merged = records(new MergingCursor(segs.map((s) => s.cursor(false, false)), false, compareBytes));
    expect(merged.length).toBeLessThan(parts.reduce((t, p) => t + p.sorted.length, 0)); // keys overlap
    for (const s of segs) expect(s.combinable).toBe(true);
    // A cursor of the newest segment open mid-way, its value read (a view kept).
    const open = segs[0].cursor(false, false); // not a read: a read would lay it out alone
    const mid = parts[0].sorted.length >> 1;
    for (let i = 0; i <= mid; i++) open.next();
    const kept = open.value;
    const keptCopy = kept.slice();
    const started = helperStats().relayoutsStarted;
    const { result, bytes } = await combined(segs);
    expect(helperStats().relayoutsStarted).toBe(started + 1);
    for (const s of segs) expect(s.combinable).toBe(false);
    for (let i = 0; i < segs.length; i++) segs[i].applyLayout(result.buffers, result.locs[i], bytes[i]);
    // No relayout of their own afterwards.
    for (const s of segs) expect(s.pollRelayout()).toBe(false);
    expect(helperStats().relayoutsStarted).toBe(started + 1);

    const run = new CombinedRun(result.run!, result.buffers);
    expect(run.recordCount).toBe(merged.length);
    const forward = run.cursor(false);
    for (const want of merged) {
      expect(forward.next()).toBe(true);
      expectRecord(forward, want);
    }
    expect(forward.next()).toBe(false);
    const reverse = run.cursor(true);
    for (let i = merged.length - 1; i >= 0; i--) {
      expect(reverse.next()).toBe(true);
      expectRecord(reverse, merged[i]);
    }
    expect(reverse.next()).toBe(false);

    // Seeks: to held keys, to keys between them, before the first and after the last.
    const targets = [new Uint8Array(0), keyOf(span + 7), new Uint8Array(50).fill(255)];
    for (let r = 0; r < 150; r++) targets.push(keyOf(rng.int(span)));
    for (let r = 0; r < 50; r++) targets.push(keyOf(rng.int(span)).subarray(0, 5));
    for (const target of targets) {
      for (const rev of [false, true]) {
        for (const exclusive of [false, true]) {
          const want = new MergingCursor(segs.map((s) => s.cursor(rev, false)), rev, compareBytes);
          const got = run.cursor(rev);
          expect(got.seek(target, exclusive)).toBe(want.seek(target, exclusive));
          for (let step = 0; step < 3 && want.valid; step++) {
            expectRecord(got, { key: want.key, value: want.copyValue(), opIndex: want.opIndex, kind: want.kind, expiresAt: want.expiresAt });
            expect(got.next()).toBe(want.next());
          }
        }
      }
    }

    // The segments: records, point reads, the open cursor and the kept view as before.
    expect(Buffer.compare(kept, keptCopy)).toBe(0);
    expectRecord(open, parts[0].sorted[mid]);
    for (let i = mid + 1; i < parts[0].sorted.length; i++) {
      expect(open.next()).toBe(true);
      expectRecord(open, parts[0].sorted[i]);
    }
    const slot = newSlot();
    for (const { seg, sorted } of parts) {
      expect(seg["tree"].arenaInKeyOrder()).toBe(true);
      const c = seg.cursor(true);
      for (let i = sorted.length - 1; i >= 0; i--) {
        expect(c.next()).toBe(true);
        expectRecord(c, sorted[i]);
      }
      expect(c.next()).toBe(false);
      for (const want of sorted) {
        expect(seg.get(want.key, slot)).toBe(true);
        expect(slot.opIndex).toBe(want.opIndex);
        expect(Buffer.compare(slot.value, want.value)).toBe(0);
      }
    }
  });

  test("an empty run's cursors are never valid", () => {
    const empty = new CombinedRun({
      count: 0,
      keys: new Uint8Array(0),
      keyEnds: new Int32Array(0),
      values: new Int32Array(0),
      num: new Float64Array(0),
      kinds: new Uint8Array(0),
    }, []);
    for (const rev of [false, true]) {
      expect(empty.cursor(rev).next()).toBe(false);
      expect(empty.cursor(rev).seek(keyOf(1))).toBe(false);
    }
  });
});
