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

/** Throws {@link AssertionError} with `message` when `condition` is false. */
export function assert(condition: unknown, message = "assertion failed"): asserts condition {
  if (!condition) throw new AssertionError(message);
}
