/**
 * `zonetree inspect <dir>`: what a data directory holds, read from its files without opening
 * the tree (so it also works while another process has it open): metadata, keyspace, layout,
 * opIndex, the disk segment and bottom segments with their parts, record counts and bytes, the
 * WAL files and every other file.
 *
 * Invariants: writes nothing, takes no lock. A segment that cannot be opened is shown with its
 * error and makes the exit code 1. Also used by `demo` to print the segment layout.
 *
 * @module
 */
import { ZoneTreeError } from "../api/errors.ts";
import { localFileSystem } from "../fs/local_file_system.ts";
import { joinPath } from "../fs/file_system.ts";
import {
  type CliContext,
  type Command,
  EXIT_FAILURE,
  EXIT_OK,
  formatBytes,
  formatCount,
  parseArgs,
  positionals,
  table,
} from "./common.ts";
import {
  bytesOf,
  type DataDir,
  describeSegment,
  type DirFile,
  openSegment,
  readDataDir,
  type SegmentInfo,
  segmentRecords,
  storedKeyspace,
  WAL_ROLES,
} from "./data_dir.ts";

const HELP = `Usage: zonetree inspect <dir> [--json]

Shows what the data directory <dir> holds: format version, keyspace (template, fields, value
codec, identity), disk layout, opIndex, the disk segment and bottom segments with their parts,
record counts and bytes, the WAL files and their sizes, and every other file. Reads the files
directly: no lock is taken and nothing is written, so it works on an open database too.

Options:
  --json      one JSON object instead of the table
  -h, --help  this help

Exit codes: 0 ok, 1 no database or a segment that cannot be read, 2 usage error.`;

/** The inspect report, also the `--json` output. */
export interface InspectReport {
  dir: string;
  formatVersion: number;
  keyspace: {
    name: string | null;
    template: string;
    value: unknown;
    identity: string;
    fields: { name: string; type: string; desc: boolean }[] | null;
    rawValues: boolean;
    error?: string;
  };
  layout: string;
  keyFixedWidth: number | null;
  valueFixedWidth: number | null;
  lastOpIndex: number;
  opIndexReserved: number;
  nextSegmentId: number;
  persistedSegmentId: number;
  rangeTombstones: number;
  /** Every opIndex above this is in a WAL file (the change feed reads from there); null: none. */
  changeFeedFloor: number | null;
  segments: (SegmentInfo & { layer: string; metaRecordCount: number; error?: string })[];
  wal: { file: string; sizeBytes: number; role: string }[];
  files: DirFile[];
  walBytes: number;
  diskBytes: number;
  totalBytes: number;
  lockHolderPid: number | null;
}

