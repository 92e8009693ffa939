/** `npm run stress` keeps working: one short round of the campaign driver, in a child process. */
import { expect, test } from "bun:test";

test("the stress driver runs a round, prints its totals and exits 0", async () => {
  const script = new URL("./stress.ts", import.meta.url).pathname;
  const child = Bun.spawn(
    [process.execPath, script, "--rounds", "1", "--cycles", "2", "--kind", "sync", "--seed", "7"],
    { stdout: "pipe", stderr: "pipe" },
  );
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  expect(code, stdout + stderr).toBe(0);
  expect(stdout).toMatch(/round 0 sync seed 7: 2 cycles/);
  expect(stdout).toMatch(/cycles 2, .* lost 0/);
}, 60_000);
