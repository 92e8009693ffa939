/**
 * A `str` field remembers the last string it decoded (neighbouring keys of a range share their
 * leading fields). The memo must never hand out a string for other bytes: same length with
 * different bytes, escaped and non-ASCII text, `desc` fields, two `str` fields in one key.
 */
import { expect, test } from "bun:test";
import { defineKeyspace } from "../../mod.ts";
import { Prng } from "../../src/util/prng.ts";

const ALPHABET = ["a", "b", "\u0000", "é", "😀", "z", "\u007f"];

function randomStr(rng: Prng): string {
  const n = rng.int(4);
  let s = "";
  for (let i = 0; i < n; i++) s += ALPHABET[rng.int(ALPHABET.length)];
  return s;
}

for (const layout of ["t:<str>:u:<str:desc>:n:<u32be>", "<str:desc>/<str>"]) {
  test(`decoding a run of keys through one codec gives every key back (${layout})`, () => {
    const ks = defineKeyspace({ key: layout, value: "bytes" });
    const rng = new Prng(0x5743);
    const keys: unknown[] = [];
    let a = "ab";
    let b = "ba";
    for (let i = 0; i < 5000; i++) {
      // Mostly repeats, sometimes a same-length change, sometimes anything.
      const r = rng.int(4);
      if (r === 1) a = a.length === 2 && a !== "zz" ? "zz" : "ab";
      else if (r === 2) b = randomStr(rng);
      else if (r === 3) a = randomStr(rng);
      keys.push(layout.includes("n:") ? [a, b, i] : [a, b]);
    }
    for (const k of keys) {
      const decoded = ks.key.decode(ks.key.encode(k as never)) as Record<string, unknown>;
      expect(Object.values(decoded)).toEqual(k as unknown[]);
    }
  });
}
