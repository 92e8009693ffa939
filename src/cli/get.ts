/**
 * `zonetree get <dir> <field>...`: reads one key and prints its value as JSON. The key's fields
 * are parsed by the keyspace's field types (see `fields.ts`); the tree is opened read-only.
 *
 * Invariants: the key is parsed and encoded before the tree is opened, so a bad argument exits
 * 2 without touching the directory; "not found" is exit 1 with the key on stderr, nothing on
 * stdout.
 *
 * @module
 */
import { localFileSystem } from "../fs/local_file_system.ts";
import {
  type CliContext,
  type Command,
  EXIT_FAILURE,
  EXIT_OK,
  parseArgs,
  positionals,
} from "./common.ts";
import { openStoredTree, readDataDir, storedKeyspace } from "./data_dir.ts";
import { keyObject, parseKeyArgs, toJson } from "./fields.ts";

const HELP = `Usage: zonetree get <dir> <field>...

Prints the value stored under a key as one line of JSON. Give one argument per key field, in
layout order (see \`zonetree inspect <dir>\`), parsed by the field's type:
  integers   42, -5          u64be/i64be also take an ISO-8601 date-time (epoch ms)
  f64        21.5, -1e3      bool  true/false      uuid, str  as is
  bytes      hex, e.g. 00ff or 0x00ff
Bigints print as JSON numbers with every digit, bytes as hex strings; with a custom value
codec the value prints as a hex string. Use \`--\` before a field value that starts with "-"
and is not a number.

Example:
  zonetree get data/readings s-7 1700000000000
  zonetree get data/readings s-7 2023-11-14T22:13:20Z

The tree is opened read-only (it must not be open in another process).

Exit codes: 0 found, 1 not found (or no database), 2 usage error (wrong number of fields, a
value that does not parse).`;

async function run(argv: readonly string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, {});
  if (args.help) {
    ctx.out.line(HELP);
    return EXIT_OK;
  }
  const [dir, ...fieldArgs] = positionals(args, ["dir", "field"], true);
  const { keyspace } = storedKeyspace(readDataDir(localFileSystem(), dir).meta);
  const { tuple } = parseKeyArgs(keyspace, fieldArgs, true, "get");
  const tree = await openStoredTree(dir, keyspace);
  try {
    const value = tree.get(tuple);
    if (value === undefined) {
      ctx.err.line(`zonetree: key not found: ${toJson(keyObject(keyspace, tuple))}`);
      return EXIT_FAILURE;
    }
    ctx.out.line(toJson(value));
    return EXIT_OK;
  } finally {
    await tree.close();
  }
}

/** The `get` command. */
export const getCommand: Command = {
  name: "get",
  summary: "print the value of one key as JSON (exit 1 when not found)",
  help: HELP,
  run,
};
