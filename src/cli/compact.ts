/**
 * `zonetree compact <dir>`: moves the mutable segment forward, merges every in-memory segment
 * into the disk segment, then merges all bottom segments into one, and prints the layers and
 * sizes before and after. Deletion markers and expired records are dropped where nothing lies
 * below them.
 *
 * Invariants: opens the tree for writing (takes the lock) with manual maintenance, so nothing
 * else moves meanwhile; every step goes through the public maintenance API, whose merges publish
 * atomically, so an interrupted compact leaves a consistent tree.
 *
 * @module
 */
import { ZoneTree } from "../api/zone_tree.ts";
import { localFileSystem } from "../fs/local_file_system.ts";
import {
  type CliContext,
  type Command,
  EXIT_OK,
  formatBytes,
  formatCount,
  formatDuration,
  parseArgs,
  positionals,
  table,
} from "./common.ts";
import { bytesOf, readDataDir, storedKeyspace, WAL_ROLES } from "./data_dir.ts";

const HELP = `Usage: zonetree compact <dir>

Compacts the tree in <dir>: moves the mutable segment forward, merges the in-memory segments
(replayed from the WAL files) into the disk segment, then merges all bottom segments into one.
Prints the record counts per layer and the bytes on disk before and after. Opens the tree for
writing: it must not be open in another process.

Options:
  -h, --help  this help

Exit codes: 0 ok, 1 no database, locked, corruption or I/O error, 2 usage error.`;

interface Snapshot {
  memoryRecords: number;
  diskRecords: number;
  bottomSegments: number;
  bottomRecords: number;
  walBytes: number;
  segmentBytes: number;
  files: number;
}

function snapshot(dir: string, tree: ZoneTree): Snapshot {
  const s = tree.stats();
  const files = readDataDir(localFileSystem(), dir).files;
  return {
    memoryRecords: s.mutableSegmentRecordCount + s.readOnlySegmentsRecordCount,
    diskRecords: s.diskSegmentRecordCount,
    bottomSegments: s.bottomSegmentsCount,
    bottomRecords: s.totalRecordCount - s.mutableSegmentRecordCount -
      s.readOnlySegmentsRecordCount - s.diskSegmentRecordCount,
    walBytes: bytesOf(files, ...WAL_ROLES),
    segmentBytes: bytesOf(files, "segment", "segment (unreferenced)"),
    files: files.filter((f) => f.role !== "lock").length,
  };
}

async function run(argv: readonly string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, {});
  if (args.help) {
    ctx.out.line(HELP);
    return EXIT_OK;
  }
  const [dir] = positionals(args, ["dir"]);
  const { keyspace } = storedKeyspace(readDataDir(localFileSystem(), dir).meta);
  const started = performance.now();
  const tree = await ZoneTree.open({ dir, keyspace, mode: "open", maintenance: "manual" });
  let before: Snapshot;
  let after: Snapshot;
  try {
    before = snapshot(dir, tree);
    tree.maintenance.moveMutableSegmentForward();
    // One merge takes every read-only segment present when it starts; loop in case of more.
    for (let i = 0; i < 100 && tree.stats().readOnlySegmentsCount > 0; i++) {
      await tree.maintenance.merge();
    }
    if (tree.stats().bottomSegmentsCount > 1) await tree.maintenance.mergeBottomSegments();
  } finally {
    await tree.close();
  }
  // Reopened read-only: the counts after close, when replaced files are gone.
  const reopened = await ZoneTree.open({
    dir,
    keyspace,
    mode: "open",
    readOnly: true,
    maintenance: "manual",
  });
  try {
    after = snapshot(dir, reopened);
  } finally {
    await reopened.close();
  }
  const row = (label: string, f: (s: Snapshot) => string) => [label, f(before), f(after)];
  const lines = table(
    [
      ["", "before", "after"],
      row("in-memory records (WAL)", (s) => formatCount(s.memoryRecords)),
      row("disk segment records", (s) => formatCount(s.diskRecords)),
      row(
        "bottom segments",
        (s) => `${formatCount(s.bottomSegments)} (${formatCount(s.bottomRecords)} records)`,
      ),
      row("WAL bytes", (s) => formatBytes(s.walBytes)),
      row("segment bytes", (s) => formatBytes(s.segmentBytes)),
      row("files", (s) => formatCount(s.files)),
    ],
    [1, 2],
    "  ",
  );
  ctx.out.line(`compact ${dir}`);
  for (const line of lines) ctx.out.line(line);
  const total = (s: Snapshot) => s.walBytes + s.segmentBytes;
  ctx.out.line(
    `done in ${formatDuration(performance.now() - started)}: ${formatBytes(total(before))} -> ${
      formatBytes(total(after))
    } on disk`,
  );
  return EXIT_OK;
}

/** The `compact` command. */
export const compactCommand: Command = {
  name: "compact",
  summary: "merge everything into the disk segment and one bottom segment; print sizes",
  help: HELP,
  run,
};
