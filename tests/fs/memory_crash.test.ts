// Crash semantics of memoryFileSystem(): only synced bytes and synced directory entries survive.
import { expect, test } from "bun:test";
import { memoryFileSystem } from "../../src/fs/memory_file_system.ts";

const bytes = (...xs: number[]) => new Uint8Array(xs);

function fileWith(
  fs = memoryFileSystem(),
  content: number[],
  opts: { sync?: boolean; syncDir?: boolean } = {},
) {
  fs.mkdirp("/d");
  const f = fs.openFile("/d/f", { create: true });
  f.append(bytes(...content));
  if (opts.sync) f.sync();
  if (opts.syncDir) fs.syncDir("/d");
  return { fs, f };
}

test("crash keeps synced bytes and drops unsynced appends", () => {
  const { fs, f } = fileWith(undefined, [1, 2, 3], { sync: true, syncDir: true });
  f.append(bytes(4, 5));
  fs.crash();
  expect([...fs.readFile("/d/f")]).toEqual([1, 2, 3]);
});

test("crash drops a file whose directory entry was never synced, even if its bytes were", () => {
  const { fs } = fileWith(undefined, [1], { sync: true });
  fs.crash();
  expect(fs.stat("/d/f")).toBeUndefined();
  expect(fs.list("/d")).toEqual([]);
});

test("crash keeps an entry synced before its bytes were: the file is empty", () => {
  const { fs } = fileWith(undefined, [1, 2], { syncDir: true });
  fs.crash();
  expect(fs.stat("/d/f")).toEqual({ size: 0, isDirectory: false });
});

test("crash undoes unsynced overwrites and truncations of synced bytes", () => {
  const { fs, f } = fileWith(undefined, [1, 2, 3], { sync: true, syncDir: true });
  f.write(bytes(9), 0);
  f.truncate(1);
  fs.crash();
  expect([...fs.readFile("/d/f")]).toEqual([1, 2, 3]);
});

test("crash undoes unsynced renames and removals", () => {
  const fs = memoryFileSystem();
  fs.mkdirp("/d");
  for (const n of ["a", "b"]) {
    const f = fs.openFile(`/d/${n}`, { create: true });
    f.append(new TextEncoder().encode(n));
    f.sync();
    f.close();
  }
  fs.syncDir("/d");
  fs.rename("/d/a", "/d/b");
  fs.remove("/d/b2");
  fs.openFile("/d/c", { create: true }).close();
  fs.crash();
  expect(fs.list("/d")).toEqual(["a", "b"]);
  expect(new TextDecoder().decode(fs.readFile("/d/b"))).toBe("b");
  // The same changes, synced, survive.
  fs.rename("/d/a", "/d/b");
  fs.syncDir("/d");
  fs.crash();
  expect(fs.list("/d")).toEqual(["b"]);
  expect(new TextDecoder().decode(fs.readFile("/d/b"))).toBe("a");
});

test("a removed file comes back after a crash with its synced bytes", () => {
  const { fs, f } = fileWith(undefined, [1, 2], { sync: true, syncDir: true });
  f.append(bytes(3));
  fs.remove("/d/f");
  fs.crash();
  expect([...fs.readFile("/d/f")]).toEqual([1, 2]);
});

test("handles opened before a crash throw afterwards; locks become stale", () => {
  const { fs, f } = fileWith(undefined, [1], { sync: true, syncDir: true });
  const lock = fs.lock("/d/lock");
  fs.syncDir("/d");
  fs.crash();
  expect(() => f.append(bytes(2))).toThrow(/crash/);
  expect(() => f.size()).toThrow();
  const again = fs.lock("/d/lock"); // the old holder "died"
  lock.release(); // a dead holder's release must not free the new lock
  expect(() => fs.lock("/d/lock")).toThrow(expect.objectContaining({ code: "DATABASE_LOCKED" }));
  again.release();
});

test("crash with keepUnsynced random keeps a seeded prefix of unsynced appends", () => {
  const lengths = new Set<number>();
  for (let seed = 0; seed < 30; seed++) {
    const { fs, f } = fileWith(undefined, [1, 2], { sync: true, syncDir: true });
    f.append(bytes(3, 4, 5, 6, 7, 8));
    const twin = fs.clone();
    fs.crash({ keepUnsynced: "random", seed });
    twin.crash({ keepUnsynced: "random", seed });
    const got = [...fs.readFile("/d/f")];
    expect(got).toEqual([...twin.readFile("/d/f")]);
    expect(got).toEqual([1, 2, 3, 4, 5, 6, 7, 8].slice(0, got.length));
    expect(got.length).toBeGreaterThanOrEqual(2);
    lengths.add(got.length);
  }
  expect(lengths.size).toBeGreaterThan(3);
});

test("after a crash, kept bytes are durable and the file grows from there", () => {
  const { fs, f } = fileWith(undefined, [1], { sync: true, syncDir: true });
  f.append(bytes(2, 3));
  fs.crash({ keepUnsynced: "random", seed: 1 });
  const kept = fs.readFile("/d/f").length;
  const g = fs.openFile("/d/f");
  g.append(bytes(9));
  fs.crash();
  expect(fs.readFile("/d/f").length).toBe(kept);
});

test("clone is a deep copy with shared hard links; totalBytes counts links once", () => {
  const { fs, f } = fileWith(undefined, [1, 2, 3], { sync: true, syncDir: true });
  fs.link("/d/f", "/d/g");
  expect(fs.totalBytes()).toBe(3);
  const copy = fs.clone();
  f.append(bytes(4));
  expect(copy.readFile("/d/f").length).toBe(3);
  const h = copy.openFile("/d/g");
  h.append(bytes(7));
  expect([...copy.readFile("/d/f")]).toEqual([1, 2, 3, 7]);
  expect(fs.totalBytes()).toBe(4);
  expect(copy.totalBytes()).toBe(4);
});

test("syncing after every append keeps cost linear (append-only fast path)", () => {
  const fs = memoryFileSystem();
  const f = fs.openFile("/w", { create: true });
  const chunk = new Uint8Array(100).fill(5);
  const t0 = performance.now();
  for (let i = 0; i < 20_000; i++) {
    f.append(chunk);
    f.sync();
  }
  expect(performance.now() - t0).toBeLessThan(2000);
  fs.syncDir("/");
  fs.crash();
  expect(fs.readFile("/w").length).toBe(2_000_000);
});

test("syncAsync takes effect when it resolves; a crash before that drops the bytes", async () => {
  const { fs, f } = fileWith(undefined, [1], { sync: true, syncDir: true });
  f.append(bytes(2));
  const pending = f.syncAsync();
  fs.crash();
  await expect(pending).rejects.toMatchObject({ code: "EBADF" });
  expect([...fs.readFile("/d/f")]).toEqual([1]);
  const g = fs.openFile("/d/f");
  g.append(bytes(3));
  await g.syncAsync();
  fs.crash();
  expect([...fs.readFile("/d/f")]).toEqual([1, 3]);
});
