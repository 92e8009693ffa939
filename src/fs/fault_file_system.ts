/**
 * A `FileSystem` wrapper that injects I/O faults, deterministically: fail the Nth write, sync,
 * rename, open (...) whose path matches a pattern, write only part of a buffer before failing
 * (a short write), or run out of space after a byte budget. Every decision depends only on the
 * plan, the order of calls and the seed, so a failing test reproduces exactly.
 *
 * Injected errors look like OS errors (`code` "EIO" or "ENOSPC") and carry `injected: true`.
 * Counting starts when the wrapper is made; `arm(plan)` replaces the plan and resets counters.
 * Used by tests and by the crash/fault campaigns of issue 7.
 *
 * @module
 */
import { Prng } from "../util/prng.ts";
import type { FileHandle, FileLock, FileStat, FileSystem, OpenFileOptions } from "./file_system.ts";

/** The operations a rule can target. "write" covers `write` and `append`; "sync" both syncs. */
export type FaultOp =
  | "open"
  | "write"
  | "sync"
  | "truncate"
  | "rename"
  | "remove"
  | "syncDir"
  | "link"
  | "any";

/** One fault: the `nth` matching call (1-based) fails, and `count` calls after it too. */
export interface FaultRule {
  /** Which operation. */
  op: FaultOp;
  /** Only calls whose path contains this string (or matches this pattern). Default: all. */
  path?: string | RegExp;
  /** The first matching call that fails (1 = the first). Default 1. */
  nth?: number;
  /** How many consecutive matching calls fail from `nth` on. Default 1; `Infinity` = all. */
  count?: number;
  /** For "write": write a seeded-random strict prefix of the buffer before failing. */
  short?: boolean;
  /** The error code to throw. Default "EIO". */
  code?: string;
}

/** What to inject. */
export interface FaultPlan {
  /** Rules, checked in order; the first one that fires wins. */
  rules?: FaultRule[];
  /** Total bytes that writes may store; the write crossing it stores what fits, then ENOSPC. */
  enospcAfterBytes?: number;
  /** Seed for short-write lengths. Default 0. */
  seed?: number;
}

/** The wrapper: a `FileSystem` plus control and counters. */
export interface FaultFileSystem extends FileSystem {
  /** The wrapped provider. */
  readonly inner: FileSystem;
  /** Faults injected so far (since the last `arm`). */
  readonly injectedCount: number;
  /** Bytes passed to the inner provider by writes (since the last `arm`). */
  readonly bytesWritten: number;
  /** Replaces the plan and resets every counter. */
  arm(plan: FaultPlan): void;
  /** Stops injecting (same as `arm({})`). */
  disarm(): void;
}

/** An injected error: shaped like a Node.js system error. */
export class InjectedFaultError extends Error {
  /** "EIO", "ENOSPC" or the rule's code. */
  readonly code: string;
  /** Always true: tests tell injected faults from real ones. */
  readonly injected = true;
  constructor(code: string, op: string, path: string) {
    super(`${code}: injected fault on ${op} '${path}'`);
    this.code = code;
    this.name = "InjectedFaultError";
  }
}

/**
 * Wraps `inner` so that it fails as `plan` says.
 *
 * @example
 * ```ts
 * import { faultFileSystem } from "./fault_file_system.ts";
 * import { memoryFileSystem } from "./memory_file_system.ts";
 * const fs = faultFileSystem(memoryFileSystem(), { rules: [{ op: "sync", nth: 2 }] });
 * const f = fs.openFile("/a", { create: true });
 * f.sync(); // ok
 * try { f.sync(); } catch (e) { console.assert((e as { code: string }).code === "EIO"); }
 * ```
 */
export function faultFileSystem(inner: FileSystem, plan: FaultPlan = {}): FaultFileSystem {
  return new FaultFs(inner, plan);
}

function matches(rule: FaultRule, op: FaultOp, path: string): boolean {
  if (rule.op !== "any" && rule.op !== op) return false;
  if (rule.path === undefined) return true;
  return typeof rule.path === "string" ? path.includes(rule.path) : rule.path.test(path);
}

class FaultFs implements FaultFileSystem {
  readonly inner: FileSystem;
  injectedCount = 0;
  bytesWritten = 0;
  private plan: FaultPlan = {};
  private seen: number[] = [];
  private prng = new Prng(0);

  constructor(inner: FileSystem, plan: FaultPlan) {
    this.inner = inner;
    this.arm(plan);
  }