/** Builds the report for `dir`. Throws DatabaseNotFoundError or CorruptionError (metadata). */
export function inspectDataDir(dir: string): InspectReport {
  const fs = localFileSystem();
  const data = readDataDir(fs, dir);
  const { meta } = data;
  const spec = meta.keyspace.spec as { name?: string; key: string; value: unknown };
  const keyspace: InspectReport["keyspace"] = {
    name: spec.name ?? null,
    template: spec.key,
    value: spec.value,
    identity: meta.keyspace.identity,
    fields: null,
    rawValues: false,
  };
  try {
    const stored = storedKeyspace(meta);
    keyspace.fields = stored.keyspace.key.fields.map((f) => ({
      name: f.name,
      type: f.type,
      desc: f.desc,
    }));
    keyspace.rawValues = stored.rawValues;
  } catch (e) {
    if (!(e instanceof ZoneTreeError)) throw e;
    keyspace.error = e.message;
  }
  const segments: InspectReport["segments"] = [];
  for (const { label, record } of segmentRecords(meta)) {
    try {
      const seg = openSegment(fs, dir, record);
      try {
        segments.push({
          layer: label,
          metaRecordCount: record.recordCount,
          ...describeSegment(seg),
        });
      } finally {
        seg.close();
      }
    } catch (e) {
      if (!(e instanceof ZoneTreeError)) throw e;
      segments.push({
        layer: label,
        metaRecordCount: record.recordCount,
        id: record.id,
        kind: record.parts.length === 1 && record.parts[0] === record.id ? "single" : "multipart",
        recordCount: record.recordCount,
        deleteCount: 0,
        sizeBytes: 0,
        files: [],
        parts: [],
        error: e.message,
      });
    }
  }
  return {
    dir,
    formatVersion: meta.formatVersion,
    keyspace,
    layout: meta.shape.layout,
    keyFixedWidth: meta.shape.keyFixedWidth,
    valueFixedWidth: meta.shape.valueFixedWidth,
    lastOpIndex: meta.lastOpIndex,
    opIndexReserved: meta.opIndexReserved,
    nextSegmentId: meta.nextSegmentId,
    persistedSegmentId: meta.persistedSegmentId,
    rangeTombstones: (meta as { rangeTombstones?: unknown[] }).rangeTombstones?.length ?? 0,
    changeFeedFloor: meta.changeFeedFloor ?? null,
    segments,
    wal: walFiles(data),
    files: data.files,
    walBytes: bytesOf(data.files, ...WAL_ROLES),
    diskBytes: bytesOf(data.files, "segment", "segment (unreferenced)"),
    totalBytes: data.files.reduce((n, f) => n + f.sizeBytes, 0),
    lockHolderPid: lockHolder(data),
  };
}

/** WAL files, oldest first; the newest live one belongs to the mutable segment. */
function walFiles(data: DataDir): InspectReport["wal"] {
  const wals = data.files.filter((f) => WAL_ROLES.includes(f.role));
  const live = wals.filter((f) => f.role === "wal");
  const roleOf = (f: DirFile) => {
    switch (f.role) {
      case "wal":
        return f === live[live.length - 1]
          ? "mutable segment"
          : "read-only segment (waiting for a merge)";
      case "wal (obsolete)":
        return "obsolete (already merged; removed on next open)";
      case "wal (retained)":
        return "merged, kept for the change feed";
      default:
        return "merged, not listed in meta (removed on next open)";
    }
  };
  return wals.map((f) => ({ file: f.name, sizeBytes: f.sizeBytes, role: roleOf(f) }));
}

function lockHolder(data: DataDir): number | null {
  if (!data.files.some((f) => f.role === "lock")) return null;
  try {
    const text = new TextDecoder().decode(
      localFileSystem().readFile(joinPath(data.dir, "lock")).subarray(0, 200),
    );
    const pid = Number(text.trim().split(/\s+/)[0]);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null; // released (and removed) while we looked: nothing to show
  }
}

/** The segment layout lines (also printed by `demo`). */
export function segmentLines(report: InspectReport, indent = "  "): string[] {
  const rows: string[][] = [];
  for (const s of report.segments) {
    if (s.error !== undefined) {
      rows.push([s.layer, `#${s.id}`, `cannot read: ${s.error}`, "", "", ""]);
      continue;
    }
    const kind = s.kind === "multipart"
      ? `multipart, ${s.parts.length} part${s.parts.length === 1 ? "" : "s"}`
      : "single part";
    const records = `${formatCount(s.recordCount)} records`;
    const mismatch = s.recordCount === s.metaRecordCount
      ? ""
      : ` (metadata says ${formatCount(s.metaRecordCount)})`;
    rows.push([
      s.layer,
      `#${s.id}`,
      kind,
      records + mismatch,
      formatBytes(s.sizeBytes),
      s.files[0],
    ]);
    for (const p of s.parts) {
      const deletes = p.deleteCount > 0 ? `, ${formatCount(p.deleteCount)} deletion markers` : "";
      rows.push([
        "  part",
        `#${p.id}`,
        `${formatCount(p.blockCount)} block${p.blockCount === 1 ? "" : "s"}${deletes}`,
        `${formatCount(p.recordCount)} records`,
        formatBytes(p.sizeBytes),
        p.file,
      ]);
    }
  }
  for (const w of report.wal) rows.push(["WAL", "", w.role, "", formatBytes(w.sizeBytes), w.file]);
  if (rows.length === 0) return [`${indent}(no segments on disk, no WAL files)`];
  return table(rows, [3, 4], indent);
}

