/**
 * Validation of `ZoneTree.open` options (API.md §2). Every option is checked before anything is
 * touched on disk; a bad one is an `InvalidOptionError` naming the option and the value. Unknown
 * option names are rejected too, so a typo does not silently fall back to a default.
 *
 * @module
 */
import { InvalidOptionError } from "./errors.ts";
import type { FileSystem } from "../fs/file_system.ts";
import { DEFAULT_BLOCK_SIZE_BYTES } from "../disk/format.ts";

/** How `open` treats an existing or missing database. */
export type OpenMode = "open-or-create" | "create" | "open";
/** Write-ahead log modes (API.md §6). */
export type WalMode = "async-compressed" | "sync-compressed" | "sync" | "none";
/** Background maintenance: automatic, or only when asked through `tree.maintenance`. */
export type MaintenanceMode = "auto" | "manual";
/** Disk segment modes: multipart (default) or one part. */
export type DiskSegmentMode = "multipart" | "single";
/** Block compression of disk segments. */
export type CompressionMode = "lz4" | "none";

/** Engine options after validation, with every default filled in. */
export interface EngineOptions {
  dir: string;
  mode: OpenMode;
  wal: WalMode;
  readOnly: boolean;
  maintenance: MaintenanceMode;
  fs: FileSystem | undefined;
  mutableSegmentMaxItemCount: number;
  mutableSegmentMaxBytes: number;
  diskSegmentMaxItemCount: number;
  diskSegmentMode: DiskSegmentMode;
  multipartMinItemCount: number;
  multipartMaxItemCount: number;
  compression: CompressionMode;
  sparseStep: number;
  blockSizeBytes: number;
  blockCacheMaxBytes: number;
  repair: boolean;
  /** Bytes of merged WAL files kept for the change feed (0 = keep none). */
  changeFeedRetentionBytes: number;
}

/** Defaults of every tuning option. */
export const DEFAULT_OPTIONS: Omit<EngineOptions, "dir" | "fs"> = {
  mode: "open-or-create",
  wal: "async-compressed",
  readOnly: false,
  maintenance: "auto",
  mutableSegmentMaxItemCount: 1_000_000,
  mutableSegmentMaxBytes: 64 * 1024 * 1024,
  diskSegmentMaxItemCount: 20_000_000,
  diskSegmentMode: "multipart",
  multipartMinItemCount: 1_500_000,
  multipartMaxItemCount: 3_000_000,
  compression: "lz4",
  sparseStep: 1024,
  blockSizeBytes: DEFAULT_BLOCK_SIZE_BYTES,
  blockCacheMaxBytes: 64 * 1024 * 1024,
  repair: false,
  changeFeedRetentionBytes: 0,
};

const ENUMS: Record<string, readonly string[]> = {
  mode: ["open-or-create", "create", "open"],
  wal: ["async-compressed", "sync-compressed", "sync", "none"],
  maintenance: ["auto", "manual"],
  diskSegmentMode: ["multipart", "single"],
  compression: ["lz4", "none"],
};

/** Integer options with their inclusive minimum and maximum. */
const INTEGERS: Record<string, [number, number]> = {
  mutableSegmentMaxItemCount: [1, 1_000_000_000],
  mutableSegmentMaxBytes: [1024, 2 ** 40],
  diskSegmentMaxItemCount: [1, 2 ** 40],
  multipartMinItemCount: [1, 2 ** 40],
  multipartMaxItemCount: [1, 2 ** 40],
  sparseStep: [0, 2 ** 30],
  blockSizeBytes: [256, 64 * 1024 * 1024],
  blockCacheMaxBytes: [0, 2 ** 44],
  changeFeedRetentionBytes: [0, 2 ** 50],
};

const BOOLEANS = ["readOnly", "repair"];
const OTHERS = ["dir", "keyspace", "fs"];

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n`;
  if (value === null || typeof value !== "object") return String(value);
  return Array.isArray(value) ? "an array" : "an object";
}

function bad(option: string, value: unknown, expected: string): never {
  throw new InvalidOptionError(option, `option "${option}": ${describe(value)} is not ${expected}`);
}

/**
 * Validates raw options (everything but `keyspace`, which the facade checks) and fills defaults.
 * Throws `InvalidOptionError` naming the first bad option.
 */
export function validateOptions(raw: unknown): EngineOptions {
  if (raw === null || typeof raw !== "object") bad("options", raw, "an options object");
  const input = raw as Record<string, unknown>;
  for (const name of Object.keys(input)) {
    if (
      !(name in ENUMS) && !(name in INTEGERS) && !BOOLEANS.includes(name) && !OTHERS.includes(name)
    ) {
      throw new InvalidOptionError(name, `unknown option "${name}"`);
    }
  }
  const out = { ...DEFAULT_OPTIONS } as EngineOptions;
  const dir = input.dir;
  if (typeof dir !== "string" || dir.length === 0) bad("dir", dir, "a non-empty directory path");
  out.dir = dir;
  for (const [name, allowed] of Object.entries(ENUMS)) {
    const v = input[name];
    if (v === undefined) continue;
    if (typeof v !== "string" || !allowed.includes(v)) {
      bad(name, v, `one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}`);
    }
    (out as unknown as Record<string, unknown>)[name] = v;
  }
  for (const [name, [min, max]] of Object.entries(INTEGERS)) {
    const v = input[name];
    if (v === undefined) continue;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      bad(name, v, `an integer from ${min} to ${max}`);
    }
    (out as unknown as Record<string, unknown>)[name] = v;
  }
  for (const name of BOOLEANS) {
    const v = input[name];
    if (v === undefined) continue;
    if (typeof v !== "boolean") bad(name, v, "a boolean");
    (out as unknown as Record<string, unknown>)[name] = v;
  }
  if (out.multipartMinItemCount > out.multipartMaxItemCount) {
    bad(
      "multipartMinItemCount",
      out.multipartMinItemCount,
      `at most multipartMaxItemCount (${out.multipartMaxItemCount})`,
    );
  }
  out.fs = validateFs(input.fs);
  return out;
}

function validateFs(fs: unknown): FileSystem | undefined {
  if (fs === undefined) return undefined;
  const methods = ["openFile", "stat", "readFile", "list", "mkdirp", "rename", "remove", "syncDir"];
  if (fs === null || typeof fs !== "object") bad("fs", fs, "a FileSystem provider");
  for (const m of methods) {
    if (typeof (fs as Record<string, unknown>)[m] !== "function") {
      bad("fs", fs, `a FileSystem provider (it has no ${m}() method)`);
    }
  }
  return fs as FileSystem;
}

/**
 * Throws `InvalidOptionError` naming the first property of `options` (own or inherited,
 * enumerable) that is not in `allowed`: `` `${fn}(options): unknown option "x"` ``. For the
 * read calls' options (`range`, `keys`, `count`, `iterator`); runs once per call, so it makes
 * no array of the names and builds its message only when it throws.
 */
export function checkOptionNames(options: object, allowed: readonly string[], fn: string): void {
  for (const name in options) {
    if (!allowed.includes(name)) {
      throw new InvalidOptionError(name, `${fn}(options): unknown option "${name}"`);
    }
  }
}

/**
 * Whether option `name` of call `fn` is `true`; throws `InvalidOptionError` unless `v` is
 * undefined or a boolean (`` `${fn}(options): reverse 1 is not a boolean` ``).
 */
export function checkBooleanOption(v: unknown, name: string, fn: string): boolean {
  if (v !== undefined && typeof v !== "boolean") {
    throw new InvalidOptionError(name, `${fn}(options): ${name} ${String(v)} is not a boolean`);
  }
  return v === true;
}
