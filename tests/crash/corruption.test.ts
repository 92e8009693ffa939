/**
 * Torn tails and bit flips in the files of a real tree (real directory, node:fs):
 * - the newest WAL cut at random offsets opens with a prefix of its writes, reports the torn
 *   tail on the "error" event (file and offset of the torn frame), loses nothing that was durable
 *   before the torn frame, keeps batches whole, numbers new writes above every opIndex returned,
 *   and opens cleanly the next time;
 * - a flipped byte before the last frame of a WAL (newest or older) fails the open with a
 *   CorruptionError naming that file and the damaged frame's offset;
 * - a flipped byte in `seg-*.data`, `seg-*.multi` or `meta` makes the open or a read throw
 *   CorruptionError naming the file, and `verify` always finds it; a read that succeeds returns
 *   exactly what the model holds (never wrong data).
 *
 * ZT_SEED=<n> reproduces a run; ZT_FLIPS=<n> tries more offsets per case (default 8).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import { CorruptionError, defineKeyspace, ZoneTree } from "../../mod.ts";
import { BlockCache } from "../../src/disk/block_cache.ts";
import { openRecordedSegment } from "../../src/engine/disk_set.ts";
import { readMetadata } from "../../src/engine/metadata.ts";
import { parseWalFileName } from "../../src/engine/file_names.ts";
import { localFileSystem } from "../../src/fs/local_file_system.ts";
import { Prng } from "../../src/util/prng.ts";
import { replayWal } from "../../src/wal/wal_reader.ts";

/** These tests exercise the change feed across merges: keep 64 MiB of merged WALs for it. */
const FEED_RETENTION = 64 * 1024 * 1024;

const SEED = Number(process.env.ZT_SEED ?? Date.now() % 1_000_000);
const FLIPS = Number(process.env.ZT_FLIPS ?? 8);
const ks = defineKeyspace({ key: "k:<str>:<u32be>", value: "utf8" });
type Wal = "sync" | "sync-compressed" | "async-compressed";

const TUNING = {
  maintenance: "manual",
  multipartMinItemCount: 60,
  multipartMaxItemCount: 150,
  diskSegmentMaxItemCount: 400,
  blockSizeBytes: 512,
  sparseStep: 8,
} as const;

let root: string;
beforeAll(() => (root = nodeFs.mkdtempSync(`${os.tmpdir()}/zt-corrupt-`)));
afterAll(() => nodeFs.rmSync(root, { recursive: true, force: true }));

type Key = [string, number];
const hex = (k: Key) => `${k[0]}/${k[1]}`;

/** One write into the newest WAL: the keys it sets (value) or deletes (undefined). */
interface LoggedWrite {
  changes: [Key, string | undefined][];
  opIndex: number;
  /** The WAL size once this write is durable (sync: after it; async: after the next flush). */
  durableEnd: number;
  /** The WAL size right after it (sync modes: the end of its frame). */
  end: number;
}

interface Built {
  dir: string;
  /** Everything except the writes of the newest WAL. */
  base: Map<string, [Key, string]>;
  newest: { name: string; writes: LoggedWrite[] };
  /** Every WAL and where its frames end (sync modes only). */
  wals: { name: string; frameEnds: number[] }[];
  maxOpIndex: number;
}

function walNames(dir: string): string[] {
  return nodeFs.readdirSync(dir).filter((n) => parseWalFileName(n) !== undefined).sort();
}

/**
 * Builds a tree with bottom segments, a multipart disk segment, a read-only segment with its WAL
 * and a mutable segment whose WAL is the newest; closes it. Records the model and, in the WALs
 * written after the last merge, where each write ends.
 */
