/**
 * A frozen segment written out of key order is laid out again in key order on the helper thread
 * (`BPlusTree.startRelayout`) once it is read, and its slots are pointed at the new places at
 * the first read after that is done. Nothing a reader sees may change: every record (keys in the arena and held inline,
 * values of 0 bytes to over a chunk, overwrites, deletion markers, expiry) equals a model before
 * and after, through cursors (forward and reverse, one left open across the switch, with and
 * without its value read before it), point reads through a half-built hash index, and views
 * taken before the switch. Segments written in key order, small ones, and trees whose arena is
 * not shared are left alone.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { KIND_DELETE, KIND_PUT, newSlot, type RecordCursor } from "../../src/iter/record.ts";
import { RELAYOUT_MIN_RECORDS } from "../../src/memory/bplus_tree.ts";
import { MutableSegment } from "../../src/memory/mutable_segment.ts";
import { compareBytes } from "../../src/util/bytes.ts";
import { helperStats, setHelperThread } from "../../src/util/helper_thread.ts";
import { Prng } from "../../src/util/prng.ts";

afterEach(() => setHelperThread({ relayout: true }));

interface Rec {
  value: Uint8Array;
  opIndex: number;
  kind: number;
  expiresAt: number;
}

/** Keys of 8 (inline) or 40 bytes (in the arena), unique by `i`. */
function keyOf(i: number, long: boolean): Uint8Array {
  const k = new Uint8Array(long ? 40 : 8);
  new DataView(k.buffer).setUint32(0, i);
  if (long) k.fill(0x5a, 4);
  return k;
}

function valueOf(rng: Prng, i: number): Uint8Array {
  const roll = rng.int(50);
  // Mostly 0-200 bytes; now and then one larger than an arena chunk (a chunk of its own).
  const v = new Uint8Array(roll === 0 ? (1 << 20) + 3 : roll === 1 ? 0 : rng.int(200));
  for (let j = 0; j < v.length; j += 97) v[j] = (i + j) & 255;
  if (v.length > 0) v[v.length - 1] = i & 255;
  return v;
}

/** A frozen segment of `n` records written in random order (and a model of it). */
function randomSegment(n: number, seed: number, relayout = true) {
  const rng = new Prng(seed);
  const seg = new MutableSegment(1, compareBytes, { relayout });
  const model = new Map<string, { key: Uint8Array } & Rec>();
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  let op = 1;
  const put = (i: number) => {
    const key = keyOf(i, i % 3 === 0);
    const kind = rng.int(10) === 0 ? KIND_DELETE : KIND_PUT;
    const value = kind === KIND_DELETE ? new Uint8Array(0) : valueOf(rng, op);
    const expiresAt = rng.int(7) === 0 ? 1_800_000_000_000 + op : 0;
    seg.put(key, value, op, kind, expiresAt);
    model.set(key.join(","), { key, value, opIndex: op, kind, expiresAt });
    op++;
  };
  for (const i of order) put(i);
  // Overwrites: their old values stay behind in the old arena only.
  for (let r = 0; r < n / 5; r++) put(order[rng.int(n)]);
  seg.freeze();
  const sorted = [...model.values()].sort((a, b) => compareBytes(a.key, b.key));
  return { seg, sorted };
}

async function relaidOut(seg: MutableSegment): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (seg.pollRelayout()) {
    if (Date.now() > deadline) throw new Error("relayout did not finish in 20 s");
    await Bun.sleep(2);
  }
}

function expectRecord(c: RecordCursor, want: { key: Uint8Array } & Rec): void {
  expect(c.valid).toBe(true);
  expect([...c.key]).toEqual([...want.key]);
  expect(c.kind).toBe(want.kind);
  expect(c.opIndex).toBe(want.opIndex);
  expect(c.expiresAt).toBe(want.expiresAt);
  const v = c.copyValue();
  expect(v.length).toBe(want.value.length);
  expect(Buffer.compare(v, want.value)).toBe(0);
}

function scanEquals(seg: MutableSegment, sorted: ({ key: Uint8Array } & Rec)[], reverse: boolean): void {
  const c = seg.cursor(reverse);
  for (let i = 0; i < sorted.length; i++) {
    expect(c.next()).toBe(true);
    expectRecord(c, sorted[reverse ? sorted.length - 1 - i : i]);
  }
  expect(c.next()).toBe(false);
}

