/**
 * The bad-input matrix (issue 7): every public function of `mod.ts` with wrong types,
 * out-of-range numbers, NaN, undefined and null, missing and extra key fields, oversized keys,
 * bad options of every kind, a closed tree, a disposed iterator, a finished transaction, a
 * schema file that is not JSON, a `dir` that is a file, a data directory that cannot be written.
 * Each call throws the typed error of API.md §7 (asserted on `code`) and writes nothing: the
 * tree's lastOpIndex, count and files are unchanged.
 *
 * The data directory without write permission: the tests run as root here, and root ignores
 * directory modes, so that case is a `faultFileSystem` failing every open with EACCES; with a
 * non-root user a real read-only directory is tried as well.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import {
  defineKeyspace,
  keyspaceFromSpec,
  loadKeyspace,
  type MemoryFileSystem,
  memoryFileSystem,
  parseKeyspaceSchema,
  PartitionedTree,
  replicaStateKeyspace,
  replicate,
  Replicator,
  timeBucket,
  ZoneTree,
} from "../../mod.ts";
import { faultFileSystem } from "../../src/fs/fault_file_system.ts";

const ks = defineKeyspace({ name: "bad-input", key: "s:<str>:n:<u32be>", value: "json" });
// deno-lint-ignore no-explicit-any
type AnyTree = ZoneTree<any, any, any, any>;

/** The code of what `fn` threw or rejected with (undefined if it returned). */
async function codeOf(fn: () => unknown): Promise<string | undefined> {
  try {
    const r = fn();
    if (r instanceof Promise) await r;
    // A generator does nothing until pulled.
    if (r && typeof (r as Generator).next === "function" && Symbol.iterator in (r as object)) {
      for (const _ of r as Iterable<unknown>) { /* drain */ }
    }
  } catch (e) {
    return (e as { code?: string }).code ??
      `untyped ${(e as Error)?.name}: ${(e as Error)?.message}`;
  }
  return undefined;
}

/** Every file of `dir` with its size, recursively. */
function files(fs: MemoryFileSystem, dir: string): string[] {
  const out: string[] = [];
  for (const name of fs.list(dir)) {
    const path = `${dir}/${name}`;
    const st = fs.stat(path)!;
    if (st.isDirectory) out.push(...files(fs, path));
    else out.push(`${path}:${st.size}`);
  }
  return out;
}

/** A tree with some data in every layer, on a memory file system. */
async function freshTree(extra: object = {}): Promise<{ tree: AnyTree; fs: MemoryFileSystem }> {
  const fs = memoryFileSystem();
  const tree = await ZoneTree.open({
    dir: "/db",
    keyspace: ks,
    fs,
    wal: "sync",
    maintenance: "manual",
    ...extra,
  }) as AnyTree;
  for (let i = 0; i < 20; i++) tree.upsert(["a", i], { i });
  tree.maintenance.moveMutableSegmentForward();
  await tree.maintenance.merge();
  for (let i = 10; i < 30; i++) tree.upsert(["b", i], { i });
  return { tree, fs };
}

let tree: AnyTree;
let fs: MemoryFileSystem;
beforeAll(async () => ({ tree, fs } = await freshTree()));
afterAll(() => tree.close());

/**
 * `fn` throws `code`, and the tree is as before: same lastOpIndex, count, files, and an
 * unchanged value under a key the bad call could have touched.
 */
async function refused(fn: () => unknown, code: string, why: string): Promise<void> {
  const before = { op: tree.lastOpIndex, count: tree.count(), files: files(fs, "/db") };
  const probe = tree.get(["a", 1]);
  expect(await codeOf(fn), why).toBe(code);
  expect(tree.lastOpIndex, why).toBe(before.op);
  expect(tree.count(), why).toBe(before.count);
  expect(files(fs, "/db"), why).toEqual(before.files);
  expect(tree.get(["a", 1]), why).toEqual(probe);
}

const BAD_KEYS: [string, unknown][] = [
  ["undefined", undefined],
  ["null", null],
  ["a number", 1],
  ["a string", "a"],
  ["a symbol", Symbol("k")],
  ["a function", () => 1],
  ["a Uint8Array", new Uint8Array(3)],
  ["an empty tuple", []],
  ["a tuple missing a field", ["a"]],
  ["a tuple with an extra field", ["a", 1, 2]],
  ["an object missing a field", { s: "a" }],
  ["an object with an extra field", { s: "a", n: 1, z: 1 }],
  ["an object with an undefined field", { s: "a", n: undefined }],
  ["a wrong field type", { s: 1, n: 1 }],
  ["a negative u32", ["a", -1]],
  ["a u32 above 2^32-1", ["a", 2 ** 32]],
  ["NaN", ["a", NaN]],
  ["Infinity", ["a", Infinity]],
  ["a fraction", ["a", 1.5]],
  ["a numeric string", ["a", "1"]],
  ["a bigint for u32", ["a", 1n]],
  ["a lone surrogate", ["\uD800", 1]],
];

