/**
 * ZoneTree for TypeScript: an ordered, durable LSM-tree key-value storage engine for Bun and
 * Deno, with declarative key layouts.
 *
 * A keyspace compiles a key template such as `sensor:<str>:ts:<u64be>` into order-preserving
 * encoders and a comparer; a tree stores records in that order across a write-ahead log,
 * in-memory segments and disk segments.
 *
 * @example Define a key layout, open a tree, write, scan latest-first
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineKeyspace, memoryFileSystem, ZoneTree } from "@zonetree/zonetree";
 *
 * const readings = defineKeyspace({
 *   key: "sensor:<str>:ts:<u64be>",
 *   value: { temp: "f64", humidity: "f32" },
 * });
 * // memoryFileSystem() keeps this example in memory; leave `fs` out to store local files.
 * await using tree = await ZoneTree.open({ dir: "/db", keyspace: readings, fs: memoryFileSystem() });
 * tree.upsert({ sensor: "s-7", ts: 1700000000000n }, { temp: 21.5, humidity: 40 });
 * tree.upsert(["s-7", 1700000060000n], { temp: 21.7, humidity: 41 });
 * const latest = [...tree.range({ prefix: { sensor: "s-7" }, reverse: true, limit: 10 })];
 * assert.deepEqual(latest.map(([key, value]) => [key.ts, value.temp]), [
 *   [1700000060000n, 21.7],
 *   [1700000000000n, 21.5],
 * ]);
 * ```
 *
 * @module
 */
export {
  ChangeFeedGapError,
  ClosedError,
  ComparerMismatchError,
  CorruptionError,
  DatabaseAlreadyExistsError,
  DatabaseLockedError,
  DatabaseNotFoundError,
  InvalidOptionError,
  IOError,
  KeyEncodingError,
  ReadOnlyError,
  SchemaError,
  TransactionConflictError,
  ValueEncodingError,
  ZoneTreeError,
} from "./src/api/errors.ts";
export {
  type AddOrUpdateResult,
  type BatchOp,
  type Change,
  type OpenOptions,
  type RangeBounds,
  type RangeOptions,
  type TreeMaintenance,
  type TreeStats,
  type WriteOptions,
  ZoneTree,
} from "./src/api/zone_tree.ts";
export type {
  CompressionMode,
  DiskSegmentMode,
  MaintenanceMode,
  OpenMode,
  WalMode,
} from "./src/api/options.ts";
export { TreeIterator, type TreeIteratorOptions } from "./src/api/tree_iterator.ts";
export { Transaction } from "./src/api/transaction.ts";
export { type TreeEventListener, type TreeEventName, TreeEvents } from "./src/api/events.ts";
export {
  type AnyKey,
  type AnyKeyInput,
  type AnyKeyspace,
  type CustomValueCodec,
  defineKeyspace,
  jsonValue,
  type KeyBound,
  type KeyCodec,
  type KeyField,
  type KeyFieldType,
  type KeyInputOf,
  type KeyOf,
  type Keyspace,
  type KeyspaceDefinition,
  keyspaceFromSpec,
  type KeyspaceLayout,
  type KeyspaceSpec,
  type PrefixOf,
  type ValueCodec,
  type ValueCodecSpec,
  type ValueOf,
} from "./src/keyspace/define_keyspace.ts";
export { loadKeyspace, parseKeyspaceSchema } from "./src/keyspace/schema_file.ts";
export type {
  BigWord,
  DigitChar,
  HasDuplicateName,
  IntWord,
  InvalidTemplate,
  IsWordChar,
  JsonSpec,
  KeyFieldIn,
  KeyFieldOut,
  KeyInputOfTemplate,
  KeyObjectIn,
  KeyObjectOut,
  KeyOfTemplate,
  KeyPrefixes,
  KeyScalar,
  KeyTupleIn,
  KeyTypeWord,
  NameFromLiteral,
  NonWordAscii,
  PlaceholderOf,
  PlaceholderTailOk,
  PositiveIntText,
  PrefixOfTemplate,
  ScalarValueOf,
  Simplify,
  SplitTokens,
  StructSpec,
  TemplateCheck,
  TemplateEntry,
  TemplateFields,
  TrailingWord,
  ValueOfSpec,
  ValueScalarType,
  WalkTemplate,
} from "./src/keyspace/template_types.ts";
export type { ValueSpecJson } from "./src/keyspace/value_codec.ts";
export type {
  FileHandle,
  FileLock,
  FileStat,
  FileSystem,
  OpenFileOptions,
  SyncTicket,
} from "./src/fs/file_system.ts";
export { localFileSystem } from "./src/fs/local_file_system.ts";
export {
  type CrashOptions,
  type MemoryFileSystem,
  memoryFileSystem,
} from "./src/fs/memory_file_system.ts";
export {
  type ApplyResult,
  replicaStateKeyspace,
  type ReplicaStateTree,
  replicate,
  type ReplicateOptions,
  Replicator,
} from "./src/systems/replicator.ts";
export {
  type PartitionBy,
  PartitionedTree,
  type PartitionedTreeOptions,
  timeBucket,
} from "./src/systems/partitioned_tree.ts";
