// The FileSystem contract, run against both providers: local files (a temp dir) and memory.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import { type FileSystem, joinPath } from "../../src/fs/file_system.ts";
import { localFileSystem } from "../../src/fs/local_file_system.ts";
import { memoryFileSystem } from "../../src/fs/memory_file_system.ts";

const providers: [string, () => { fs: FileSystem; dir: string; cleanup: () => void }][] = [
  ["local", () => {
    const dir = nodeFs.mkdtempSync(joinPath(os.tmpdir(), "zt-fs-"));
    return {
      fs: localFileSystem(),
      dir,
      cleanup: () => nodeFs.rmSync(dir, { recursive: true, force: true }),
    };
  }],
  ["memory", () => {
    const fs = memoryFileSystem();
    fs.mkdirp("/t");
    return { fs, dir: "/t", cleanup: () => {} };
  }],
];

const bytes = (...xs: number[]) => new Uint8Array(xs);

for (const [name, make] of providers) {
  describe(`${name} file system`, () => {
    let fs: FileSystem;
    let dir: string;
    let cleanup: () => void;
    beforeEach(() => ({ fs, dir, cleanup } = make()));
    afterEach(() => cleanup());
    const p = (n: string) => joinPath(dir, n);

    test("openFile creates, appends, reads back and tracks size", () => {
      const f = fs.openFile(p("a"), { create: true });
      expect(f.size()).toBe(0);
      f.append(bytes(1, 2, 3));
      f.append(bytes(4));
      expect(f.size()).toBe(4);
      const buf = new Uint8Array(10);
      expect(f.read(buf, 1)).toBe(3);
      expect([...buf.subarray(0, 3)]).toEqual([2, 3, 4]);
      expect(f.read(buf, 1, 2)).toBe(2);
      expect(f.read(buf, 10)).toBe(0);
      f.sync();
      f.close();
      f.close(); // idempotent
      expect([...fs.readFile(p("a"))]).toEqual([1, 2, 3, 4]);
      expect(fs.stat(p("a"))).toEqual({ size: 4, isDirectory: false });
    });

    test("positional write extends, overwrites and append continues at the end", () => {
      const f = fs.openFile(p("a"), { create: true });
      f.write(bytes(9, 9), 3);
      expect(f.size()).toBe(5);
      f.write(bytes(7), 0);
      f.append(bytes(5));
      expect([...fs.readFile(p("a"))]).toEqual([7, 0, 0, 9, 9, 5]);
      f.truncate(2);
      expect(f.size()).toBe(2);
      f.append(bytes(8));
      expect([...fs.readFile(p("a"))]).toEqual([7, 0, 8]);
      f.close();
    });

    test("reopening sees the size; truncate option empties", async () => {
      const f = fs.openFile(p("a"), { create: true });
      f.append(bytes(1, 2));
      await f.syncAsync();
      f.close();
      const g = fs.openFile(p("a"));
      expect(g.size()).toBe(2);
      g.append(bytes(3));
      g.close();
      expect([...fs.readFile(p("a"))]).toEqual([1, 2, 3]);
      fs.openFile(p("a"), { create: true, truncate: true }).close();
      expect(fs.stat(p("a"))!.size).toBe(0);
    });

    test("openFile fails with ENOENT when missing and EEXIST when exclusive", () => {
      expect(() => fs.openFile(p("missing"))).toThrow(expect.objectContaining({ code: "ENOENT" }));
      fs.openFile(p("a"), { create: true }).close();
      expect(() => fs.openFile(p("a"), { create: true, exclusive: true })).toThrow(
        expect.objectContaining({ code: "EEXIST" }),
      );
    });

    test("readOnly handle reads but does not write", () => {
      const f = fs.openFile(p("a"), { create: true });
      f.append(bytes(1));
      f.close();
      const r = fs.openFile(p("a"), { readOnly: true });
      expect(r.size()).toBe(1);
      expect(() => r.append(bytes(2))).toThrow();
      r.close();
    });

    test("stat, list, mkdirp, rename, remove, removeDir and syncDir", () => {
      expect(fs.stat(p("nope"))).toBeUndefined();
      fs.mkdirp(p("x/y"));
      fs.mkdirp(p("x/y"));
      expect(fs.stat(p("x"))!.isDirectory).toBe(true);
      fs.openFile(p("b"), { create: true }).close();
      const a = fs.openFile(p("a"), { create: true });
      a.append(bytes(1));
      a.close();
      expect(fs.list(dir)).toEqual(["a", "b", "x"]);
      fs.rename(p("a"), p("b")); // replaces b
      expect(fs.list(dir)).toEqual(["b", "x"]);
      expect([...fs.readFile(p("b"))]).toEqual([1]);
      fs.rename(p("b"), p("x/y/c"));
      expect(fs.list(p("x/y"))).toEqual(["c"]);
      fs.syncDir(dir);
      fs.syncDir(p("x/y"));
      fs.remove(p("x/y/c"));
      fs.remove(p("x/y/c")); // already gone: no error
      fs.removeDir(p("x"));
      fs.removeDir(p("x"));
      expect(fs.list(dir)).toEqual([]);
      expect(() => fs.rename(p("nope"), p("z"))).toThrow(
        expect.objectContaining({ code: "ENOENT" }),
      );
    });

    test("link makes a second name with the same content and refuses an existing target", () => {
      const f = fs.openFile(p("a"), { create: true });
      f.append(bytes(1, 2));
      f.sync();
      f.close();
      fs.link(p("a"), p("b"));
      fs.remove(p("a"));
      expect([...fs.readFile(p("b"))]).toEqual([1, 2]);
      fs.openFile(p("c"), { create: true }).close();
      expect(() => fs.link(p("b"), p("c"))).toThrow(expect.objectContaining({ code: "EEXIST" }));
    });

    test("lock is exclusive until released", () => {
      const lock = fs.lock(p("lock"));
      expect(() => fs.lock(p("lock"))).toThrow(
        expect.objectContaining({ code: "DATABASE_LOCKED" }),
      );
      lock.release();
      lock.release();
      expect(fs.stat(p("lock"))).toBeUndefined();
      fs.lock(p("lock")).release();
    });

    test("a large file round-trips", () => {
      const f = fs.openFile(p("big"), { create: true });
      const chunk = new Uint8Array(100_000).map((_, i) => i * 7);
      for (let i = 0; i < 30; i++) f.append(chunk);
      f.sync();
      expect(f.size()).toBe(3_000_000);
      const back = new Uint8Array(100_000);
      expect(f.read(back, 2_900_000)).toBe(100_000);
      expect(back).toEqual(chunk);
      f.close();
    });
  });
}