describe("bad keys are KEY_ENCODING and write nothing", () => {
  // deno-lint-ignore no-explicit-any
  const calls: [string, (k: any) => unknown][] = [
    ["upsert", (k) => tree.upsert(k, 1)],
    ["upsert with ttl", (k) => tree.upsert(k, 1, { ttlMs: 10 })],
    ["tryAdd", (k) => tree.tryAdd(k, 1)],
    ["tryDelete", (k) => tree.tryDelete(k)],
    ["forceDelete", (k) => tree.forceDelete(k)],
    ["update", (k) => tree.update(k, (v: unknown) => v)],
    ["addOrUpdate", (k) => tree.addOrUpdate(k, 1, (v: unknown) => v)],
    [
      "batch put (second op)",
      (k) => tree.batch([{ put: ["a", 1], value: 9 }, { put: k, value: 1 }]),
    ],
    ["batch del (second op)", (k) => tree.batch([{ put: ["a", 1], value: 9 }, { del: k }])],
    ["transaction upsert", (k) => tree.transaction().upsert(k, 1)],
    ["transaction delete", (k) => tree.transaction().delete(k)],
    ["transaction get", (k) => tree.transaction().get(k)],
    ["get", (k) => tree.get(k)],
    ["has", (k) => tree.has(k)],
    ["getMany (second key)", (k) => tree.getMany([["a", 1], k])],
  ];
  for (const [name, call] of calls) {
    test(name, async () => {
      for (const [what, key] of BAD_KEYS) {
        await refused(() => call(key), "KEY_ENCODING", `${name}(${what})`);
      }
    });
  }

  test("bounds and seek targets (prefixes: a leading subset of fields, nothing else)", async () => {
    const prefixes: [string, unknown][] = [
      ["a number", 5],
      ["an unknown field", { q: 1 }],
      ["too many fields", ["a", 1, 2]],
      ["a field after a gap", { n: 1 }],
      ["NaN", ["a", NaN]],
      ["a wrong type", [1]],
    ];
    for (const [what, p] of prefixes) {
      for (const side of ["gte", "gt", "lte", "lt", "prefix"]) {
        await refused(() => tree.range({ [side]: p }), "KEY_ENCODING", `range ${side} ${what}`);
        await refused(() => tree.keys({ [side]: p }), "KEY_ENCODING", `keys ${side} ${what}`);
        await refused(() => tree.count({ [side]: p }), "KEY_ENCODING", `count ${side} ${what}`);
        await refused(
          () => tree.deleteRange({ [side]: p }),
          "KEY_ENCODING",
          `deleteRange ${side} ${what}`,
        );
      }
      const it = tree.iterator();
      await refused(() => it.seek(p), "KEY_ENCODING", `seek ${what}`);
      it.close();
    }
  });

  test("a key above 65,535 encoded bytes is refused by every write (reads find it absent)", async () => {
    const big = ["x".repeat(65_536), 1];
    for (const [name, call] of calls) {
      if (["tryDelete", "update", "get", "has", "getMany (second key)"].includes(name)) continue;
      if (name.startsWith("transaction")) continue;
      await refused(() => call(big), "KEY_ENCODING", `${name}(a key of 65,536 bytes)`);
    }
    await refused(
      () => {
        const tx = tree.transaction();
        tx.upsert(big, 1);
        return tx.commit();
      },
      "KEY_ENCODING",
      "transaction commit",
    );
    expect(tree.get(big)).toBeUndefined();
    expect(tree.has(big)).toBe(false);
    expect(tree.tryDelete(big)).toBeUndefined();
    expect(tree.update(big, () => 1)).toBeUndefined();
  });

  test("a key of exactly 65,535 encoded bytes is accepted", async () => {
    const { tree: t } = await freshTree();
    const key = ["y".repeat(65_535 - 6), 1]; // "s:" and ":n:" are not stored; str adds a terminator
    const encoded = ks.key.encode(key as never).length;
    const k = ["y".repeat(65_535 - 6 - (encoded - 65_535)), 1];
    expect(ks.key.encode(k as never).length).toBe(65_535);
    t.upsert(k, "ok");
    expect(t.get(k)).toBe("ok");
    k[0] += "y";
    expect(await codeOf(() => t.upsert(k, "no"))).toBe("KEY_ENCODING");
    await t.close();
  });
});

