/** `repair: true` cuts a write-ahead log at a damaged frame instead of refusing to open. */
import { expect, test } from "bun:test";
import { CorruptionError, defineKeyspace, memoryFileSystem, ZoneTree } from "../../mod.ts";

test("a bit flip in the middle of a WAL is CorruptionError, and with repair the tree opens with the records before it", async () => {
  const ks = defineKeyspace({ key: "<u32be>", value: "u32be" });
  const fs = memoryFileSystem();
  const tree = await ZoneTree.open({ dir: "/db", keyspace: ks, fs, wal: "sync" });
  for (let i = 0; i < 100; i++) tree.upsert(i, i);
  await tree.close();
  const wal = fs.list("/db").find((n) => n.includes("wal"))!;
  const bytes = fs.readFile(`/db/${wal}`);
  const at = Math.floor(bytes.length / 2);
  const h = fs.openFile(`/db/${wal}`);
  h.write(new Uint8Array([bytes[at] ^ 0x40]), at);
  h.sync();
  h.close();
  let error: unknown;
  try {
    await ZoneTree.open({ dir: "/db", keyspace: ks, fs });
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(CorruptionError);
  expect((error as CorruptionError).file).toBe(`/db/${wal}`);
  const repaired = await ZoneTree.open({ dir: "/db", keyspace: ks, fs, repair: true });
  const events: unknown[] = [];
  repaired.events.on("error", (e) => events.push(e));
  expect(events.length).toBe(1);
  const n = repaired.count();
  expect(n).toBeGreaterThan(30);
  expect(n).toBeLessThan(100);
  expect([...repaired.keys()]).toEqual(Array.from({ length: n }, (_, i) => i));
  repaired.upsert(500, 500);
  await repaired.close();
  const again = await ZoneTree.open({ dir: "/db", keyspace: ks, fs });
  expect(again.count()).toBe(n + 1);
  await again.close();
});
