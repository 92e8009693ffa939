// faultFileSystem(): deterministic injected faults on top of another provider.
import { expect, test } from "bun:test";
import { faultFileSystem } from "../../src/fs/fault_file_system.ts";
import { memoryFileSystem } from "../../src/fs/memory_file_system.ts";

const buf = (n: number) => new Uint8Array(n).fill(1);

test("the nth matching sync fails and later ones pass", async () => {
  const fs = faultFileSystem(memoryFileSystem(), { rules: [{ op: "sync", path: "wal", nth: 2 }] });
  const f = fs.openFile("/x.wal", { create: true });
  const other = fs.openFile("/meta", { create: true });
  other.sync();
  f.sync();
  expect(() => f.sync()).toThrow(expect.objectContaining({ code: "EIO", injected: true }));
  f.sync();
  await f.syncAsync();
  expect(fs.injectedCount).toBe(1);
});

test("syncAsync rejects when its rule fires", async () => {
  const fs = faultFileSystem(memoryFileSystem(), { rules: [{ op: "sync", count: Infinity }] });
  const f = fs.openFile("/a", { create: true });
  await expect(f.syncAsync()).rejects.toMatchObject({ code: "EIO" });
});

test("rename, open, remove, syncDir and link rules match by regex", () => {
  const mem = memoryFileSystem();
  const fs = faultFileSystem(mem, {
    rules: [
      { op: "open", path: /\.tmp$/ },
      { op: "rename", code: "EXDEV" },
      { op: "remove" },
      { op: "syncDir" },
      { op: "link" },
    ],
  });
  expect(() => fs.openFile("/a.tmp", { create: true })).toThrow(/injected/);
  fs.openFile("/a.tmp", { create: true }).close();
  expect(() => fs.rename("/a.tmp", "/a")).toThrow(expect.objectContaining({ code: "EXDEV" }));
  fs.rename("/a.tmp", "/a");
  expect(() => fs.remove("/a")).toThrow();
  expect(() => fs.syncDir("/")).toThrow();
  expect(() => fs.link("/a", "/b")).toThrow();
  fs.link("/a", "/b");
  expect(mem.list("/")).toEqual(["a", "b"]);
});

test("a short write stores a strict prefix, then throws; same seed, same prefix", () => {
  const lengths: number[] = [];
  for (let run = 0; run < 2; run++) {
    const mem = memoryFileSystem();
    const fs = faultFileSystem(mem, { rules: [{ op: "write", nth: 2, short: true }], seed: 7 });
    const f = fs.openFile("/a", { create: true });
    f.append(buf(10));
    expect(() => f.append(buf(100))).toThrow(/injected/);
    const size = mem.stat("/a")!.size;
    expect(size).toBeGreaterThanOrEqual(10);
    expect(size).toBeLessThan(110);
    lengths.push(size);
  }
  expect(lengths[0]).toBe(lengths[1]);
});

test("ENOSPC after a byte budget: the crossing write is partial, later writes fail", () => {
  const mem = memoryFileSystem();
  const fs = faultFileSystem(mem, { enospcAfterBytes: 25 });
  const f = fs.openFile("/a", { create: true });
  f.append(buf(10));
  f.write(buf(10), 10);
  expect(() => f.append(buf(10))).toThrow(expect.objectContaining({ code: "ENOSPC" }));
  expect(mem.stat("/a")!.size).toBe(25);
  expect(() => f.append(buf(1))).toThrow(expect.objectContaining({ code: "ENOSPC" }));
  fs.disarm();
  f.append(buf(1));
  expect(fs.bytesWritten).toBe(1);
});
