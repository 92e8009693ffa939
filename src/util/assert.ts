/**
 * Programmer-error checks. An `assert` failure means a bug in the engine, never bad user input:
 * user input gets the typed errors of `src/api/errors.ts`. Assertions are never caught.
 *
 * @module
 */

/** Error thrown when an internal invariant does not hold. */
export class AssertionError extends Error {
  override name = "AssertionError";
}

/**
 * Throws {@link AssertionError} with `message` when `condition` is false. The message is an
 * argument, so a template string is built on every call even when the check passes: on a path
 * that runs per record or per query, write `if (!ok) assert(false, message)` instead, so the
 * message is built only when the check fails.
 */
export function assert(condition: unknown, message = "assertion failed"): asserts condition {
  if (!condition) throw new AssertionError(message);
}
