/**
 * `zonetree verify <dir>`: checks every byte of a data directory against its checksums and
 * structure: the metadata, every disk segment and bottom segment (descriptor and every part,
 * read from storage, not from a cache), and every WAL (replayed). Prints one row per file and
 * exits 1 if anything is corrupt, naming the file and the byte offset.
 *
 * A torn record at the end of a WAL is a warning, not corruption: it is what a crash leaves, and
 * opening the tree drops it. Unreferenced segment files (left by a merge that did not publish)
 * are warnings too. Writes nothing and takes no lock; on a tree open in another process a WAL
 * being written may show a torn tail.
 *
 * @module
 */
import { CorruptionError, ZoneTreeError } from "../api/errors.ts";
import type { DiskSegmentRecord } from "../engine/metadata.ts";
import { joinPath } from "../fs/file_system.ts";
import { localFileSystem } from "../fs/local_file_system.ts";
import { replayWal } from "../wal/wal_reader.ts";
import {
  type CliContext,
  type Command,
  EXIT_FAILURE,
  EXIT_OK,
  formatBytes,
  formatCount,
  formatDuration,
  parseArgs,
  positionals,
  table,
} from "./common.ts";
import {
  type DataDir,
  describeSegment,
  type FileRole,
  openSegment,
  readDataDir,
  segmentRecords,
  storedKeyspace,
  WAL_ROLES,
} from "./data_dir.ts";

const HELP = `Usage: zonetree verify <dir> [--json]

Checks the data directory <dir>: the metadata file, every disk segment and bottom segment
(descriptor and every part: every block's checksum, the index, the footer, the key order), and
every write-ahead log (replayed frame by frame). Prints one row per file: ok, WARN or FAIL.
A FAIL names the file and the byte offset of the first bad byte.

Warnings (exit code stays 0): a torn record at the end of a WAL (what a crash leaves; opening
the tree drops it), segment files that the metadata does not reference (left by an unfinished
merge; opening the tree removes them), a leftover meta.tmp.

Reads the files directly without taking the lock and writes nothing.

Options:
  --json      one JSON object: { ok, problems, warnings, checks: [{ status, file, detail, offset? }] }
  -h, --help  this help

Exit codes: 0 no corruption, 1 corruption found (or no database), 2 usage error.`;

/** One checked file. */
export interface VerifyCheck {
  status: "ok" | "WARN" | "FAIL";
  file: string;
  detail: string;
  offset?: number;
}

/** Checks every file of `dir`. Throws DatabaseNotFoundError when there is no database. */
export function verifyDataDir(dir: string): VerifyCheck[] {
  const fs = localFileSystem();
  const checks: VerifyCheck[] = [];
  let data: DataDir;
  try {
    data = readDataDir(fs, dir);
  } catch (e) {
    if (!(e instanceof CorruptionError)) throw e;
    return [failure(dir, e)];
  }
  const { meta } = data;
  checks.push({
    status: "ok",
    file: "meta",
    detail: `format ${meta.formatVersion}, keyspace ${meta.keyspace.identity}, ` +
      `${meta.diskSegment ? 1 : 0} disk segment, ${meta.bottomSegments.length} bottom segments`,
  });
  try {
    storedKeyspace(meta);
  } catch (e) {
    if (!(e instanceof ZoneTreeError)) throw e;
    checks.push({
      status: "WARN",
      file: "meta",
      detail: `keyspace cannot be rebuilt: ${e.message}`,
    });
  }
  for (const { label, record } of segmentRecords(meta)) {
    checks.push(verifySegment(data, label, record));
  }
  for (const f of data.files) {
    if (WAL_ROLES.includes(f.role)) {
      checks.push(verifyWal(data, f.name, f.role));
    } else if (f.role === "segment (unreferenced)") {
      checks.push({
        status: "WARN",
        file: f.name,
        detail: "not referenced by meta (left by an unfinished merge; removed on next open)",
      });
    } else if (f.role === "meta.tmp") {
      checks.push({
        status: "WARN",
        file: f.name,
        detail: "leftover of an interrupted metadata replace (removed on next open)",
      });
    }
  }
  return checks;
}