function humanLines(r: InspectReport): string[] {
  const ks = r.keyspace;
  const fields = ks.fields?.map((f) => `${f.name} ${f.type}${f.desc ? " desc" : ""}`).join(", ") ??
    `unavailable: ${ks.error}`;
  const widths = [
    r.keyFixedWidth === null ? "variable-width keys" : `${r.keyFixedWidth}-byte keys`,
    r.valueFixedWidth === null ? "variable-width values" : `${r.valueFixedWidth}-byte values`,
  ].join(", ");
  const head: string[][] = [
    ["data directory", r.dir],
    ["format", `version ${r.formatVersion}`],
    ["keyspace", ks.name ?? "(unnamed)"],
    ["  key", ks.template],
    ["  fields", fields],
    [
      "  value",
      JSON.stringify(ks.value) +
      (ks.rawValues ? " (custom codec: tools show raw bytes as hex)" : ""),
    ],
    ["  identity", ks.identity],
    ["layout", `${r.layout} (${widths})`],
    [
      "opIndex",
      `last ${formatCount(r.lastOpIndex)}, reserved up to ${formatCount(r.opIndexReserved)}`,
    ],
    ["segment ids", `next ${r.nextSegmentId}, WALs up to ${r.persistedSegmentId} persisted`],
  ];
  if (r.rangeTombstones > 0) {
    head.push(["range deletions", `${formatCount(r.rangeTombstones)} pending in bottom segments`]);
  }
  if (r.changeFeedFloor !== null) {
    const kept = r.wal.filter((w) => w.role.includes("change feed"));
    head.push([
      "change feed",
      `ops above ${formatCount(r.changeFeedFloor)} readable, ` +
      `${kept.length} merged WAL${kept.length === 1 ? "" : "s"} kept ` +
      `(${formatBytes(kept.reduce((n, w) => n + w.sizeBytes, 0))})`,
    ]);
  }
  head.push([
    "lock",
    r.lockHolderPid === null ? "none (not open)" : `held by pid ${r.lockHolderPid}`,
  ]);
  const records = r.segments.reduce((n, s) => n + s.recordCount, 0);
  const lines = table(head);
  lines.push("", `segments (newest first): ${formatCount(records)} records on disk`);
  lines.push(...segmentLines(r));
  const others = r.files.filter((f) =>
    !WAL_ROLES.includes(f.role) && !["segment", "meta", "lock"].includes(f.role)
  );
  if (others.length > 0) {
    lines.push("", "other files");
    lines.push(...table(others.map((f) => [f.name, formatBytes(f.sizeBytes), f.role]), [1], "  "));
  }
  lines.push(
    "",
    `total  ${formatBytes(r.totalBytes)} in ${r.files.length} files: ` +
      `segments ${formatBytes(r.diskBytes)}, WAL ${formatBytes(r.walBytes)}`,
  );
  return lines;
}

async function run(argv: readonly string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, { json: "boolean" });
  if (args.help) {
    ctx.out.line(HELP);
    return EXIT_OK;
  }
  const [dir] = positionals(args, ["dir"]);
  const report = inspectDataDir(dir);
  if (args.flags.has("json")) ctx.out.line(JSON.stringify(report, null, 2));
  else for (const line of humanLines(report)) ctx.out.line(line);
  await ctx.out.flush();
  return report.segments.some((s) => s.error !== undefined) ? EXIT_FAILURE : EXIT_OK;
}

/** The `inspect` command. */
export const inspectCommand: Command = {
  name: "inspect",
  summary: "show metadata, keyspace, segments, parts, WAL files, sizes",
  help: HELP,
  run,
};