describe("bad values are VALUE_ENCODING and write nothing", () => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const json: [string, unknown][] = [
    ["undefined", undefined],
    ["a function", () => 1],
    ["a symbol", Symbol("v")],
    ["a bigint", 1n],
    ["a nested bigint", { a: 1n }],
    ["a cyclic object", cyclic],
    ["NaN (JSON would store null)", NaN],
    ["Infinity", Infinity],
  ];
  test("json", async () => {
    for (const [what, v] of json) {
      await refused(() => tree.upsert(["a", 1], v), "VALUE_ENCODING", `upsert ${what}`);
      await refused(() => tree.tryAdd(["z", 1], v), "VALUE_ENCODING", `tryAdd ${what}`);
      await refused(
        () => tree.batch([{ put: ["a", 2], value: 1 }, { put: ["a", 1], value: v }]),
        "VALUE_ENCODING",
        `batch ${what}`,
      );
      // (fn returning undefined cancels an update: that is no bad value)
      if (v !== undefined) {
        await refused(() => tree.update(["a", 1], () => v), "VALUE_ENCODING", `update ${what}`);
      }
      await refused(
        () => tree.addOrUpdate(["z", 1], v, () => 1),
        "VALUE_ENCODING",
        `addOrUpdate ${what}`,
      );
      await refused(
        () => tree.transaction().upsert(["a", 1], v),
        "VALUE_ENCODING",
        `transaction ${what}`,
      );
    }
  });

  test("scalar, struct, utf8 and bytes codecs", async () => {
    const cases: [string, unknown, unknown[]][] = [
      ["u32be", 1, [-1, 2 ** 32, 1.5, NaN, "1", 1n, undefined, null]],
      ["i64be", 1n, [2n ** 63n, 1.5, "1", undefined]],
      ["bool", true, [0, "true", undefined, null]],
      ["utf8", "x", [1, undefined, null, "\uD800"]],
      ["bytes", new Uint8Array(1), ["x", [1, 2], undefined, null]],
    ];
    for (const [spec, good, bads] of cases) {
      const k = defineKeyspace({ key: "<u32be>", value: spec as "u32be" });
      const mem = memoryFileSystem();
      const t = await ZoneTree.open({ dir: "/v", keyspace: k, fs: mem, wal: "sync" }) as AnyTree;
      t.upsert(1, good);
      for (const v of bads) {
        expect(await codeOf(() => t.upsert(2, v)), `${spec} ${String(v)}`).toBe("VALUE_ENCODING");
      }
      expect(t.lastOpIndex).toBe(1);
      expect(t.count()).toBe(1);
      await t.close();
    }
    const struct = defineKeyspace({ key: "<u32be>", value: { temp: "f64", n: "u8" } });
    const t = await ZoneTree.open({
      dir: "/s",
      keyspace: struct,
      fs: memoryFileSystem(),
    }) as AnyTree;
    for (
      const v of [
        { temp: 1 },
        { temp: 1, n: 1, extra: 2 },
        { temp: "1", n: 1 },
        { temp: 1, n: 256 },
        null,
        5,
      ]
    ) {
      expect(await codeOf(() => t.upsert(1, v)), JSON.stringify(v)).toBe("VALUE_ENCODING");
    }
    expect(t.count()).toBe(0);
    await t.close();
  });
});

