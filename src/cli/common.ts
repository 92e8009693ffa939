/**
 * What every `zonetree` command shares: the argument parser (argv parsed by hand, no
 * dependencies), buffered output with backpressure, number and size formatting, aligned tables,
 * the exit codes and the usage error.
 *
 * Invariants: a command never calls `process.exit`; it returns an exit code, and the entry point
 * sets it after every buffered line was written. Usage errors are found before any file is
 * opened. Called by `src/cli/main.ts` and each command module.
 *
 * @module
 */
import process from "node:process";

/** Exit codes (documented in `zonetree --help`). */
export const EXIT_OK = 0;
/** Not found, corruption found, or an operating error (locked, I/O, ...). */
export const EXIT_FAILURE = 1;
/** Bad command line. */
export const EXIT_USAGE = 2;

/** A bad command line: printed as `zonetree: <message>` plus a hint, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** How a flag takes its value. */
export type FlagKind = "boolean" | "value" | "list";

/** A parsed command line: positionals in order, flags by name (without the dashes). */
export interface ParsedArgs {
  positionals: string[];
  flags: Map<string, true | string | string[]>;
  help: boolean;
}

/** True when `arg` is a flag: `--name` or `-h` (a `-` before a digit is a negative number). */
function isFlag(arg: string): boolean {
  return arg.startsWith("--") || /^-[a-zA-Z]/.test(arg);
}

/**
 * Parses `argv` against `spec` (flag name -> kind). `--name value` and `--name=value` both work;
 * a list flag takes every following argument up to the next flag; `--` ends the flags; `-h` and
 * `--help` set `help`. Throws UsageError for an unknown flag or a missing value.
 */
export function parseArgs(
  argv: readonly string[],
  spec: Readonly<Record<string, FlagKind>>,
): ParsedArgs {
  const out: ParsedArgs = { positionals: [], flags: new Map(), help: false };
  let i = 0;
  while (i < argv.length) {
    const arg = argv[i++];
    if (arg === "--") {
      out.positionals.push(...argv.slice(i));
      break;
    }
    if (arg === "-h" || arg === "--help") {
      out.help = true;
      continue;
    }
    if (!isFlag(arg)) {
      out.positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(arg.startsWith("--") ? 2 : 1, eq < 0 ? undefined : eq);
    const inline = eq < 0 ? undefined : arg.slice(eq + 1);
    const kind = spec[name];
    if (kind === undefined) {
      throw new UsageError(`unknown option ${arg.slice(0, eq < 0 ? undefined : eq)}`);
    }
    if (out.flags.has(name)) throw new UsageError(`option --${name} given twice`);
    if (kind === "boolean") {
      if (inline !== undefined) throw new UsageError(`option --${name} takes no value`);
      out.flags.set(name, true);
    } else if (kind === "value") {
      const value = inline ?? (i < argv.length && !isFlag(argv[i]) ? argv[i++] : undefined);
      if (value === undefined) throw new UsageError(`option --${name} needs a value`);
      out.flags.set(name, value);
    } else {
      const values: string[] = inline === undefined ? [] : [inline];
      while (i < argv.length && !isFlag(argv[i])) values.push(argv[i++]);
      if (values.length === 0) throw new UsageError(`option --${name} needs at least one value`);
      out.flags.set(name, values);
    }
  }
  return out;
}

/** The flag's value as an integer in [min, max], or `fallback` when absent. */
export function intFlag(
  args: ParsedArgs,
  name: string,
  min: number,
  max: number,
  fallback: number,
): number {
  const raw = args.flags.get(name);
  if (raw === undefined) return fallback;
  const text = String(raw);
  const n = /^[0-9][0-9_]*$/.test(text) ? Number(text.replaceAll("_", "")) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(
      `option --${name}: ${JSON.stringify(text)} is not an integer in ${min}..${formatCount(max)}`,
    );
  }
  return n;
}

/** The flag's string value, or undefined. */
export function stringFlag(args: ParsedArgs, name: string): string | undefined {
  const raw = args.flags.get(name);
  return typeof raw === "string" ? raw : undefined;
}

/** The flag's list of values, or undefined. */
export function listFlag(args: ParsedArgs, name: string): string[] | undefined {
  const raw = args.flags.get(name);
  return Array.isArray(raw) ? raw : undefined;
}

/** Exactly `count` positionals (named in `names` for the message), else a UsageError. */
export function positionals(
  args: ParsedArgs,
  names: readonly string[],
  variadic = false,
): string[] {
  const got = args.positionals;
  if (got.length < names.length) {
    throw new UsageError(`missing ${names.slice(got.length).map((n) => `<${n}>`).join(" ")}`);
  }
  if (!variadic && got.length > names.length) {
    throw new UsageError(`unexpected argument ${JSON.stringify(got[names.length])}`);
  }
  return got;
}

