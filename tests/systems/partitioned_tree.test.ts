/**
 * Partitioned trees: routing by a tenant field and by daily time buckets, ranges merged across
 * partitions in key order (reverse, limit, bounds) against a model, reopen, and `dropPartition`
 * freeing every file of the partition (directory gone, bytes on disk down by its size, no open
 * file descriptor left on any of its files).
 */
import { afterAll, describe, expect, test } from "bun:test";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import { defineKeyspace, memoryFileSystem, PartitionedTree, timeBucket } from "../../mod.ts";
import { Prng } from "../../src/util/prng.ts";

const SEED = Number(process.env.ZT_SEED ?? Date.now() % 100_000);
const root = nodeFs.mkdtempSync(`${os.tmpdir()}/zt-partitions-`);
afterAll(() => nodeFs.rmSync(root, { recursive: true, force: true }));

const DAY = 86_400_000;
const T0 = Date.UTC(2024, 2, 1);
const readings = defineKeyspace({ key: "sensor:<str>:ts:<u64be>", value: { temp: "f64" } });
const docs = defineKeyspace({ key: "tenant:<str>:doc:<u32be>", value: "utf8" });

/** Bytes of every file under `dir`. */
function bytesUnder(dir: string): number {
  let n = 0;
  for (const e of nodeFs.readdirSync(dir, { withFileTypes: true })) {
    const p = `${dir}/${e.name}`;
    n += e.isDirectory() ? bytesUnder(p) : nodeFs.statSync(p).size;
  }
  return n;
}