describe("relayout of a frozen segment", () => {
  test("records, cursors and point reads are unchanged, and the arena is in key order after", async () => {
    const n = RELAYOUT_MIN_RECORDS + 4000;
    const started = helperStats().relayoutsStarted;
    const { seg, sorted } = randomSegment(n, 0x7e1a);
    const tree = seg["tree"];
    expect(tree.arenaInKeyOrder()).toBe(false);
    // Part of the hash index built before the switch (each read indexes 64 leaves more): its
    // copies of the places must follow.
    const slot = newSlot();
    expect(helperStats().relayoutsStarted).toBe(started);
    for (let i = 0; i < 2; i++) expect(seg.get(sorted[i * 99].key, slot)).toBe(true);
    expect(helperStats().relayoutsStarted).toBe(started + 1);
    expect(tree["hashNext"]).not.toBe(null);
    // A cursor positioned mid-way whose value was read (a view kept), and one whose value was not.
    const read = seg.cursor(false);
    const unread = seg.cursor(true);
    const mid = sorted.length >> 1;
    for (let i = 0; i <= mid; i++) read.next();
    for (let i = 0; i <= mid; i++) unread.next();
    const kept = read.value;
    const keptCopy = kept.slice();
    const before = seg.memoryBytes();
    await relaidOut(seg);
    expect(tree.arenaInKeyOrder()).toBe(true);
    // Overwritten values are gone from the new arena.
    expect(seg.memoryBytes()).toBeLessThan(before);
    expect(Buffer.compare(kept, keptCopy)).toBe(0);
    expectRecord(unread, sorted[sorted.length - 1 - mid]);
    expectRecord(read, sorted[mid]);
    for (let i = mid + 1; i < sorted.length; i++) {
      expect(read.next()).toBe(true);
      expectRecord(read, sorted[i]);
    }
    for (let i = sorted.length - 2 - mid; i >= 0; i--) {
      expect(unread.next()).toBe(true);
      expectRecord(unread, sorted[i]);
    }
    scanEquals(seg, sorted, false);
    scanEquals(seg, sorted, true);
    for (const want of sorted) {
      expect(seg.get(want.key, slot)).toBe(true);
      expect(slot.opIndex).toBe(want.opIndex);
      expect(slot.kind).toBe(want.kind);
      expect(slot.expiresAt).toBe(want.expiresAt);
      expect(Buffer.compare(slot.value, want.value)).toBe(0);
    }
    expect(seg.get(keyOf(n + 5, false), slot)).toBe(false);
    expect(seg.get(keyOf(n + 6, true), slot)).toBe(false);
  });

  test("seeks land on the same records after the switch (separators follow the keys)", async () => {
    const { seg, sorted } = randomSegment(RELAYOUT_MIN_RECORDS * 2, 0x5eec);
    const tree = seg["tree"];
    expect(tree.separatorsInArena()).toBe(true);
    await relaidOut(seg);
    // Not views of the old chunks any more (those would keep them alive).
    expect(tree.separatorsInArena()).toBe(true);
    const rng = new Prng(3);
    for (let r = 0; r < 2000; r++) {
      const i = rng.int(sorted.length);
      const c = seg.cursor(r % 2 === 1);
      expect(c.seek(sorted[i].key)).toBe(true);
      expectRecord(c, sorted[i]);
    }
  });

  test("a merge's walk (a cursor not for a read) starts no relayout", () => {
    const started = helperStats().relayoutsStarted;
    const { seg, sorted } = randomSegment(RELAYOUT_MIN_RECORDS + 10, 9);
    const c = seg.cursor(false, false);
    let n = 0;
    while (c.next()) n++;
    expect(n).toBe(sorted.length);
    expect(helperStats().relayoutsStarted).toBe(started);
    expect(seg.pollRelayout()).toBe(true);
    expect(helperStats().relayoutsStarted).toBe(started + 1);
  });

  test("segments written in key order, small ones, and unshared arenas are left alone", () => {
    const inOrder = new MutableSegment(1, compareBytes, { relayout: true });
    for (let i = 0; i < RELAYOUT_MIN_RECORDS * 2; i++) inOrder.put(keyOf(i, false), new Uint8Array(8), i + 1, KIND_PUT, 0);
    inOrder.freeze();
    expect(inOrder.pollRelayout()).toBe(false);

    const small = randomSegment(RELAYOUT_MIN_RECORDS - 1, 1).seg;
    expect(small.pollRelayout()).toBe(false);

    const unshared = randomSegment(RELAYOUT_MIN_RECORDS + 1, 2, false).seg;
    expect(unshared.pollRelayout()).toBe(false);
    expect(unshared["tree"].arenaInKeyOrder()).toBe(false);

    setHelperThread({ relayout: false });
    const off = randomSegment(RELAYOUT_MIN_RECORDS + 1, 3).seg;
    expect(off.pollRelayout()).toBe(false);
    expect(off["tree"].arenaInKeyOrder()).toBe(false);
  });
});
