/**
 * The `zonetree` command line: picks the command, runs it, and turns what it throws into a
 * message and an exit code. `ZoneTreeError`s print `zonetree: <message> [CODE]` without a stack;
 * usage errors print a hint and exit 2; anything else is a bug and prints its stack.
 *
 * Called by `cli.ts` (the bin); tests spawn `bun cli.ts ...`.
 *
 * @module
 */
import { ZoneTreeError } from "../api/errors.ts";
import {
  type CliContext,
  type Command,
  EXIT_FAILURE,
  EXIT_OK,
  EXIT_USAGE,
  table,
  UsageError,
} from "./common.ts";
import { compactCommand } from "./compact.ts";
import { demoCommand } from "./demo.ts";
import { getCommand } from "./get.ts";
import { inspectCommand } from "./inspect.ts";
import { scanCommand } from "./scan.ts";
import { verifyCommand } from "./verify.ts";

const COMMANDS: readonly Command[] = [
  inspectCommand,
  getCommand,
  scanCommand,
  verifyCommand,
  compactCommand,
  demoCommand,
];

function mainHelp(): string {
  const rows = COMMANDS.map((c) => [c.name, c.summary]);
  return [
    "Usage: zonetree <command> [options]",
    "",
    "ZoneTree: an ordered, durable LSM-tree key-value engine for Bun and Deno.",
    "",
    "Commands:",
    ...table(rows, [], "  "),
    "",
    "Run `zonetree <command> --help` for a command's options.",
    "Key fields are given as one argument each, in layout order, parsed by their type",
    "(integers, u64/i64 also as ISO-8601 dates, numbers, true/false, uuid, text, hex for bytes).",
    "",
    "Exit codes:",
    "  0  ok",
    "  1  key not found, corruption found, no database, or another error (message on stderr)",
    "  2  usage error (unknown command or option, bad argument)",
    "",
    "Errors print `zonetree: <message> [CODE]` on stderr; CODE is the error's stable code",
    "(CORRUPTION, DATABASE_NOT_FOUND, DATABASE_LOCKED, ...).",
  ].join("\n");
}

/** Runs the CLI with `argv` (without the runtime and script); returns the exit code. */
export async function runCli(argv: readonly string[], ctx: CliContext): Promise<number> {
  let code: number;
  try {
    code = await dispatch(argv, ctx);
  } catch (e) {
    code = report(e, argv, ctx);
  }
  await ctx.out.flush();
  await ctx.err.flush();
  return code;
}

async function dispatch(argv: readonly string[], ctx: CliContext): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "-h" || name === "--help" || name === "help") {
    if (name === undefined) {
      ctx.err.line(mainHelp());
      return EXIT_USAGE;
    }
    const topic = name === "help" ? COMMANDS.find((c) => c.name === rest[0]) : undefined;
    ctx.out.line(topic ? topic.help : mainHelp());
    return EXIT_OK;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) throw new UsageError(`unknown command ${JSON.stringify(name)}`);
  return await command.run(rest, ctx);
}

function report(e: unknown, argv: readonly string[], ctx: CliContext): number {
  if (e instanceof UsageError) {
    const command = COMMANDS.find((c) => c.name === argv[0]);
    ctx.err.line(`zonetree: ${e.message}`);
    ctx.err.line(`Run \`zonetree ${command ? command.name + " " : ""}--help\` for usage.`);
    return EXIT_USAGE;
  }
  if (e instanceof ZoneTreeError) {
    ctx.err.line(`zonetree: ${e.message} [${e.code}]`);
    return EXIT_FAILURE;
  }
  ctx.err.line(`zonetree: unexpected error (a bug; please report it with this trace):`);
  ctx.err.line(e instanceof Error ? (e.stack ?? String(e)) : String(e));
  return EXIT_FAILURE;
}

export { EXIT_FAILURE, EXIT_OK, EXIT_USAGE };