function verifySegment(data: DataDir, label: string, record: DiskSegmentRecord): VerifyCheck {
  const fs = localFileSystem();
  try {
    const seg = openSegment(fs, data.dir, record);
    try {
      seg.verify();
      const info = describeSegment(seg);
      if (info.recordCount !== record.recordCount) {
        return {
          status: "FAIL",
          file: "meta",
          detail:
            `${label} #${record.id}: metadata says ${formatCount(record.recordCount)} records, ` +
            `its files hold ${formatCount(info.recordCount)}`,
        };
      }
      const parts = info.kind === "multipart"
        ? `${info.parts.length} part${info.parts.length === 1 ? "" : "s"}, `
        : "";
      return {
        status: "ok",
        file: info.files[0],
        detail: `${label} #${info.id}: ${parts}${formatCount(info.recordCount)} records, ${
          formatBytes(info.sizeBytes)
        }`,
      };
    } finally {
      seg.close();
    }
  } catch (e) {
    if (!(e instanceof ZoneTreeError)) throw e;
    const check = failure(data.dir, e);
    check.detail += ` (${label} #${record.id})`;
    return check;
  }
}

const WAL_NOTES: Partial<Record<FileRole, string>> = {
  "wal": "",
  "wal (obsolete)": " (obsolete: already merged; removed on next open)",
  "wal (retained)": " (merged, kept for the change feed)",
  "wal (retained, unlisted)": " (merged, not listed in meta; removed on next open)",
};

function verifyWal(data: DataDir, name: string, role: FileRole): VerifyCheck {
  let ops = 0;
  try {
    const result = replayWal(localFileSystem(), joinPath(data.dir, name), () => ops++);
    const what = `${formatCount(ops)} op${ops === 1 ? "" : "s"}` + WAL_NOTES[role];
    if (result.tornTail) {
      return {
        status: "WARN",
        file: name,
        offset: result.tornTail.offset,
        detail: `${what}, then a torn record at offset ${result.tornTail.offset} ` +
          `(${result.tornTail.reason}; dropped on next open)`,
      };
    }
    return { status: "ok", file: name, detail: what };
  } catch (e) {
    if (!(e instanceof ZoneTreeError)) throw e;
    return failure(data.dir, e);
  }
}

/** A FAIL row for `e`, naming its file (relative to `dir`) and offset when it is corruption. */
function failure(dir: string, e: ZoneTreeError): VerifyCheck {
  if (e instanceof CorruptionError) {
    const prefix = dir.endsWith("/") ? dir : dir + "/";
    const file = e.file.startsWith(prefix) ? e.file.slice(prefix.length) : e.file;
    const what = e.message.replace(/^corruption in .* at offset \d+: /, "");
    return { status: "FAIL", file, offset: e.offset, detail: `offset ${e.offset}: ${what}` };
  }
  return { status: "FAIL", file: "?", detail: `${e.message} [${e.code}]` };
}

async function run(argv: readonly string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, { json: "boolean" });
  if (args.help) {
    ctx.out.line(HELP);
    return EXIT_OK;
  }
  const [dir] = positionals(args, ["dir"]);
  const started = performance.now();
  const checks = verifyDataDir(dir);
  const problems = checks.filter((c) => c.status === "FAIL").length;
  const warnings = checks.filter((c) => c.status === "WARN").length;
  if (args.flags.has("json")) {
    ctx.out.line(JSON.stringify({ dir, ok: problems === 0, problems, warnings, checks }, null, 2));
  } else {
    ctx.out.line(`verify ${dir}`);
    for (const line of table(checks.map((c) => [c.status, c.file, c.detail]), [], "  ")) {
      ctx.out.line(line);
    }
    const verdict = problems === 0
      ? "no corruption found"
      : `CORRUPT: ${problems} problem${problems === 1 ? "" : "s"}`;
    ctx.out.line(
      `${verdict}, ${warnings} warning${warnings === 1 ? "" : "s"}, ${checks.length} checks in ` +
        formatDuration(performance.now() - started),
    );
  }
  await ctx.out.flush();
  return problems === 0 ? EXIT_OK : EXIT_FAILURE;
}

/** The `verify` command. */
export const verifyCommand: Command = {
  name: "verify",
  summary: "check every checksum of every file; exit 1 on corruption with file and offset",
  help: HELP,
  run,
};
