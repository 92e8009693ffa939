/**
 * `zonetree scan <dir>`: prints records in key order (or reverse), optionally within a prefix
 * or bounds and up to a limit; as aligned columns for people or one JSON object per line.
 *
 * Invariants: the tree is opened read-only; output is written in chunks with the pipe's
 * backpressure honoured, and scanning stops when the reader goes away (`| head`).
 *
 * @module
 */
import { localFileSystem } from "../fs/local_file_system.ts";
import {
  type CliContext,
  type Command,
  EXIT_OK,
  formatCount,
  intFlag,
  listFlag,
  type Output,
  parseArgs,
  positionals,
} from "./common.ts";
import { openStoredTree, readDataDir, storedKeyspace } from "./data_dir.ts";
import { keyColumns, parseKeyArgs, toJson, toText } from "./fields.ts";
import type { AnyKeyspace } from "../keyspace/define_keyspace.ts";

const HELP = `Usage: zonetree scan <dir> [--prefix <field>...] [--gte <field>...] [--lt <field>...]
                     [--reverse] [--limit <n>] [--json]

Prints the records of the tree in key order: one aligned row per record (key fields, then the
value as JSON), or with --json one JSON object per line: {"key":{...},"value":...}.
Field values are given one argument each, in layout order, parsed by the field's type (see
\`zonetree get --help\`); a prefix or bound may give only the leading fields.

Options:
  --prefix <field>...  only keys starting with these field values
  --gte <field>...     only keys >= this key or prefix
  --lt <field>...      only keys < this key or prefix
  --reverse            descending key order (latest first for a timestamp field)
  --limit <n>          at most n records
  --json               one JSON object per line (bigints as exact JSON numbers, bytes as hex)
  -h, --help           this help

Examples:
  zonetree scan data/readings --prefix s-7 --reverse --limit 10
  zonetree scan data/readings --prefix s-7 --gte s-7 2024-01-01T00:00:00Z --lt s-7 2024-01-01T01:00:00Z --json

The tree is opened read-only (it must not be open in another process).

Exit codes: 0 ok (also when nothing matched), 1 no database or corruption, 2 usage error.`;

/** Rows aligned per chunk; column widths only grow, so later chunks stay aligned with earlier ones. */
const CHUNK_ROWS = 1000;

async function run(argv: readonly string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, {
    prefix: "list",
    gte: "list",
    lt: "list",
    reverse: "boolean",
    limit: "value",
    json: "boolean",
  });
  if (args.help) {
    ctx.out.line(HELP);
    return EXIT_OK;
  }
  const [dir] = positionals(args, ["dir"]);
  const limit = args.flags.has("limit")
    ? intFlag(args, "limit", 0, Number.MAX_SAFE_INTEGER, 0)
    : undefined;
  const { keyspace } = storedKeyspace(readDataDir(localFileSystem(), dir).meta);
  const bound = (name: string) => {
    const values = listFlag(args, name);
    return values === undefined
      ? undefined
      : parseKeyArgs(keyspace, values, false, `--${name}`).tuple;
  };
  const options = {
    prefix: bound("prefix"),
    gte: bound("gte"),
    lt: bound("lt"),
    reverse: args.flags.has("reverse"),
    limit,
  };
  const tree = await openStoredTree(dir, keyspace);
  try {
    const records = tree.range(options);
    const count = args.flags.has("json")
      ? await writeJson(records, ctx.out)
      : await writeRows(records, keyspace, ctx.out);
    if (!args.flags.has("json") && !ctx.out.broken) {
      ctx.out.line(`(${formatCount(count)} record${count === 1 ? "" : "s"})`);
    }
    return EXIT_OK;
  } finally {
    await tree.close();
  }
}

async function writeJson(records: Iterable<[unknown, unknown]>, out: Output): Promise<number> {
  let n = 0;
  for (const [key, value] of records) {
    await out.lineAsync(`{"key":${toJson(key)},"value":${toJson(value)}}`);
    n++;
    if (out.broken) break;
  }
  return n;
}

async function writeRows(
  records: Iterable<[unknown, unknown]>,
  keyspace: AnyKeyspace,
  out: Output,
): Promise<number> {
  const header = [...keyspace.key.fields.map((f) => f.name), "value"];
  const widths = header.map((h) => h.length);
  let rows: string[][] = [header];
  let n = 0;
  const emit = async () => {
    for (const row of rows) {
      row.forEach((cell, i) => (widths[i] = Math.max(widths[i], cell.length)));
    }
    const last = header.length - 1;
    for (const row of rows) {
      await out.lineAsync(
        row.map((cell, i) => (i === last ? cell : cell.padEnd(widths[i]))).join("  "),
      );
    }
    rows = [];
  };
  for (const [key, value] of records) {
    rows.push([...keyColumns(keyspace, key).map(toText), toJson(value)]);
    n++;
    if (rows.length >= CHUNK_ROWS) await emit();
    if (out.broken) return n;
  }
  await emit();
  return n;
}

/** The `scan` command. */
export const scanCommand: Command = {
  name: "scan",
  summary: "print records in key order: --prefix, --gte/--lt, --reverse, --limit, --json",
  help: HELP,
  run,
};