async function build(name: string, wal: Wal, seed: number): Promise<Built> {
  const dir = `${root}/${name}`;
  const prng = new Prng(seed);
  // The bulk is written fast; the WALs that the tests damage are written in the mode under test.
  let tree = await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION, dir, keyspace: ks, wal: "async-compressed", ...TUNING });
  const model = new Map<string, [Key, string]>();
  let maxOpIndex = 0;
  const words = ["a", "b", "ab", "zz", "\u0000x", "é"];
  const randomKey = (): Key => [words[prng.int(words.length)], prng.int(400)];
  const put = (k: Key, v: string) => {
    maxOpIndex = tree.upsert(k, v);
    model.set(hex(k), [k, v]);
  };
  // Two rounds of merges: the first disk segment outgrows 400 records and moves to the bottom.
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 700; i++) {
      const k = randomKey();
      if (prng.int(6) === 0) {
        maxOpIndex = tree.forceDelete(k);
        model.delete(hex(k));
      } else put(k, `r${round}-${i}-${"v".repeat(prng.int(40))}`);
      if (i % 150 === 149) tree.maintenance.moveMutableSegmentForward();
    }
    tree.maintenance.moveMutableSegmentForward();
    await tree.maintenance.merge();
  }
  await tree.close();
  tree = await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION, dir, keyspace: ks, wal, ...TUNING });
  const wals: Built["wals"] = [];
  const logged: LoggedWrite[] = [];
  let pending: LoggedWrite[] = [];
  for (let seg = 0; seg < 2; seg++) {
    // In async-compressed the live WAL is created off the event loop: flush waits for it.
    await tree.flush();
    const walName = walNames(dir).at(-1)!;
    // Where the log ends: in the sync modes zeros follow the last frame (PREALLOC_BYTES).
    const size = () => replayWal(localFileSystem(), `${dir}/${walName}`, () => {}).validLength;
    const frameEnds: number[] = [];
    for (let i = 0; i < 60; i++) {
      const changes: [Key, string | undefined][] = [];
      let opIndex: number;
      if (prng.int(4) === 0) {
        const ops = [];
        const seen = new Set<string>();
        for (let j = 1 + prng.int(8); j > 0; j--) {
          const k: Key = [`batch${seg}`, prng.int(50)];
          if (seen.has(hex(k))) continue;
          seen.add(hex(k));
          const v = prng.int(4) === 0 ? undefined : `b${seg}-${i}-${j}`;
          ops.push(v === undefined ? { del: k } : { put: k, value: v });
          changes.push([k, v]);
        }
        opIndex = tree.batch(ops);
      } else {
        const k = randomKey();
        const v = prng.int(5) === 0 ? undefined : `s${seg}-${i}-${"w".repeat(prng.int(60))}`;
        opIndex = v === undefined ? tree.forceDelete(k) : tree.upsert(k, v);
        changes.push([k, v]);
      }
      maxOpIndex = opIndex;
      const w: LoggedWrite = { changes, opIndex, durableEnd: -1, end: size() };
      frameEnds.push(w.end);
      pending.push(w);
      if (wal !== "async-compressed" || prng.int(8) === 0 || i === 59) {
        if (wal === "async-compressed") await tree.flush();
        for (const p of pending) p.durableEnd = size();
        pending = [];
      }
      if (seg === 1) logged.push(w);
      else {for (const [k, v] of changes) {
          v === undefined ? model.delete(hex(k)) : model.set(hex(k), [k, v]);
        }}
    }
    wals.push({ name: walName, frameEnds });
    if (seg === 0) tree.maintenance.moveMutableSegmentForward();
  }
  const stats = tree.stats();
  expect(stats.bottomSegmentsCount).toBeGreaterThan(0);
  expect(stats.readOnlySegmentsCount).toBe(1);
  await tree.close();
  const newestName = wals[1].name;
  expect(walNames(dir).at(-1)).toBe(newestName);
  return { dir, base: model, newest: { name: newestName, writes: logged }, wals, maxOpIndex };
}