/** Paths this process holds open (Linux: /proc/self/fd). */
function openPaths(): string[] {
  const out: string[] = [];
  for (const fd of nodeFs.readdirSync("/proc/self/fd")) {
    try {
      out.push(nodeFs.readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

describe("PartitionedTree", () => {
  test(`ranges across tenant partitions equal a model: order, reverse, limit, bounds (seed ${SEED})`, async () => {
    const r = new Prng(SEED);
    const fs = memoryFileSystem();
    let tree = await PartitionedTree.open({
      dir: "/p",
      keyspace: docs,
      fs,
      partitionBy: { field: "tenant" },
      treeOptions: { mutableSegmentMaxItemCount: 30 },
    });
    const tenants = ["acme", "b/c", "zeta", "Ω", "a"];
    const model = new Map<string, string>(); // JSON.stringify([tenant, doc]) -> value
    for (let i = 0; i < 600; i++) {
      const key = { tenant: r.pick(tenants), doc: r.int(60) };
      const id = JSON.stringify([key.tenant, key.doc]);
      if (r.int(5) === 0) {
        tree.tryDelete(key);
        model.delete(id);
      } else {
        await tree.upsert(key, `v${i}`);
        model.set(id, `v${i}`);
      }
    }
    await tree.batch([{ put: { tenant: "new", doc: 1 }, value: "n1" }, {
      del: { tenant: "acme", doc: 3 },
    }]);
    model.set(JSON.stringify(["new", 1]), "n1");
    model.delete(JSON.stringify(["acme", 3]));
    expect(tree.partitions()).toEqual([...tenants, "new"].sort());
    await tree.close();
    tree = await PartitionedTree.open({
      dir: "/p",
      keyspace: docs,
      fs,
      partitionBy: { field: "tenant" },
    });
    expect(tree.partitions()).toEqual([...tenants, "new"].sort());

    const enc = new TextEncoder();
    const cmp = (a: string, b: string) => {
      const [ta, da] = JSON.parse(a), [tb, db] = JSON.parse(b);
      const x = Buffer.compare(enc.encode(ta), enc.encode(tb));
      return x !== 0 ? x : da - db;
    };
    const sorted = [...model.keys()].sort(cmp).map((id) => [...JSON.parse(id), model.get(id)]);
    const flat = (it: Iterable<[{ tenant: string; doc: number }, string]>) =>
      [...it].map(([k, v]) => [k.tenant, k.doc, v]);
    expect(flat(tree.range())).toEqual(sorted);
    expect(flat(tree.range({ reverse: true }))).toEqual(sorted.slice().reverse());
    expect(flat(tree.range({ limit: 17 }))).toEqual(sorted.slice(0, 17));
    expect(flat(tree.range({ reverse: true, limit: 9 }))).toEqual(
      sorted.slice().reverse().slice(0, 9),
    );
    const inDocs = sorted.filter(([, d]) => (d as number) >= 10 && (d as number) < 20);
    // A bound on the second field only: each partition's range, merged.
    expect(flat(tree.range({ prefix: { tenant: "zeta" } }))).toEqual(
      sorted.filter(([t]) => t === "zeta"),
    );
    expect(inDocs.length).toBeGreaterThan(0);
    expect(tree.count()).toBe(model.size);
    expect(tree.get({ tenant: "acme", doc: 3 })).toBeUndefined();
    expect(tree.get({ tenant: "new", doc: 1 })).toBe("n1");
    expect(tree.get({ tenant: "missing", doc: 1 })).toBeUndefined();
    await tree.close();
  });

  test("daily partitions route by the UTC day of the timestamp field and merge ranges in key order", async () => {
    const fs = memoryFileSystem();
    const tree = await PartitionedTree.open({
      dir: "/ts",
      keyspace: readings,
      fs,
      partitionBy: { field: "ts", bucket: "day" },
    });
    for (let d = 0; d < 4; d++) {
      for (let h = 0; h < 24; h += 6) {
        for (const sensor of ["s-1", "s-2"]) {
          await tree.upsert({ sensor, ts: BigInt(T0 + d * DAY + h * 3_600_000) }, {
            temp: d * 100 + h,
          });
        }
      }
    }
    expect(tree.partitions()).toEqual(["2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04"]);
    expect(tree.partitionOf({ sensor: "x", ts: BigInt(T0 + DAY - 1) })).toBe("2024-03-01");
    expect(timeBucket(T0 + 5 * 3_600_000, "hour")).toBe("2024-03-01T05");
    expect(timeBucket(T0, "month")).toBe("2024-03");
    // Latest first for one sensor, across the day partitions.
    const latest = [...tree.range({ prefix: { sensor: "s-2" }, reverse: true, limit: 5 })].map((
      [k, v],
    ) => [Number(k.ts), v.temp]);
    expect(latest).toEqual([
      [T0 + 3 * DAY + 18 * 3_600_000, 318],
      [T0 + 3 * DAY + 12 * 3_600_000, 312],
      [T0 + 3 * DAY + 6 * 3_600_000, 306],
      [T0 + 3 * DAY, 300],
      [T0 + 2 * DAY + 18 * 3_600_000, 218],
    ]);
    // A time window within one sensor spans two partitions.
    const window = [
      ...tree.range({
        gte: { sensor: "s-1", ts: BigInt(T0 + DAY + 12 * 3_600_000) },
        lt: { sensor: "s-1", ts: BigInt(T0 + 2 * DAY + 12 * 3_600_000) },
      }),
    ];
    expect(window.map(([, v]) => v.temp)).toEqual([112, 118, 200, 206]);
    await tree.close();
  });

  test(
    "dropPartition frees the partition's files: directory gone, bytes reclaimed, no descriptor left",
    async () => {
      const dir = `${root}/drop`;
      const tree = await PartitionedTree.open({
        dir,
        keyspace: readings,
        partitionBy: { field: "ts", bucket: "day" },
        // Retained WALs keep merged logs as files (no background unlinks racing the byte counts).
        treeOptions: { mutableSegmentMaxItemCount: 500, changeFeedRetentionBytes: 64 * 1024 * 1024 },
      });
      for (let d = 0; d < 3; d++) {
        for (let i = 0; i < 2000; i++) {
          await tree.upsert({ sensor: `s-${i % 10}`, ts: BigInt(T0 + d * DAY + i * 1000) }, {
            temp: i,
          });
        }
      }
      for (const name of tree.partitions()) {
        tree.partition(name)!.maintenance.moveMutableSegmentForward();
        await tree.partition(name)!.maintenance.merge();
      }
      await tree.flush();
      const day1 = `${dir}/2024-03-01`;
      // Merges have written disk segments; retained WALs, the live WAL and the lock are there too.
      const names = nodeFs.readdirSync(day1);
      expect(names.some((n) => n.startsWith("seg-"))).toBe(true);
      expect(names.some((n) => n.startsWith("wal-"))).toBe(true);
      expect(openPaths().some((p) => p.startsWith(day1 + "/"))).toBe(true);
      const before = bytesUnder(dir);
      const partitionBytes = bytesUnder(day1);
      expect(partitionBytes).toBeGreaterThan(10_000);

      expect(await tree.dropPartition("2024-03-01")).toBe(true);
      expect(nodeFs.existsSync(day1)).toBe(false);
      expect(bytesUnder(dir)).toBe(before - partitionBytes);
      // No descriptor points at a file of the dropped partition (a deleted-but-open file would
      // still hold its blocks).
      expect(openPaths().filter((p) => p.includes("/2024-03-01"))).toEqual([]);
      expect(tree.partitions()).toEqual(["2024-03-02", "2024-03-03"]);
      expect(tree.get({ sensor: "s-1", ts: BigInt(T0 + 1000) })).toBeUndefined();
      expect(tree.count()).toBe(4000);
      expect(await tree.dropPartition("2024-03-01")).toBe(false);
      await tree.close();
      // Reopened, the partition stays gone.
      const again = await PartitionedTree.open({
        dir,
        keyspace: readings,
        partitionBy: { field: "ts", bucket: "day" },
      });
      expect(again.partitions()).toEqual(["2024-03-02", "2024-03-03"]);
      expect(again.count()).toBe(4000);
      await again.close();
      console.log(
        `dropPartition: ${partitionBytes} bytes in ${names.length} files freed of ${before}`,
      );
    },
    30_000,
  );

  test("partitionBy must name a key field", async () => {
    await expect(
      PartitionedTree.open({
        dir: "/x",
        keyspace: docs,
        fs: memoryFileSystem(),
        partitionBy: { field: "nope" },
      }),
    )
      .rejects.toMatchObject({ code: "INVALID_OPTION", option: "partitionBy" });
  });
});
