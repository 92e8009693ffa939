/**
 * bun:sqlite driver: one `WITHOUT ROWID` table with a BLOB primary key (the table is the
 * key-ordered B-tree), prepared statements, WAL journal mode. Batches are one transaction, single
 * records one autocommit statement. Durable: `synchronous = FULL` (the WAL is fsynced at every
 * commit). Non-durable: `synchronous = NORMAL`, SQLite's recommended WAL setting (no fsync per
 * commit; the WAL is synced only at checkpoints). Ranges prepare one statement per bound shape.
 */
import { Database, type Statement } from "bun:sqlite";
import type { Bytes, Driver, OpenOptions, RangeOptions } from "./driver.ts";

const sqliteVersion = new Database(":memory:").query(
  "SELECT sqlite_version() AS v",
).get() as { v: string };
const version = `${sqliteVersion.v} (SQLite, bun ${Bun.version})`;

export function createDriver(): Driver {
  let db: Database;
  let insert: Statement;
  let select: Statement;
  let insertMany: (entries: [Bytes, Bytes][]) => void;
  const ranges = new Map<string, Statement>();

  function rangeStatement(opts: RangeOptions): Statement {
    const shape = `${opts.gte ? 1 : 0}${opts.lt ? 1 : 0}${opts.reverse ? 1 : 0}${
      opts.limit ? 1 : 0
    }`;
    let stmt = ranges.get(shape);
    if (stmt === undefined) {
      const where = [opts.gte && "k >= $gte", opts.lt && "k < $lt"].filter(
        Boolean,
      ).join(" AND ");
      stmt = db.prepare(
        `SELECT k, v FROM kv ${where ? "WHERE " + where : ""} ORDER BY k ${
          opts.reverse ? "DESC" : "ASC"
        }` +
          (opts.limit ? " LIMIT $limit" : ""),
      );
      ranges.set(shape, stmt);
    }
    return stmt;
  }

  return {
    name: "bun:sqlite",
    version,
    modes: {
      durable: "WAL journal, synchronous=FULL: WAL fsynced at every commit",
      nonDurable: "WAL journal, synchronous=NORMAL: no fsync per commit (only at checkpoints)",
    },
    open(dir: string, opts: OpenOptions) {
      db = new Database(`${dir}/kv.db`, { create: true });
      db.exec("PRAGMA journal_mode = WAL");
      db.exec(`PRAGMA synchronous = ${opts.durable ? "FULL" : "NORMAL"}`);
      db.exec(
        "CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID",
      );
      insert = db.prepare("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)");
      select = db.prepare("SELECT v FROM kv WHERE k = ?");
      insertMany = db.transaction((entries: [Bytes, Bytes][]) => {
        for (const [k, v] of entries) insert.run(k, v);
      });
      ranges.clear();
    },
    putBatch(entries) {
      insertMany(entries);
    },
    put(key, value) {
      insert.run(key, value);
    },
    get(key) {
      const row = select.values(key)[0];
      return row === undefined ? undefined : (row[0] as Bytes);
    },
    range(opts, visit) {
      const params: Record<string, Bytes | number> = {};
      if (opts.gte) params.$gte = opts.gte;
      if (opts.lt) params.$lt = opts.lt;
      if (opts.limit) params.$limit = opts.limit;
      for (
        const row of rangeStatement(opts).iterate(params) as Iterable<
          { k: Bytes; v: Bytes }
        >
      ) {
        visit(row.k, row.v);
      }
    },
    close() {
      for (const stmt of ranges.values()) stmt.finalize();
      insert.finalize();
      select.finalize();
      db.close();
    },
  };
}