describe("bad options are INVALID_OPTION and write nothing", () => {
  test("write options (ttlMs, expiresAt)", async () => {
    const bad: unknown[] = [
      null,
      1,
      "x",
      [],
      { ttlMs: -1 },
      { ttlMs: NaN },
      { ttlMs: Infinity },
      { ttlMs: "1" },
      { expiresAt: 0 },
      { expiresAt: -5 },
      { expiresAt: NaN },
      { expiresAt: "2030" },
      { expiresAt: 1, ttlMs: 1 },
      { ttl: 5 }, // a typo must not write a record that never expires
    ];
    for (const o of bad) {
      const why = JSON.stringify(o) ?? String(o);
      await refused(() => tree.upsert(["a", 1], 1, o as never), "INVALID_OPTION", `upsert ${why}`);
      await refused(() => tree.tryAdd(["z", 1], 1, o as never), "INVALID_OPTION", `tryAdd ${why}`);
    }
  });

  test("batch ops", async () => {
    const bad: unknown[] = [
      undefined,
      null,
      1,
      "x",
      {},
      [null],
      [1],
      [{}],
      [{ value: 1 }],
      [{ put: ["a", 1], value: 1, del: ["a", 2] }], // which one?
      [{ put: ["a", 1], value: 1, ttl: 5 }],
      [{ put: ["a", 1], value: 1, ttlMs: -1 }],
      [{ put: ["a", 1], value: 1, expiresAt: NaN }],
      [{ del: ["a", 1], value: 1 }],
      [{ put: ["a", 1], value: 1 }, { bogus: true }],
    ];
    for (const ops of bad) {
      await refused(
        () => tree.batch(ops as never),
        "INVALID_OPTION",
        `batch ${JSON.stringify(ops)}`,
      );
    }
    // The message names the op by its index (built only when thrown).
    const ok = { put: ["a", 1], value: 1 };
    expect(() => tree.batch([ok, ok, { put: ["a", 2], value: 1, ttl: 5 }] as never)).toThrow(
      'batch(ops): ops[2]: unknown option "ttl"',
    );
    expect(() => tree.batch([ok, { del: ["a", 1], x: 1 }] as never)).toThrow('batch(ops): ops[1]: unknown option "x"');
  });

  test("range, keys, count, iterator and deleteRange options", async () => {
    const rangeBad: unknown[] = [
      null,
      1,
      "x",
      { foo: 1 },
      { limit: -1 },
      { limit: 1.5 },
      { limit: NaN },
      { limit: "1" },
      { reverse: "yes" },
      { reverse: 1 },
      { snapshot: "true" },
    ];
    for (const o of rangeBad) {
      await refused(() => tree.range(o as never), "INVALID_OPTION", `range ${JSON.stringify(o)}`);
      await refused(() => tree.keys(o as never), "INVALID_OPTION", `keys ${JSON.stringify(o)}`);
    }
    // The messages name the call and the option (built only when thrown).
    expect(() => tree.range({ reverse: "yes" } as never).next()).toThrow(
      "range(options): reverse yes is not a boolean",
    );
    expect(() => tree.keys({ snapshot: 1 } as never).next()).toThrow(
      "keys(options): snapshot 1 is not a boolean",
    );
    expect(() => tree.range({ foo: 1 } as never).next()).toThrow('range(options): unknown option "foo"');
    expect(() => tree.iterator({ includeDeleted: "no" } as never)).toThrow(
      "iterator(options): includeDeleted no is not a boolean",
    );
    expect(() => tree.iterator({ foo: 1 } as never)).toThrow('iterator(options): unknown option "foo"');
    for (const b of [null, 5, "x", { foo: 1 }]) {
      await refused(() => tree.count(b as never), "INVALID_OPTION", `count ${JSON.stringify(b)}`);
    }
    for (const b of [undefined, null, 5, "x", { limit: 1 }, { reverse: true }]) {
      await refused(
        () => tree.deleteRange(b as never),
        "INVALID_OPTION",
        `deleteRange ${JSON.stringify(b)}`,
      );
    }
    for (
      const o of [null, 1, { foo: 1 }, { reverse: "x" }, { snapshot: 1 }, { includeDeleted: "no" }]
    ) {
      await refused(
        () => tree.iterator(o as never),
        "INVALID_OPTION",
        `iterator ${JSON.stringify(o)}`,
      );
    }
  });

  test("getMany, update, addOrUpdate, changes, backup, maintenance and events arguments", async () => {
    await refused(() => tree.getMany(5 as never), "INVALID_OPTION", "getMany(5)");
    await refused(() => tree.getMany(undefined as never), "INVALID_OPTION", "getMany()");
    for (const fn of [undefined, null, 5, "f"]) {
      // Checked before the key is looked up: also for a key that is absent.
      await refused(() => tree.update(["zz", 1], fn as never), "INVALID_OPTION", `update fn ${fn}`);
      await refused(() => tree.update(["a", 1], fn as never), "INVALID_OPTION", `update fn ${fn}`);
      await refused(
        () => tree.addOrUpdate(["zz", 1], 1, fn as never),
        "INVALID_OPTION",
        `addOrUpdate fn ${fn}`,
      );
    }
    for (const since of [-1, NaN, 1.5, "x", 2 ** 60]) {
      await refused(
        async () => {
          for await (const _ of tree.changes(since as never)) { /* drain */ }
        },
        "INVALID_OPTION",
        `changes(${since})`,
      );
    }
    for (const target of [5, "", null]) {
      await refused(
        () => tree.backup(target as never),
        "INVALID_OPTION",
        `backup(${JSON.stringify(target)})`,
      );
    }
    await refused(
      () => tree.backup("/db"),
      "INVALID_OPTION",
      "backup into the tree's own directory",
    );
    for (const [from, to] of [[-1, 0], [NaN, NaN], ["x", 1], [0, 1.5], [undefined, "2"]]) {
      await refused(
        () => tree.maintenance.mergeBottomSegments(from as never, to as never),
        "INVALID_OPTION",
        `mergeBottomSegments(${from}, ${to})`,
      );
    }
    for (
      const [name, listener] of [["nope", () => {}], ["error", 5], [undefined, () => {}], [
        "merge-ended",
        null,
      ]]
    ) {
      expect(await codeOf(() => tree.events.on(name as never, listener as never)), `on(${name})`)
        .toBe("INVALID_OPTION");
      expect(await codeOf(() => tree.events.off(name as never, listener as never)), `off(${name})`)
        .toBe("INVALID_OPTION");
    }
  });

  test("ZoneTree.open: every option, with no directory created", async () => {
    const mem = memoryFileSystem();
    const bad: Record<string, unknown[]> = {
      dir: [undefined, null, "", 5, {}],
      keyspace: [undefined, null, {}, "ks", { identity: "x" }],
      mode: ["opn", 1, null],
      wal: ["fast", true, null],
      readOnly: ["true", 1, null],
      maintenance: ["never", 0],
      fs: [null, 5, {}, { openFile() {} }],
      mutableSegmentMaxItemCount: [0, -1, 1.5, NaN, Infinity, "10", 2e9],
      mutableSegmentMaxBytes: [0, 1023, NaN, 2 ** 41],
      diskSegmentMaxItemCount: [0, NaN, "1"],
      diskSegmentMode: ["multi", null],
      multipartMinItemCount: [0, NaN],
      multipartMaxItemCount: [0, 1.5],
      compression: ["zstd", false],
      sparseStep: [-1, NaN, 1.5],
      blockSizeBytes: [0, 255, 2 ** 27, NaN],
      blockCacheMaxBytes: [-1, NaN],
      repair: ["yes", 1],
      changeFeedRetentionBytes: [-1, NaN, "1"],
    };
    for (const [option, values] of Object.entries(bad)) {
      for (const v of values) {
        const opts: Record<string, unknown> = { dir: "/x", keyspace: ks, fs: mem, [option]: v };
        let thrown: unknown;
        try {
          await ZoneTree.open(opts as never);
        } catch (e) {
          thrown = e;
        }
        const why = `${option}: ${String(v)}`;
        expect((thrown as { code?: string })?.code, why).toBe("INVALID_OPTION");
        expect((thrown as { option?: string }).option, why).toBe(option);
      }
    }
    for (const opts of [undefined, null, 5, "x"]) {
      expect(await codeOf(() => ZoneTree.open(opts as never)), String(opts)).toBe("INVALID_OPTION");
    }
    expect(
      await codeOf(() => ZoneTree.open({ dir: "/x", keyspace: ks, fs: mem, typo: 1 } as never)),
    ).toBe(
      "INVALID_OPTION",
    );
    expect(
      await codeOf(() =>
        ZoneTree.open({
          dir: "/x",
          keyspace: ks,
          fs: mem,
          multipartMinItemCount: 10,
          multipartMaxItemCount: 5,
        })
      ),
    )
      .toBe("INVALID_OPTION");
    expect(mem.stat("/x")).toBeUndefined();
  });

  test("open modes: missing, existing, locked, another keyspace", async () => {
    const mem = memoryFileSystem();
    expect(await codeOf(() => ZoneTree.open({ dir: "/x", keyspace: ks, fs: mem, mode: "open" })))
      .toBe("DATABASE_NOT_FOUND");
    expect(await codeOf(() => ZoneTree.open({ dir: "/x", keyspace: ks, fs: mem, readOnly: true })))
      .toBe("DATABASE_NOT_FOUND");
    const t = await ZoneTree.open({ dir: "/x", keyspace: ks, fs: mem });
    t.upsert(["a", 1], 1);
    expect(await codeOf(() => ZoneTree.open({ dir: "/x", keyspace: ks, fs: mem }))).toBe(
      "DATABASE_LOCKED",
    );
    await t.close();
    const before = files(mem, "/x");
    expect(await codeOf(() => ZoneTree.open({ dir: "/x", keyspace: ks, fs: mem, mode: "create" })))
      .toBe(
        "DATABASE_ALREADY_EXISTS",
      );
    const other = defineKeyspace({ key: "s:<str>:n:<u32be>", value: "utf8" });
    expect(await codeOf(() => ZoneTree.open({ dir: "/x", keyspace: other, fs: mem }))).toBe(
      "COMPARER_MISMATCH",
    );
    expect(files(mem, "/x")).toEqual(before);
  });
});