// -------------------------------------------------------------------------------------------------
// Output

/** Text written when this many characters are buffered (and awaited: pipes apply backpressure). */
const OUTPUT_CHUNK_CHARS = 64 * 1024;

/** The part of a Node-style writable stream that `Output` uses (process.stdout in Bun and Deno). */
export interface WriteStreamLike {
  isTTY?: boolean;
  columns?: number;
  write(text: string, callback?: (error?: Error | null) => void): boolean;
  on?(event: "error", listener: (error: Error) => void): unknown;
}

/** Where a command writes: stdout or stderr, buffered, with the write awaited per chunk. */
export class Output {
  #pending: string[] = [];
  #pendingChars = 0;
  #broken = false;
  /** True when the stream is a terminal (progress bars and colours only then). */
  readonly isTTY: boolean;

  constructor(private readonly stream: WriteStreamLike) {
    this.isTTY = stream.isTTY === true;
    // A reader that went away (`zonetree scan db | head`) is not an error of ours.
    stream.on?.("error", () => {
      this.#broken = true;
    });
  }

  /** Width of the terminal (80 when unknown). */
  get columns(): number {
    const c = this.stream.columns;
    return typeof c === "number" && c > 0 ? c : 80;
  }

  /** True once the reader closed the pipe: commands stop producing output. */
  get broken(): boolean {
    return this.#broken;
  }

  /** Buffers `text` plus a newline; call `flush` (or `lineAsync`) to write it out. */
  line(text = ""): void {
    this.write(text + "\n");
  }

  /** Buffers `text` as is. */
  write(text: string): void {
    this.#pending.push(text);
    this.#pendingChars += text.length;
  }

  /** Buffers a line and writes the buffer out once it is large. */
  async lineAsync(text: string): Promise<void> {
    this.line(text);
    if (this.#pendingChars >= OUTPUT_CHUNK_CHARS) await this.flush();
  }

  /** Writes what is buffered and waits until the stream took it. */
  flush(): Promise<void> {
    if (this.#pending.length === 0) return Promise.resolve();
    const text = this.#pending.join("");
    this.#pending = [];
    this.#pendingChars = 0;
    if (this.#broken) return Promise.resolve();
    return new Promise((resolve) => {
      this.stream.write(text, (e?: Error | null) => {
        if (e) this.#broken = true;
        resolve();
      });
    });
  }

  /** Writes `text` at once, unbuffered (progress bars). */
  now(text: string): void {
    if (!this.#broken) this.stream.write(text);
  }
}

/** The streams and storage a command runs with. */
export interface CliContext {
  out: Output;
  err: Output;
}

/** A context writing to the process's stdout and stderr. */
export function processContext(): CliContext {
  return { out: new Output(process.stdout), err: new Output(process.stderr) };
}

/** One command of the CLI. */
export interface Command {
  /** The command word. */
  name: string;
  /** One line for `zonetree --help`. */
  summary: string;
  /** The full `zonetree <name> --help` text. */
  help: string;
  /** Runs the command; returns the exit code. */
  run(argv: readonly string[], ctx: CliContext): Promise<number>;
}

// -------------------------------------------------------------------------------------------------
// Formatting

/** `1234567` -> `1,234,567`. */
export function formatCount(n: number): string {
  const [int, frac] = String(Math.round(n * 100) / 100).split(".");
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return frac === undefined ? grouped : `${grouped}.${frac}`;
}

/** `9541234` -> `9.1 MiB` (binary units, one decimal). */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

/** `1234.5` ms -> `1.23 s`; below a second in ms. */
export function formatDuration(ms: number): string {
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} min ${Math.round((ms - m * 60_000) / 1000)} s`;
}

/** `count` per `ms` as a rounded count per second: `104,344`. */
export function formatRate(count: number, ms: number): string {
  return formatCount(Math.round(count / Math.max(ms, 0.001) * 1000));
}

/**
 * Aligns `rows` into columns separated by two spaces. `right` lists the columns to right-align
 * (numbers). Trailing spaces are trimmed. Returns the lines.
 */
export function table(
  rows: readonly (readonly string[])[],
  right: readonly number[] = [],
  indent = "",
): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  }
  return rows.map((row) =>
    indent +
    row.map((cell, i) => (right.includes(i) ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
      .join("  ").trimEnd()
  );
}