/** A fresh copy of `from` for one trial. */
function copyOf(from: string, tag: string): string {
  const dir = `${from}-${tag}`;
  nodeFs.rmSync(dir, { recursive: true, force: true });
  nodeFs.cpSync(from, dir, { recursive: true });
  return dir;
}

function flipByte(path: string, offset: number, mask: number): void {
  const fd = nodeFs.openSync(path, "r+");
  try {
    const b = new Uint8Array(1);
    nodeFs.readSync(fd, b, 0, 1, offset);
    b[0] ^= mask;
    nodeFs.writeSync(fd, b, 0, 1, offset);
  } finally {
    nodeFs.closeSync(fd);
  }
}

// deno-lint-ignore no-explicit-any
type Tree = ZoneTree<any, string, any, any>;

/** The tree's whole content, forward; checks reverse and get agree with it. */
function contentOf(tree: Tree): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of tree.range()) out.set(hex([k.k, k.f1]), v);
  return out;
}

function expectSameAsModel(tree: Tree, model: Map<string, [Key, string]>, why: string): void {
  const seen = contentOf(tree);
  const diffs: string[] = [];
  for (const [h, [, v]] of model) {
    if (seen.get(h) !== v) diffs.push(`${h}: ${seen.get(h)} instead of ${v}`);
  }
  for (const [h, v] of seen) if (!model.has(h)) diffs.push(`${h}: ${v} instead of absent`);
  expect(diffs.slice(0, 10), `${why}: ${diffs.length} keys differ`).toEqual([]);
  const reverse = [...tree.keys({ reverse: true })].map((k) => hex([k.k, k.f1]));
  expect(reverse, why).toEqual([...seen.keys()].reverse());
  // get goes through another path than range (sparse index, block cache): check a sample.
  let i = 0;
  for (const [k, v] of model.values()) if (i++ % 7 === 0) expect(tree.get(k), why).toBe(v);
}

function sameContent(content: Map<string, string>, model: Map<string, [Key, string]>): boolean {
  if (content.size !== model.size) return false;
  for (const [h, [, v]] of model) if (content.get(h) !== v) return false;
  return true;
}

function isCorruptionIn(e: unknown, file: string): boolean {
  return e instanceof CorruptionError && e.code === "CORRUPTION" && e.file.endsWith(`/${file}`) &&
    Number.isInteger(e.offset) && e.offset >= 0;
}