describe("closed trees, disposed iterators, finished transactions", () => {
  test("every method of a closed tree is CLOSED; close is idempotent", async () => {
    const { tree: t, fs: mem } = await freshTree();
    const it = t.iterator();
    it.next();
    const snap = t.iterator({ snapshot: true });
    const gen = t.range();
    gen.next();
    const tx = t.transaction();
    tx.get(["a", 1]);
    await t.close();
    const before = files(mem, "/db");
    const calls: [string, () => unknown][] = [
      ["upsert", () => t.upsert(["a", 1], 1)],
      ["tryAdd", () => t.tryAdd(["q", 1], 1)],
      ["tryDelete", () => t.tryDelete(["a", 1])],
      ["forceDelete", () => t.forceDelete(["a", 1])],
      ["update", () => t.update(["a", 1], (v: unknown) => v)],
      ["addOrUpdate", () => t.addOrUpdate(["a", 1], 1, (v: unknown) => v)],
      ["deleteRange", () => t.deleteRange({ prefix: ["a"] })],
      ["batch", () => t.batch([{ put: ["a", 1], value: 1 }])],
      ["get", () => t.get(["a", 1])],
      ["getMany", () => t.getMany([["a", 1]])],
      ["has", () => t.has(["a", 1])],
      ["count", () => t.count()],
      ["countFullScan", () => t.countFullScan()],
      ["lastOpIndex", () => t.lastOpIndex],
      ["range", () => t.range()],
      ["keys", () => t.keys()],
      ["iterator", () => t.iterator()],
      ["changes", async () => {
        for await (const _ of t.changes()) { /* drain */ }
      }],
      ["transaction", () => t.transaction()],
      ["flush", () => t.flush()],
      ["stats", () => t.stats()],
      ["backup", () => t.backup("/bk")],
      ["moveMutableSegmentForward", () => t.maintenance.moveMutableSegmentForward()],
      ["merge", () => t.maintenance.merge()],
      ["mergeBottomSegments", () => t.maintenance.mergeBottomSegments()],
      // Iterators, ranges and transactions made before the close.
      ["iterator.next", () => it.next()],
      ["iterator.seek", () => it.seek(["a"])],
      ["iterator.key", () => it.key],
      ["snapshot iterator.next", () => snap.next()],
      ["range in progress", () => gen.next()],
      ["transaction.get", () => tx.get(["a", 1])],
      ["transaction.upsert", () => tx.upsert(["a", 1], 1)],
      ["transaction.commit", () => tx.commit()],
    ];
    for (const [name, call] of calls) expect(await codeOf(call), name).toBe("CLOSED");
    expect(files(mem, "/db")).toEqual(before);
    expect(mem.stat("/bk")).toBeUndefined();
    expect(t.closed).toBe(true);
    await t.close();
    it.close();
    snap.close();
  });

  test("a disposed iterator is CLOSED; so is reading before next()", async () => {
    const it = tree.iterator();
    expect(await codeOf(() => it.key)).toBe("CLOSED");
    expect(await codeOf(() => it.value)).toBe("CLOSED");
    expect(it.next()).toBe(true);
    it.close();
    for (
      const [name, call] of [
        ["next", () => it.next()],
        ["seek", () => it.seek(["a"])],
        ["key", () => it.key],
        ["value", () => it.value],
        ["rawKey", () => it.rawKey],
        ["isDeleted", () => it.isDeleted],
      ] as [string, () => unknown][]
    ) {
      expect(await codeOf(call), name).toBe("CLOSED");
    }
    it.close(); // idempotent
    let escaped: { next(): boolean } | undefined;
    {
      using scoped = tree.iterator({ reverse: true });
      scoped.next();
      escaped = scoped;
    }
    expect(await codeOf(() => escaped!.next())).toBe("CLOSED"); // disposed by \`using\`
  });

  test("a committed, rolled back or conflicted transaction is CLOSED and writes nothing more", async () => {
    const committed = tree.transaction();
    committed.upsert(["a", 1], { i: 1 });
    committed.commit();
    const rolledBack = tree.transaction();
    rolledBack.upsert(["a", 1], "never");
    rolledBack.rollback();
    const conflicted = tree.transaction();
    conflicted.get(["a", 2]);
    conflicted.upsert(["a", 2], "never");
    tree.upsert(["a", 2], { i: 2 });
    await refused(() => conflicted.commit(), "TRANSACTION_CONFLICT", "conflict");
    for (
      const [name, tx] of [["committed", committed], ["rolled back", rolledBack], [
        "conflicted",
        conflicted,
      ]] as const
    ) {
      await refused(() => tx.get(["a", 1]), "CLOSED", `${name} get`);
      await refused(() => tx.upsert(["a", 1], "never"), "CLOSED", `${name} upsert`);
      await refused(() => tx.delete(["a", 1]), "CLOSED", `${name} delete`);
      await refused(() => tx.commit(), "CLOSED", `${name} commit`);
    }
  });

  test("a read-only tree refuses every write with READ_ONLY and changes no file", async () => {
    const { tree: t, fs: mem } = await freshTree();
    await t.close();
    const closedFiles = files(mem, "/db");
    const ro = await ZoneTree.open({
      dir: "/db",
      keyspace: ks,
      fs: mem,
      readOnly: true,
    }) as AnyTree;
    const before = { files: files(mem, "/db"), op: ro.lastOpIndex, count: ro.count() };
    for (
      const [name, call] of [
        ["upsert", () => ro.upsert(["a", 1], 1)],
        ["tryAdd", () => ro.tryAdd(["q", 1], 1)],
        ["tryDelete", () => ro.tryDelete(["a", 1])],
        ["forceDelete", () => ro.forceDelete(["a", 1])],
        ["update", () => ro.update(["a", 1], (v: unknown) => v)],
        ["addOrUpdate", () => ro.addOrUpdate(["a", 1], 1, (v: unknown) => v)],
        ["deleteRange", () => ro.deleteRange({ prefix: ["a"] })],
        ["batch", () => ro.batch([{ put: ["a", 1], value: 1 }])],
        ["transaction", () => ro.transaction()],
        ["moveMutableSegmentForward", () => ro.maintenance.moveMutableSegmentForward()],
        ["merge", () => ro.maintenance.merge()],
        ["mergeBottomSegments", () => ro.maintenance.mergeBottomSegments()],
      ] as [string, () => unknown][]
    ) {
      expect(await codeOf(call), name).toBe("READ_ONLY");
    }
    expect(ro.lastOpIndex).toBe(before.op);
    expect(ro.count()).toBe(before.count);
    expect(files(mem, "/db")).toEqual(before.files);
    await ro.close();
    expect(files(mem, "/db")).toEqual(closedFiles);
  });
});

