/**
 * ZoneTree for TypeScript: an ordered, durable LSM-tree key-value storage engine for Bun and
 * Deno, with declarative key layouts.
 *
 * @module
 */
export {
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