for (const wal of ["sync", "sync-compressed", "async-compressed"] as Wal[]) {
  describe(`${wal} WAL`, () => {
    let built: Built;
    beforeAll(async () => {
      built = await build(wal, wal, SEED + wal.length);
    }, 30_000);

    test(
      `a torn newest WAL opens with a prefix, reports the tail, loses nothing durable (seed ${SEED})`,
      async () => {
        const prng = new Prng(SEED ^ 0x70f);
        const { writes } = built.newest;
        const walPath = (dir: string) => `${dir}/${built.newest.name}`;
        const walBytes = new Uint8Array(nodeFs.readFileSync(walPath(built.dir)));
        const fullSize = walBytes.length;
        const states = [new Map(built.base)];
        for (const w of writes) {
          const next = new Map(states.at(-1));
          for (const [k, v] of w.changes) {
            v === undefined ? next.delete(hex(k)) : next.set(hex(k), [k, v]);
          }
          states.push(next);
        }
        const cuts = [0, 7, 20, fullSize - 1, ...writes.slice(0, 5).map((w) => w.end)];
        for (let i = 0; i < FLIPS; i++) cuts.push(prng.int(fullSize));
        for (const cut of cuts) {
          const why = `seed ${SEED} ${wal}: newest WAL cut at ${cut} of ${fullSize}`;
          const dir = copyOf(built.dir, `cut${cut}`);
          nodeFs.truncateSync(walPath(dir), cut);
          const tree = (await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION, dir, keyspace: ks, wal, ...TUNING })) as Tree;
          const errors: unknown[] = [];
          tree.events.on("error", (e) => errors.push(e));
          // The visible writes of the newest WAL are a prefix, and hold every durable one.
          const content = contentOf(tree);
          // Writes that change nothing visible make neighbouring states equal: take every match.
          const matches = states.flatMap((m, j) => (sameContent(content, m) ? [j] : []));
          const durable = writes.filter((w) => w.durableEnd <= cut).length;
          const framesKept = writes.filter((w) => w.end <= cut).length;
          if (matches.length === 0) {
            expectSameAsModel(tree, states[framesKept], `${why}: no prefix matches`);
          }
          const visible = matches.at(-1)!;
          const model = new Map(states[visible]);
          expectSameAsModel(tree, model, why);
          expect(visible, `${why}: durable writes lost`).toBeGreaterThanOrEqual(durable);
          expect(matches[0], `${why}: writes past the cut visible`).toBeLessThanOrEqual(framesKept);
          if (wal !== "async-compressed") {
            // One frame per write: exactly the frames that end by the cut survive.
            expect(matches, why).toContain(framesKept);
            const frameStart = Math.max(
              20,
              ...writes.filter((w) => w.end <= cut).map((w) => w.end),
            );
            // Only zeros of the cut frame left (its length's high bytes): that is where the log
            // ends, as the zeros a sync-mode log writes ahead (PREALLOC_BYTES), not a torn tail.
            const torn = cut !== frameStart &&
              (cut < 20 || !walBytes.subarray(frameStart, cut).every((b) => b === 0));
            expect(errors.length, why).toBe(torn ? 1 : 0);
            if (torn) {
              expect(isCorruptionIn(errors[0], built.newest.name), `${why}: ${errors[0]}`).toBe(
                true,
              );
              expect((errors[0] as CorruptionError).offset, why).toBe(cut < 20 ? 0 : frameStart);
              expect((errors[0] as Error).message, why).toContain("torn");
            }
          } else {
            for (const e of errors) {
              expect(isCorruptionIn(e, built.newest.name), `${why}: ${e}`).toBe(true);
            }
          }
          // New writes are numbered above everything ever returned; the tail is gone on the next open.
          const opIndex = tree.upsert(["after", 1], "x");
          expect(opIndex, why).toBeGreaterThan(built.maxOpIndex);
          await tree.close();
          if (cuts.indexOf(cut) % 3 === 0) {
            const again = (await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION, dir, keyspace: ks, wal, ...TUNING })) as Tree;
            const errorsAgain: unknown[] = [];
            again.events.on("error", (e) => errorsAgain.push(e));
            expect(errorsAgain, why).toEqual([]);
            model.set(hex(["after", 1]), [["after", 1], "x"]);
            expectSameAsModel(again, model, why);
            expect(again.lastOpIndex, why).toBe(opIndex);
            await again.close();
          }
          nodeFs.rmSync(dir, { recursive: true, force: true });
        }
      },
      60_000,
    );

    if (wal === "async-compressed") return; // frame boundaries are known only in the sync modes
    test(
      `a flipped byte before a WAL's last frame fails the open, naming file and frame (seed ${SEED})`,
      async () => {
        const prng = new Prng(SEED ^ 0xf11);
        for (const { name, frameEnds } of built.wals) {
          const lastFrameStart = frameEnds.at(-2)!;
          const offsets = [0, 5, 19, 20, 21, lastFrameStart - 1];
          for (let i = 0; i < FLIPS; i++) offsets.push(prng.int(lastFrameStart));
          for (const offset of offsets) {
            const mask = 1 << prng.int(8);
            const why = `seed ${SEED} ${wal}: ${name} byte ${offset} ^ ${mask}`;
            const dir = copyOf(built.dir, `flip${offset}`);
            flipByte(`${dir}/${name}`, offset, mask);
            const before = nodeFs.readdirSync(dir).sort();
            let error: unknown;
            try {
              const tree = await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION, dir, keyspace: ks, wal, ...TUNING });
              await tree.close();
            } catch (e) {
              error = e;
            }
            expect(isCorruptionIn(error, name), `${why}: ${error}`).toBe(true);
            const frameStart = offset < 20
              ? 0
              : Math.max(20, ...frameEnds.filter((e) => e <= offset));
            expect((error as CorruptionError).offset, `${why}: ${error}`).toBe(frameStart);
            expect(nodeFs.readdirSync(dir).sort(), `${why}: a failed open changes no file`).toEqual(
              before,
            );
            nodeFs.rmSync(dir, { recursive: true, force: true });
          }
        }
      },
      60_000,
    );
  });
}