describe("schema files, directories and permissions", () => {
  let tmp: string;
  beforeAll(() => (tmp = nodeFs.mkdtempSync(`${os.tmpdir()}/zt-bad-input-`)));
  afterAll(() => nodeFs.rmSync(tmp, { recursive: true, force: true }));

  test("a schema file that is not JSON, empty, an array, invalid, missing, a directory: SCHEMA naming the file", async () => {
    const cases: [string, string | undefined][] = [
      ["not-json.json", "{ key: <str> }"],
      ["empty.json", ""],
      ["array.json", "[1, 2]"],
      ["null.json", "null"],
      ["no-key.json", '{ "value": "json" }'],
      ["bad-template.json", '{ "key": "<nope>" }'],
      ["bad-value.json", '{ "key": "<str>", "value": { "temp": "float" } }'],
      ["extra.json", '{ "key": "<str>", "colour": "red" }'],
      ["missing.json", undefined],
    ];
    for (const [name, text] of cases) {
      const path = `${tmp}/${name}`;
      if (text !== undefined) nodeFs.writeFileSync(path, text);
      let thrown: unknown;
      try {
        await loadKeyspace(path);
      } catch (e) {
        thrown = e;
      }
      expect((thrown as { code?: string })?.code, name).toBe("SCHEMA");
      expect((thrown as Error).message, name).toContain(name);
    }
    expect(await codeOf(() => loadKeyspace(tmp))).toBe("SCHEMA"); // a directory
    // A number would be taken as a file descriptor by the runtime's readFile.
    for (const path of [0, 5, undefined, null, ""]) {
      expect(await codeOf(() => loadKeyspace(path as never)), String(path)).toBe("SCHEMA");
    }
    for (const json of [undefined, null, 5, "{}", [], { key: 5 }]) {
      expect(await codeOf(() => parseKeyspaceSchema(json, "x.json")), JSON.stringify(json)).toBe(
        "SCHEMA",
      );
    }
    for (
      const def of [undefined, null, 5, {}, { key: 5 }, { key: "<str>", value: "nope" }, {
        key: "<nope>",
      }]
    ) {
      expect(await codeOf(() => defineKeyspace(def as never)), JSON.stringify(def)).toBe("SCHEMA");
      expect(await codeOf(() => keyspaceFromSpec(def as never)), JSON.stringify(def)).toBe(
        "SCHEMA",
      );
    }
    // A misspelt property would silently fall back to the default value codec.
    expect(await codeOf(() => defineKeyspace({ key: "<str>", vaule: "u32be" } as never))).toBe(
      "SCHEMA",
    );
  });

  test("a dir that is a file is INVALID_OPTION; a dir below a file is IO; neither changes anything", async () => {
    const file = `${tmp}/a-file`;
    nodeFs.writeFileSync(file, "x");
    expect(await codeOf(() => ZoneTree.open({ dir: file, keyspace: ks }))).toBe("INVALID_OPTION");
    expect(await codeOf(() => ZoneTree.open({ dir: `${file}/sub`, keyspace: ks }))).toBe("IO");
    expect(nodeFs.readFileSync(file, "utf8")).toBe("x");
    const mem = memoryFileSystem();
    mem.mkdirp("/m");
    mem.openFile("/m/f", { create: true }).close();
    expect(await codeOf(() => ZoneTree.open({ dir: "/m/f", keyspace: ks, fs: mem }))).toBe(
      "INVALID_OPTION",
    );
    expect(await codeOf(() => ZoneTree.open({ dir: "/m/f/sub", keyspace: ks, fs: mem }))).toBe(
      "IO",
    );
    expect(files(mem, "/m")).toEqual(["/m/f:0"]);
  });

  test("a data directory that cannot be written (EACCES on every open): IO, nothing changed, data intact", async () => {
    const { tree: t, fs: mem } = await freshTree();
    await t.close();
    const before = files(mem, "/db");
    const denied = faultFileSystem(mem, {
      rules: [{ op: "open", code: "EACCES", count: Infinity }],
    });
    let thrown: unknown;
    try {
      await ZoneTree.open({ dir: "/db", keyspace: ks, fs: denied });
    } catch (e) {
      thrown = e;
    }
    expect((thrown as { code?: string })?.code).toBe("IO");
    expect(((thrown as Error).cause as { code?: string })?.code).toBe("EACCES");
    expect(files(mem, "/db")).toEqual(before);
    expect(await codeOf(() => ZoneTree.open({ dir: "/new", keyspace: ks, fs: denied }))).toBe("IO");
    const again = await ZoneTree.open({ dir: "/db", keyspace: ks, fs: mem }) as AnyTree;
    expect(again.count()).toBe(40);
    await again.close();
  });

  test.skipIf(process.getuid?.() === 0)(
    "a read-only data directory (chmod 0500; not as root): IO or read-only open works",
    async () => {
      const dir = `${tmp}/ro`;
      const t = await ZoneTree.open({ dir, keyspace: ks, wal: "sync" });
      t.upsert(["a", 1], 1);
      await t.close();
      nodeFs.chmodSync(dir, 0o500);
      try {
        expect(await codeOf(() => ZoneTree.open({ dir, keyspace: ks }))).toBe("IO");
        expect(await codeOf(() => ZoneTree.open({ dir: `${dir}/sub`, keyspace: ks }))).toBe("IO");
      } finally {
        nodeFs.chmodSync(dir, 0o700);
      }
      const again = await ZoneTree.open({ dir, keyspace: ks });
      expect(again.get(["a", 1])).toBe(1);
      await again.close();
    },
  );
});

