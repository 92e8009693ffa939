// I/O faults while writing and reading disk segments: every provider error surfaces as IOError
// (code "IO") naming the file, a failed write leaves no file behind, and a crash before the
// writer's sync loses the unsynced file rather than leaving a readable half.
import { expect, test } from "bun:test";
import { IOError } from "../../src/api/errors.ts";
import { BlockCache } from "../../src/disk/block_cache.ts";
import { dataFileName, multipartFileName } from "../../src/disk/format.ts";
import { MultipartWriter, writeMultipartSegment } from "../../src/disk/multipart.ts";
import { openDiskSegment } from "../../src/disk/segment_reader.ts";
import { DiskSegmentWriter, writeDiskSegment } from "../../src/disk/segment_writer.ts";
import { faultFileSystem } from "../../src/fs/fault_file_system.ts";
import { memoryFileSystem } from "../../src/fs/memory_file_system.ts";
import { compareBytes } from "../../src/util/bytes.ts";
import { Prng } from "../../src/util/prng.ts";
import { checkScans, genRecords, pullFrom } from "./helpers.ts";

const opts = { compare: compareBytes, compression: "lz4" as const, blockSizeBytes: 512 };

for (const op of ["write", "sync", "open"] as const) {
  test(`a failing ${op} while writing is an IOError naming the file, and no file is left`, () => {
    const mem = memoryFileSystem();
    mem.mkdirp("/db");
    const fs = faultFileSystem(mem, { rules: [{ op, path: "seg-", nth: op === "write" ? 2 : 1 }] });
    const recs = genRecords(new Prng(1), 3000, {});
    let err: unknown;
    try {
      writeDiskSegment(fs, "/db", 1, pullFrom(recs), opts);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(IOError);
    expect((err as IOError).code).toBe("IO");
    expect((err as IOError).message).toContain(dataFileName(1));
    expect(mem.list("/db")).toEqual([]);
  });
}

test("a closed segment refuses reads (ClosedError) and reopens fine", () => {
  const mem = memoryFileSystem();
  mem.mkdirp("/db");
  const recs = genRecords(new Prng(2), 2000, {});
  writeDiskSegment(mem, "/db", 1, pullFrom(recs), opts);
  const fs = faultFileSystem(mem);
  const seg = openDiskSegment(fs, "/db", 1, compareBytes, new BlockCache(0));
  seg.close();
  expect(() => seg.cursor(false).next()).toThrow("closed");
  const again = openDiskSegment(fs, "/db", 1, compareBytes, new BlockCache(0));
  checkScans(again, recs);
  again.close();
});

test("finishAsync syncs: after syncDir the segment survives a crash", async () => {
  const fs = memoryFileSystem();
  fs.mkdirp("/db");
  const recs = genRecords(new Prng(3), 500, {});
  const w = new DiskSegmentWriter(fs, "/db", 4, opts);
  for (const r of recs) w.add(r);
  const info = await w.finishAsync();
  expect(info.recordCount).toBe(recs.length);
  // The writer syncs the file; making its name durable is the engine's syncDir.
  fs.syncDir("/db");
  fs.crash();
  const seg = openDiskSegment(fs, "/db", info, compareBytes, new BlockCache(0));
  checkScans(seg, recs);
  seg.close();
});

test("a crash before the writer finishes leaves no readable segment", () => {
  const fs = memoryFileSystem();
  fs.mkdirp("/db");
  fs.syncDir("/db");
  const recs = genRecords(new Prng(4), 3000, {});
  const w = new DiskSegmentWriter(fs, "/db", 5, opts);
  for (const r of recs.slice(0, 2000)) w.add(r);
  fs.crash();
  const left = fs.list("/db");
  if (left.length > 0) {
    expect(() => openDiskSegment(fs, "/db", 5, compareBytes, new BlockCache(0))).toThrow();
  }
});

test("MultipartWriter.abort removes every part it wrote", () => {
  const fs = memoryFileSystem();
  fs.mkdirp("/db");
  let next = 1;
  const w = new MultipartWriter(fs, "/db", {
    ...opts,
    allocateId: () => next++,
    partMinItemCount: 100,
    partMaxItemCount: 200,
  });
  for (const r of genRecords(new Prng(5), 700, {})) w.add(r);
  expect(fs.list("/db").length).toBe(4);
  w.abort();
  expect(fs.list("/db")).toEqual([]);
});

test("a failing descriptor write removes the parts written for it", () => {
  const mem = memoryFileSystem();
  mem.mkdirp("/db");
  const fs = faultFileSystem(mem, { rules: [{ op: "open", path: ".multi" }] });
  let next = 1;
  expect(() =>
    writeMultipartSegment(fs, "/db", 50, pullFrom(genRecords(new Prng(6), 500, {})), {
      ...opts,
      allocateId: () => next++,
      partMinItemCount: 100,
      partMaxItemCount: 200,
    })
  ).toThrow(IOError);
  expect(mem.list("/db").filter((n) => n !== multipartFileName(50))).toEqual([]);
});