describe("segment and metadata files", () => {
  let built: Built;
  beforeAll(async () => {
    built = await build("segments", "sync-compressed", SEED + 99);
  }, 30_000);

  /** Which files to damage: every disk segment file and the metadata. */
  function targets(): string[] {
    const names = nodeFs.readdirSync(built.dir);
    return names.filter((n) => n === "meta" || n.startsWith("seg-")).sort();
  }

  const newOutcome = () => ({ atOpen: 0, atRead: 0, byVerifyOnly: 0, trials: 0 });

  /** The full content the built tree holds. */
  function modelOf(): Map<string, [Key, string]> {
    const model = new Map(built.base);
    for (const w of built.newest.writes) {
      for (const [k, v] of w.changes) {
        v === undefined ? model.delete(hex(k)) : model.set(hex(k), [k, v]);
      }
    }
    return model;
  }

  /**
   * Damages `name` in a copy of the tree. verify must report it (CorruptionError naming the
   * file); the open either fails the same way or opens, and then every read either returns what
   * the model holds or fails the same way.
   */
  async function damageTrial(
    name: string,
    damage: (path: string) => void,
    why: string,
    outcome: ReturnType<typeof newOutcome>,
  ): Promise<void> {
    const model = modelOf();
    const dir = copyOf(built.dir, `damage-${name}`);
    damage(`${dir}/${name}`);
    outcome.trials++;
    let verifyError: unknown;
    try {
      verifyDir(dir);
    } catch (e) {
      verifyError = e;
    }
    expect(isCorruptionIn(verifyError, name), `${why}: verify said ${verifyError}`).toBe(true);
    let tree: Tree | undefined;
    try {
      tree =
        (await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION, dir, keyspace: ks, wal: "sync-compressed", ...TUNING })) as Tree;
    } catch (e) {
      expect(isCorruptionIn(e, name), `${why}: open threw ${e}`).toBe(true);
      outcome.atOpen++;
    }
    if (tree) {
      let readError: unknown;
      const readOrCorrupt = (fn: () => void) => {
        try {
          fn();
        } catch (e) {
          expect(isCorruptionIn(e, name), `${why}: read threw ${e}`).toBe(true);
          readError = e;
        }
      };
      // Every read that succeeds agrees with the model.
      for (const [k, v] of model.values()) readOrCorrupt(() => expect(tree!.get(k), why).toBe(v));
      readOrCorrupt(() => expectSameAsModel(tree!, model, why));
      if (readError) outcome.atRead++;
      else outcome.byVerifyOnly++;
      await tree.close();
    }
    nodeFs.rmSync(dir, { recursive: true, force: true });
  }

  test(`the tree has multipart segments, parts and bottom segments to damage`, () => {
    const names = targets();
    expect(names.filter((n) => n.endsWith(".multi")).length).toBeGreaterThanOrEqual(1);
    expect(names.filter((n) => n.endsWith(".data")).length).toBeGreaterThanOrEqual(4);
    expect(names).toContain("meta");
  });

  test(
    `a flipped byte in seg-*.data, seg-*.multi or meta is CorruptionError naming it, never wrong data (seed ${SEED})`,
    async () => {
      const prng = new Prng(SEED ^ 0x5e6);
      const outcome = newOutcome();
      // FLIPS offsets per kind of file, spread over the files of that kind.
      const names = targets();
      const trials: [string, number][] = [];
      for (const kind of [".data", ".multi", "meta"]) {
        const files = names.filter((n) => n.endsWith(kind));
        for (let i = 0; i < FLIPS + 2; i++) {
          const name = files[i % files.length];
          const size = nodeFs.statSync(`${built.dir}/${name}`).size;
          trials.push([name, i === 0 ? 0 : i === 1 ? size - 1 : prng.int(size)]);
        }
      }
      for (const [name, offset] of trials) {
        const size = nodeFs.statSync(`${built.dir}/${name}`).size;
        const mask = 1 << prng.int(8);
        const why = `seed ${SEED}: ${name} (${size} bytes) byte ${offset} ^ ${mask}`;
        await damageTrial(name, (path) => flipByte(path, offset, mask), why, outcome);
      }
      console.log(`segment and metadata flips (seed ${SEED}): ${JSON.stringify(outcome)}`);
    },
    60_000,
  );

  test(
    `a truncated or missing seg-* file or meta is CorruptionError naming it (seed ${SEED})`,
    async () => {
      const prng = new Prng(SEED ^ 0x7c);
      const outcome = newOutcome();
      for (const name of targets()) {
        const size = nodeFs.statSync(`${built.dir}/${name}`).size;
        const cut = prng.int(size);
        await damageTrial(
          name,
          (path) => nodeFs.truncateSync(path, cut),
          `seed ${SEED}: ${name} cut to ${cut} of ${size}`,
          outcome,
        );
        if (name !== "meta") {
          await damageTrial(
            name,
            (path) => nodeFs.rmSync(path),
            `seed ${SEED}: ${name} removed`,
            outcome,
          );
        }
      }
      console.log(`segment truncations and removals (seed ${SEED}): ${JSON.stringify(outcome)}`);
    },
    60_000,
  );

  test(
    "zonetree verify names a missing multipart descriptor, not a data file that never existed",
    async () => {
      const multi = targets().find((n) => n.endsWith(".multi"))!;
      const dir = copyOf(built.dir, "cli-verify");
      nodeFs.rmSync(`${dir}/${multi}`);
      const cli = new URL("../../cli.ts", import.meta.url).pathname;
      const child = Bun.spawn([process.execPath, cli, "verify", dir], {
        stdout: "pipe",
        stderr: "pipe",
      });
      const [stdout, stderr, code] = await Promise.all([
        new Response(child.stdout).text(),
        new Response(child.stderr).text(),
        child.exited,
      ]);
      expect(code, stdout + stderr).toBe(1);
      expect(stdout + stderr).toContain(multi);
      expect(stdout + stderr).not.toContain(multi.replace(".multi", ".data"));
      nodeFs.rmSync(dir, { recursive: true, force: true });
    },
    30_000,
  );
});

