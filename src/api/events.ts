/**
 * The tree's event emitter (`tree.events`). Events: "segment-moved", "merge-started",
 * "merge-ended", "disk-segment-created", "error".
 *
 * Invariant: an "error" emitted while nobody listens is kept (bounded) and delivered to the first
 * "error" listener, so problems found while opening (a torn WAL tail) are not lost between
 * `await ZoneTree.open()` and `tree.events.on("error", …)`.
 *
 * @module
 */

import { InvalidOptionError } from "./errors.ts";

/** Names of the events a tree emits. */
export type TreeEventName =
  | "segment-moved"
  | "merge-started"
  | "merge-ended"
  | "disk-segment-created"
  | "error";

/** A listener; the payload depends on the event (an `Error` for "error", an info object otherwise). */
export type TreeEventListener = (payload: unknown) => void;

const PENDING_ERRORS_MAX = 100;

const EVENT_NAMES: readonly string[] = [
  "segment-moved",
  "merge-started",
  "merge-ended",
  "disk-segment-created",
  "error",
];

/** A misspelt event name would never fire: `InvalidOptionError` instead. */
function checkListener(name: unknown, listener: unknown, method: string): void {
  if (typeof name !== "string" || !EVENT_NAMES.includes(name)) {
    throw new InvalidOptionError(
      "name",
      `events.${method}(name, listener): unknown event ${String(name)} (${EVENT_NAMES.join(", ")})`,
    );
  }
  if (typeof listener !== "function") {
    throw new InvalidOptionError(
      "listener",
      `events.${method}(name, listener): listener must be a function, got ${typeof listener}`,
    );
  }
}

/**
 * A small synchronous event emitter: `tree.events`. Payloads: an `Error` for "error" (a torn WAL
 * tail cut on open, a failed background merge), an info object for the others. An "error"
 * emitted while nobody listens is kept and delivered to the first "error" listener.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defineKeyspace, memoryFileSystem, ZoneTree } from "@zonetree/zonetree";
 *
 * const ks = defineKeyspace({ key: "<u64be>", value: "f64" });
 * await using tree = await ZoneTree.open({
 *   dir: "/db", keyspace: ks, fs: memoryFileSystem(), maintenance: "manual",
 * });
 * const seen: string[] = [];
 * tree.events
 *   .on("merge-started", () => seen.push("merge-started"))
 *   .on("merge-ended", () => seen.push("merge-ended"))
 *   .on("error", (e) => console.error("zonetree:", e));
 * tree.upsert(1, 0.5);
 * tree.maintenance.moveMutableSegmentForward();
 * await tree.maintenance.merge();
 * assert.deepEqual(seen, ["merge-started", "merge-ended"]);
 * ```
 */
export class TreeEvents {
  #listeners = new Map<TreeEventName, TreeEventListener[]>();
  #pendingErrors: unknown[] = [];

  /** Adds `listener` for `name`. Returns `this` for chaining. */
  on(name: TreeEventName, listener: TreeEventListener): this {
    checkListener(name, listener, "on");
    const list = this.#listeners.get(name) ?? [];
    list.push(listener);
    this.#listeners.set(name, list);
    if (name === "error" && this.#pendingErrors.length > 0) {
      const pending = this.#pendingErrors;
      this.#pendingErrors = [];
      for (const e of pending) listener(e);
    }
    return this;
  }

  /** Removes `listener` from `name`. Returns `this`. */
  off(name: TreeEventName, listener: TreeEventListener): this {
    checkListener(name, listener, "off");
    const list = this.#listeners.get(name);
    if (list) {
      const i = list.indexOf(listener);
      if (i >= 0) list.splice(i, 1);
    }
    return this;
  }

  /** Calls every listener of `name` with `payload`. A listener that throws does not stop the others. */
  emit(name: TreeEventName, payload: unknown): void {
    const list = this.#listeners.get(name);
    if (!list || list.length === 0) {
      if (name === "error" && this.#pendingErrors.length < PENDING_ERRORS_MAX) {
        this.#pendingErrors.push(payload);
      }
      return;
    }
    for (const listener of [...list]) {
      try {
        listener(payload);
      } catch (e) {
        if (name !== "error") this.emit("error", e);
      }
    }
  }
}
