/** Oversized keys and values are refused with typed errors, before anything is written. */
import { expect, test } from "bun:test";
import { defineKeyspace, memoryFileSystem, ZoneTree } from "../../mod.ts";

test("a key above 65,535 bytes is KeyEncodingError and a value above 64 MiB is ValueEncodingError; nothing is written", async () => {
  const ks = defineKeyspace({ key: "<bytes>", value: "bytes" });
  const tree = await ZoneTree.open({ dir: "/db", keyspace: ks, fs: memoryFileSystem() });
  const before = tree.lastOpIndex;
  expect(() => tree.upsert(new Uint8Array(70_000), new Uint8Array(1))).toThrow(
    expect.objectContaining({ code: "KEY_ENCODING" }),
  );
  expect(() => tree.upsert(new Uint8Array(1), new Uint8Array(64 * 1024 * 1024 + 1))).toThrow(
    expect.objectContaining({ code: "VALUE_ENCODING" }),
  );
  expect(() => tree.batch([{ put: new Uint8Array(1), value: new Uint8Array(1) }, { del: new Uint8Array(70_000) }]))
    .toThrow(expect.objectContaining({ code: "KEY_ENCODING" }));
  expect(tree.lastOpIndex).toBe(before);
  expect(tree.count()).toBe(0);
  tree.upsert(new Uint8Array(65_000).fill(1), new Uint8Array(1000)); // 65,002 bytes encoded
  expect(tree.count()).toBe(1);
  await tree.close();
});