/** What `zonetree verify` checks: the metadata, then every byte of every disk segment. */
function verifyDir(dir: string): void {
  const fs = localFileSystem();
  const meta = readMetadata(fs, dir)!;
  const cache = new BlockCache(1 << 20);
  for (const r of [...(meta.diskSegment ? [meta.diskSegment] : []), ...meta.bottomSegments]) {
    const seg = openRecordedSegment(fs, dir, r, ks.key.compare, cache);
    try {
      seg.verify();
    } finally {
      seg.close();
    }
  }
}

// -----------------------------------------------------------------------------------------------
// Bytes appended ("extend") to each kind of file. Patterns: random bytes, 0xff bytes (every
// length field they are read as is huge: nothing may be allocated from it, nothing may hang),
// zeros, and a copy of the file's own first bytes (plausible headers in the wrong place).

describe("bytes appended to every kind of file", () => {
  let built: Built;
  beforeAll(async () => {
    built = await build("extend", "sync-compressed", SEED + 7);
  }, 30_000);

  const patterns: [string, (prng: Prng, file: Uint8Array) => Uint8Array][] = [
    ["random bytes", (prng) => prng.bytes(1 + prng.int(300))],
    ["0xff bytes", (prng) => new Uint8Array(1 + prng.int(100)).fill(0xff)],
    ["zeros", (prng) => new Uint8Array(1 + prng.int(100))],
    ["its own first bytes", (prng, file) => file.slice(0, Math.min(file.length, 8 + prng.int(64)))],
  ];

  function appendTo(path: string, bytes: Uint8Array): void {
    nodeFs.appendFileSync(path, bytes);
  }

  function fullModel(): Map<string, [Key, string]> {
    const model = new Map(built.base);
    for (const w of built.newest.writes) {
      for (const [k, v] of w.changes) {
        v === undefined ? model.delete(hex(k)) : model.set(hex(k), [k, v]);
      }
    }
    return model;
  }

  test(
    `seg-*.data, seg-*.multi and meta with bytes appended are CorruptionError naming them, never wrong data (seed ${SEED})`,
    async () => {
      const prng = new Prng(SEED ^ 0xe7);
      const names = nodeFs.readdirSync(built.dir).filter((n) =>
        n === "meta" || n.startsWith("seg-")
      ).sort();
      const outcome = { atOpen: 0, atRead: 0, byVerifyOnly: 0 };
      for (const kind of [".data", ".multi", "meta"]) {
        const files = names.filter((n) => n.endsWith(kind));
        expect(files.length, kind).toBeGreaterThan(0);
        for (const [pi, [what, make]] of patterns.entries()) {
          const name = files[(pi + prng.int(files.length)) % files.length];
          const original = nodeFs.readFileSync(`${built.dir}/${name}`);
          const extra = make(prng, original);
          const why = `seed ${SEED}: ${name} (${original.length} bytes) + ${extra.length} ${what}`;
          const dir = copyOf(built.dir, `extend-${name}`);
          appendTo(`${dir}/${name}`, extra);
          let verifyError: unknown;
          try {
            verifyDir(dir);
          } catch (e) {
            verifyError = e;
          }
          expect(isCorruptionIn(verifyError, name), `${why}: verify said ${verifyError}`).toBe(
            true,
          );
          const model = fullModel();
          let tree: Tree | undefined;
          try {
            tree = (await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION,
              dir,
              keyspace: ks,
              wal: "sync-compressed",
              ...TUNING,
            })) as Tree;
          } catch (e) {
            expect(isCorruptionIn(e, name), `${why}: open threw ${e}`).toBe(true);
            outcome.atOpen++;
          }
          if (tree) {
            try {
              expectSameAsModel(tree, model, why);
              outcome.byVerifyOnly++;
            } catch (e) {
              expect(isCorruptionIn(e, name), `${why}: read threw ${e}`).toBe(true);
              outcome.atRead++;
            }
            await tree.close();
          }
          nodeFs.rmSync(dir, { recursive: true, force: true });
        }
      }
      console.log(`segment and metadata extensions (seed ${SEED}): ${JSON.stringify(outcome)}`);
    },
    60_000,
  );

  test(
    `a WAL with bytes appended opens with every write it holds and reports the tail as torn (or is CorruptionError at its end, which repair cuts), once; zeros are its end (seed ${SEED})`,
    async () => {
      const prng = new Prng(SEED ^ 0xe8);
      const model = fullModel();
      for (const { name } of built.wals) {
        for (const [what, make] of patterns) {
          const original = nodeFs.readFileSync(`${built.dir}/${name}`);
          const extra = make(prng, original);
          const why = `seed ${SEED}: ${name} (${original.length} bytes) + ${extra.length} ${what}`;
          const dir = copyOf(built.dir, `extend-${name}`);
          appendTo(`${dir}/${name}`, extra);
          let tree: Tree;
          let repaired = false;
          try {
            tree = (await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION,
              dir,
              keyspace: ks,
              wal: "sync-compressed",
              ...TUNING,
            })) as Tree;
          } catch (e) {
            // A complete, checksummed frame after the garbage (here: a copy of the log's first
            // frame) makes it look like damage in the middle of the log, not a torn tail: a clean
            // CorruptionError at the end of the real log, and `repair` cuts it there.
            expect(isCorruptionIn(e, name), `${why}: open threw ${e}`).toBe(true);
            expect((e as CorruptionError).offset, why).toBe(original.length);
            tree = (await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION,
              dir,
              keyspace: ks,
              wal: "sync-compressed",
              repair: true,
              ...TUNING,
            })) as Tree;
            repaired = true;
          }
          const errors: unknown[] = [];
          tree.events.on("error", (e) => errors.push(e));
          expectSameAsModel(tree, model, why);
          if (what === "zeros") {
            // Zeros after the last frame are where the log ends (what a sync-mode log leaves
            // after a crash, see PREALLOC_BYTES): nothing to report.
            expect(errors, why).toEqual([]);
            await tree.close();
            nodeFs.rmSync(dir, { recursive: true, force: true });
            continue;
          }
          expect(errors.length, why).toBe(1);
          expect(isCorruptionIn(errors[0], name), `${why}: ${errors[0]}`).toBe(true);
          expect((errors[0] as CorruptionError).offset, why).toBe(original.length);
          expect((errors[0] as Error).message, why).toContain(repaired ? "repaired" : "torn");
          await tree.close();
          // The tail was cut: the next open is clean and holds the same.
          const again =
            (await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION, dir, keyspace: ks, wal: "sync-compressed", ...TUNING })) as Tree;
          const errorsAgain: unknown[] = [];
          again.events.on("error", (e) => errorsAgain.push(e));
          expect(errorsAgain, why).toEqual([]);
          expectSameAsModel(again, model, why);
          await again.close();
          nodeFs.rmSync(dir, { recursive: true, force: true });
        }
      }
    },
    60_000,
  );

  test(
    `a merged WAL kept for the change feed with bytes appended: the tree opens, changes() is CorruptionError naming it (zeros: its end) (seed ${SEED})`,
    async () => {
      const prng = new Prng(SEED ^ 0xe9);
      const kept = nodeFs.readdirSync(built.dir).filter((n) => n.endsWith(".old")).sort();
      expect(kept.length).toBeGreaterThan(0);
      const model = fullModel();
      for (const [what, make] of patterns) {
        const name = kept[prng.int(kept.length)];
        const original = nodeFs.readFileSync(`${built.dir}/${name}`);
        const extra = make(prng, original);
        const why = `seed ${SEED}: ${name} (${original.length} bytes) + ${extra.length} ${what}`;
        const dir = copyOf(built.dir, `extend-${name}`);
        appendTo(`${dir}/${name}`, extra);
        const tree =
          (await ZoneTree.open({ changeFeedRetentionBytes: FEED_RETENTION, dir, keyspace: ks, wal: "sync-compressed", ...TUNING })) as Tree;
        expectSameAsModel(tree, model, why);
        let error: unknown;
        let changes = 0;
        try {
          for await (const _ of tree.changes(0)) changes++;
        } catch (e) {
          error = e;
        }
        if (what === "zeros") {
          // Zeros are where a log ends (a sync-mode log that a crash left with the zeros it
          // wrote ahead may be kept so): the feed reads through it.
          expect(error, why).toBeUndefined();
          expect(changes, why).toBeGreaterThan(0);
        } else expect(isCorruptionIn(error, name), `${why}: changes() gave ${error}`).toBe(true);
        await tree.close();
        nodeFs.rmSync(dir, { recursive: true, force: true });
      }
    },
    60_000,
  );
});