  arm(plan: FaultPlan): void {
    this.plan = plan;
    this.seen = (plan.rules ?? []).map(() => 0);
    this.prng = new Prng(plan.seed ?? 0);
    this.injectedCount = 0;
    this.bytesWritten = 0;
  }

  disarm(): void {
    this.arm({});
  }

  /** Counts the call against every matching rule; returns the rule that fires, if any. */
  decide(op: FaultOp, path: string): FaultRule | undefined {
    const rules = this.plan.rules ?? [];
    let fired: FaultRule | undefined;
    for (let i = 0; i < rules.length; i++) {
      const rule = rules[i];
      if (!matches(rule, op, path)) continue;
      const n = ++this.seen[i];
      const first = rule.nth ?? 1;
      if (fired === undefined && n >= first && n < first + (rule.count ?? 1)) fired = rule;
    }
    if (fired !== undefined) this.injectedCount++;
    return fired;
  }

  /** Throws if a rule fires for this call. */
  check(op: FaultOp, path: string): void {
    const rule = this.decide(op, path);
    if (rule !== undefined) throw new InjectedFaultError(rule.code ?? "EIO", op, path);
  }

  /** Runs one write through the rules and the space budget; `store` writes a prefix. */
  write(path: string, buf: Uint8Array, store: (part: Uint8Array) => void): void {
    const rule = this.decide("write", path);
    if (rule !== undefined) {
      if (rule.short && buf.length > 0) {
        this.storeCounted(buf.subarray(0, this.prng.int(buf.length)), store);
      }
      throw new InjectedFaultError(rule.code ?? "EIO", "write", path);
    }
    const limit = this.plan.enospcAfterBytes;
    if (limit !== undefined && this.bytesWritten + buf.length > limit) {
      this.storeCounted(buf.subarray(0, Math.max(0, limit - this.bytesWritten)), store);
      this.injectedCount++;
      throw new InjectedFaultError("ENOSPC", "write", path);
    }
    this.storeCounted(buf, store);
  }

  private storeCounted(part: Uint8Array, store: (part: Uint8Array) => void): void {
    if (part.length === 0) return;
    store(part);
    this.bytesWritten += part.length;
  }

  openFile(path: string, options?: OpenFileOptions): FileHandle {
    this.check("open", path);
    return new FaultHandle(this, this.inner.openFile(path, options));
  }

  stat(path: string): FileStat | undefined {
    return this.inner.stat(path);
  }

  readFile(path: string): Uint8Array {
    return this.inner.readFile(path);
  }

  list(dir: string): string[] {
    return this.inner.list(dir);
  }

  mkdirp(dir: string): void {
    this.inner.mkdirp(dir);
  }

  rename(from: string, to: string): void {
    this.check("rename", from);
    this.inner.rename(from, to);
  }

  remove(path: string): void {
    this.check("remove", path);
    this.inner.remove(path);
  }

  removeDir(path: string): void {
    this.inner.removeDir(path);
  }

  syncDir(dir: string): void {
    this.check("syncDir", dir);
    this.inner.syncDir(dir);
  }

  /** `openFile` (faults included), one turn later. */
  openFileAsync(path: string, options?: OpenFileOptions): Promise<FileHandle> {
    return Promise.resolve().then(() => this.openFile(path, options));
  }

  /** `syncDir` (faults included), one turn later. */
  syncDirAsync(dir: string): Promise<void> {
    return Promise.resolve().then(() => this.syncDir(dir));
  }

  link(from: string, to: string): void {
    this.check("link", to);
    this.inner.link(from, to);
  }

  lock(path: string): FileLock {
    return this.inner.lock(path);
  }
}

class FaultHandle implements FileHandle {
  readonly path: string;
  constructor(private readonly fs: FaultFs, private readonly inner: FileHandle) {
    this.path = inner.path;
  }

  size(): number {
    return this.inner.size();
  }

  read(buf: Uint8Array, position: number, length?: number): number {
    return this.inner.read(buf, position, length);
  }

  write(buf: Uint8Array, position: number): void {
    this.fs.write(this.path, buf, (part) => this.inner.write(part, position));
  }

  append(buf: Uint8Array): void {
    this.fs.write(this.path, buf, (part) => this.inner.append(part));
  }

  sync(): void {
    this.fs.check("sync", this.path);
    this.inner.sync();
  }

  syncAsync(): Promise<void> {
    try {
      this.fs.check("sync", this.path);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.inner.syncAsync();
  }

  truncate(size: number): void {
    this.fs.check("truncate", this.path);
    this.inner.truncate(size);
  }

  close(): void {
    this.inner.close();
  }
}
