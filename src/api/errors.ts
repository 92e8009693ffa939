/**
 * The typed errors of API.md §7. Every operating error (bad input, I/O, corruption, conflicts,
 * locks) is one of these, with a stable `code` that tests and users match on, a message that
 * names the thing and the value, and the original error as `cause` where there is one.
 *
 * @module
 */

/**
 * Base class of every error the engine throws on purpose. Each subclass has a stable `code`
 * (`SchemaError` `SCHEMA`, `KeyEncodingError` `KEY_ENCODING`, `ValueEncodingError`
 * `VALUE_ENCODING`, `InvalidOptionError` `INVALID_OPTION`, `ComparerMismatchError`
 * `COMPARER_MISMATCH`, `DatabaseNotFoundError` `DATABASE_NOT_FOUND`,
 * `DatabaseAlreadyExistsError` `DATABASE_ALREADY_EXISTS`, `DatabaseLockedError`
 * `DATABASE_LOCKED`, `CorruptionError` `CORRUPTION`, `TransactionConflictError`
 * `TRANSACTION_CONFLICT`, `ReadOnlyError` `READ_ONLY`, `ClosedError` `CLOSED`, `IOError` `IO`,
 * `ChangeFeedGapError` `CHANGE_FEED_GAP`), a message that names the thing and the value, and
 * the underlying error as `cause` where there is one. Match on the class or on `code`.
 *
 * @example Matching errors by class and by code
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   DatabaseNotFoundError,
 *   defineKeyspace,
 *   KeyEncodingError,
 *   memoryFileSystem,
 *   ZoneTree,
 *   ZoneTreeError,
 * } from "@zonetree/zonetree";
 *
 * const readings = defineKeyspace({ key: "sensor:<str>:ts:<u64be>", value: "f64" });
 * const fs = memoryFileSystem();
 * await assert.rejects(
 *   ZoneTree.open({ dir: "/nothing-here", keyspace: readings, fs, mode: "open" }),
 *   DatabaseNotFoundError,
 * );
 *
 * await using tree = await ZoneTree.open({ dir: "/db", keyspace: readings, fs });
 * try {
 *   tree.upsert({ sensor: "s-1", ts: -1 }, 20); // u64be: below 0
 *   assert.fail("unreachable");
 * } catch (e) {
 *   assert.ok(e instanceof ZoneTreeError && e instanceof KeyEncodingError);
 *   assert.equal(e.code, "KEY_ENCODING");
 *   assert.equal(e.field, "ts"); // the message names the field and the value
 * }
 * assert.equal(tree.count(), 0); // nothing was written
 * ```
 */
export class ZoneTreeError extends Error {
  /** Stable machine-readable code, e.g. `"KEY_ENCODING"`. */
  readonly code: string;