describe("systems", () => {
  test("PartitionedTree.open, timeBucket, Replicator.open and replicate refuse bad arguments", async () => {
    const mem = memoryFileSystem();
    const base = { dir: "/p", keyspace: ks, fs: mem, partitionBy: { field: "s" } };
    for (
      const opts of [
        undefined,
        null,
        { ...base, partitionBy: { field: "nope" } },
        { ...base, partitionBy: undefined },
        { ...base, partitionBy: { field: "n", bucket: "week" } },
        { ...base, dir: undefined },
        { ...base, dir: 5 },
        { ...base, treeOptions: { wal: "fast" } }, // every partition would fail at its first write
        { ...base, treeOptions: { typo: 1 } },
      ]
    ) {
      expect(await codeOf(() => PartitionedTree.open(opts as never)), JSON.stringify(opts)).toBe(
        "INVALID_OPTION",
      );
    }
    expect(mem.stat("/p")).toBeUndefined();
    for (
      const [ms, bucket] of [[NaN, "day"], [-1, "day"], [1e20, "day"], [0, "week"], [0, undefined]]
    ) {
      expect(await codeOf(() => timeBucket(ms as number, bucket as never)), `${ms} ${bucket}`).toBe(
        "INVALID_OPTION",
      );
    }
    const state = await ZoneTree.open({ dir: "/state", keyspace: replicaStateKeyspace, fs: mem });
    for (const [target, st] of [[undefined, state], [tree, undefined], [tree, tree], [5, state]]) {
      expect(await codeOf(() => Replicator.open(target as never, st as never))).toBe(
        "INVALID_OPTION",
      );
    }
    const replica = await Replicator.open(tree, state);
    for (const [source, r] of [[undefined, replica], [tree, undefined], [tree, {}]]) {
      expect(await codeOf(() => replicate(source as never, r as never))).toBe("INVALID_OPTION");
    }
    expect(await codeOf(() => replicate(tree, replica, { batchSize: 0 }))).toBe("INVALID_OPTION");
    await state.close();
  });
});
