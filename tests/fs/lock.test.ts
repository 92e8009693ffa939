// The local lock file: exclusive per process and across processes; stale locks are taken over.
import { afterEach, beforeEach, expect, test } from "bun:test";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import { localFileSystem } from "../../src/fs/local_file_system.ts";

let dir: string;
beforeEach(() => (dir = nodeFs.mkdtempSync(`${os.tmpdir()}/zt-lock-`)));
afterEach(() => nodeFs.rmSync(dir, { recursive: true, force: true }));

const modulePath = new URL("../../src/fs/local_file_system.ts", import.meta.url).pathname;

/** Starts a bun child that takes the lock and sleeps; resolves once it holds the lock. */
async function childHoldingLock(lockPath: string) {
  const script = `import { localFileSystem } from ${JSON.stringify(modulePath)};
localFileSystem().lock(${JSON.stringify(lockPath)});
console.log("locked");
setInterval(() => {}, 1000);`;
  const child = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "inherit" });
  const reader = child.stdout.getReader();
  let text = "";
  while (!text.includes("locked")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`child exited before locking: ${text}`);
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return child;
}

test("a second lock in the same process is DatabaseLockedError", () => {
  const a = localFileSystem().lock(`${dir}/lock`);
  expect(() => localFileSystem().lock(`${dir}/./lock`)).toThrow(
    expect.objectContaining({ code: "DATABASE_LOCKED" }),
  );
  a.release();
});

test("a lock held by a live process is DatabaseLockedError naming the dir and pid", async () => {
  const child = await childHoldingLock(`${dir}/lock`);
  try {
    let err: unknown;
    try {
      localFileSystem().lock(`${dir}/lock`);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: "DATABASE_LOCKED" });
    expect(String((err as Error).message)).toContain(dir);
    expect(String((err as Error).message)).toContain(String(child.pid));
  } finally {
    child.kill(9);
    await child.exited;
  }
});

test("a lock left by a process killed with SIGKILL is taken over", async () => {
  const child = await childHoldingLock(`${dir}/lock`);
  child.kill(9);
  await child.exited;
  expect(nodeFs.existsSync(`${dir}/lock`)).toBe(true);
  const lock = localFileSystem().lock(`${dir}/lock`);
  expect(nodeFs.readFileSync(`${dir}/lock`, "utf8")).toStartWith(`${process.pid} `);
  lock.release();
  expect(nodeFs.existsSync(`${dir}/lock`)).toBe(false);
  expect(nodeFs.readdirSync(dir)).toEqual([]);
});

test("an empty lock file is respected while fresh and taken over once old", () => {
  nodeFs.writeFileSync(`${dir}/lock`, "");
  expect(() => localFileSystem().lock(`${dir}/lock`)).toThrow(
    expect.objectContaining({ code: "DATABASE_LOCKED" }),
  );
  const old = new Date(Date.now() - 60_000);
  nodeFs.utimesSync(`${dir}/lock`, old, old);
  localFileSystem().lock(`${dir}/lock`).release();
});

test("a lock written before a reboot is stale even if its pid runs now", () => {
  nodeFs.writeFileSync(`${dir}/lock`, `1 abcd not-this-boot\n`);
  localFileSystem().lock(`${dir}/lock`).release();
});

test("release leaves a lock that someone else took over", () => {
  const lock = localFileSystem().lock(`${dir}/lock`);
  nodeFs.writeFileSync(`${dir}/lock`, "1 ffff x\n");
  lock.release();
  expect(nodeFs.existsSync(`${dir}/lock`)).toBe(true);
});