  /** Creates the error; `options.cause` keeps the underlying error. */
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A keyspace definition or schema file is invalid. */
export class SchemaError extends ZoneTreeError {
  /** Creates the error; `options.cause` keeps the underlying error. */
  constructor(message: string, options?: { cause?: unknown }) {
    super("SCHEMA", message, options);
  }
}

/** A key (or prefix) does not fit the keyspace: wrong type, range, length, missing/extra field. */
export class KeyEncodingError extends ZoneTreeError {
  /** The field that was wrong, when one can be named. */
  readonly field: string | undefined;
  /** Creates the error; `options.cause` keeps the underlying error. */
  constructor(message: string, field?: string, options?: { cause?: unknown }) {
    super("KEY_ENCODING", message, options);
    this.field = field;
  }
}

/** A value cannot be encoded (or decoded) by the keyspace's value codec. */
export class ValueEncodingError extends ZoneTreeError {
  /** Creates the error; `options.cause` keeps the underlying error. */
  constructor(message: string, options?: { cause?: unknown }) {
    super("VALUE_ENCODING", message, options);
  }
}

/** An option passed to the engine is invalid. */
export class InvalidOptionError extends ZoneTreeError {
  /** The option's name. */
  readonly option: string;
  /** Creates the error; `options.cause` keeps the underlying error. */
  constructor(option: string, message: string, options?: { cause?: unknown }) {
    super("INVALID_OPTION", message, options);
    this.option = option;
  }
}

/** The stored keyspace identity differs from the one the tree is opened with. */
export class ComparerMismatchError extends ZoneTreeError {
  /** Identity stored in the database metadata. */
  readonly storedIdentity: string;
  /** Identity of the keyspace passed to `open`. */
  readonly givenIdentity: string;
  /** Creates the error; `options.cause` keeps the underlying error. */
  constructor(storedIdentity: string, givenIdentity: string, dir: string) {
    super(
      "COMPARER_MISMATCH",
      `database ${dir} was created with keyspace identity ${storedIdentity}, ` +
        `but was opened with ${givenIdentity}`,
    );
    this.storedIdentity = storedIdentity;
    this.givenIdentity = givenIdentity;
  }
}

/** `mode: "open"` was asked for a directory that holds no database. */
export class DatabaseNotFoundError extends ZoneTreeError {
  /** Creates the error; `options.cause` keeps the underlying error. */
  constructor(message: string, options?: { cause?: unknown }) {
    super("DATABASE_NOT_FOUND", message, options);
  }
}

/** `mode: "create"` was asked for a directory that already holds a database. */
export class DatabaseAlreadyExistsError extends ZoneTreeError {
  /** Creates the error; `options.cause` keeps the underlying error. */
  constructor(message: string, options?: { cause?: unknown }) {
    super("DATABASE_ALREADY_EXISTS", message, options);
  }
}

/** The data directory is held open by another process (or another tree in this process). */
export class DatabaseLockedError extends ZoneTreeError {
  /** Creates the error; `options.cause` keeps the underlying error. */
  constructor(message: string, options?: { cause?: unknown }) {
    super("DATABASE_LOCKED", message, options);
  }
}

/** Stored bytes fail a checksum or a structural check. Names the file and the byte offset. */
export class CorruptionError extends ZoneTreeError {
  /** The file the corruption was found in. */
  readonly file: string;
  /** Byte offset in the file where the bad data starts. */
  readonly offset: number;
  /** Creates the error; `options.cause` keeps the underlying error. */
  constructor(file: string, offset: number, what: string, options?: { cause?: unknown }) {
    super("CORRUPTION", `corruption in ${file} at offset ${offset}: ${what}`, options);
    this.file = file;
    this.offset = offset;
  }
}

/** A transaction's read or write set was written by someone else before it committed. */
export class TransactionConflictError extends ZoneTreeError {
  /** Creates the error; `options.cause` keeps the underlying error. */
  constructor(message: string, options?: { cause?: unknown }) {
    super("TRANSACTION_CONFLICT", message, options);
  }
}

/** A write was attempted on a tree opened with `readOnly: true` (or stopped after an I/O fault). */
export class ReadOnlyError extends ZoneTreeError {
  /** Creates the error; `options.cause` keeps the underlying error. */
  constructor(message: string, options?: { cause?: unknown }) {
    super("READ_ONLY", message, options);
  }
}

/** The tree, iterator or transaction was already closed, disposed or finished. */
export class ClosedError extends ZoneTreeError {
  /** Creates the error; `options.cause` keeps the underlying error. */
  constructor(message: string, options?: { cause?: unknown }) {
    super("CLOSED", message, options);
  }
}

/** An I/O operation failed (the OS error is the `cause`). */
export class IOError extends ZoneTreeError {
  /** Creates the error; `options.cause` keeps the underlying error. */
  constructor(message: string, options?: { cause?: unknown }) {
    super("IO", message, options);
  }
}

/**
 * `tree.changes(since)` was asked for writes that the change feed no longer retains (`since` is
 * below the floor: the highest opIndex dropped from retention). The consumer must resync from a
 * full copy, then follow the feed from that copy's opIndex.
 */
export class ChangeFeedGapError extends ZoneTreeError {
  /** The opIndex the consumer asked to continue after. */
  readonly since: number;
  /** The highest opIndex no longer retained; `changes(floor)` and above work. */
  readonly floor: number;
  /** Creates the error; `options.cause` keeps the underlying error. */
  constructor(since: number, floor: number, message: string, options?: { cause?: unknown }) {
    super("CHANGE_FEED_GAP", message, options);
    this.since = since;
    this.floor = floor;
  }
}
