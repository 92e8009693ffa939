/**
 * The secondary-index example: it runs as a script; 20 async tasks racing on 30 users (every
 * change spans an await between its reads and its commit) leave the index exactly consistent
 * with the primary records, also after a reopen; queries through the index equal a filter over
 * the primary records.
 */
import { afterAll, expect, test } from "bun:test";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import { spawnSync } from "node:child_process";
import { UserStore } from "../../examples/secondary_index.ts";
import { Prng } from "../../src/util/prng.ts";

const SEED = Number(process.env.ZT_SEED ?? Date.now() % 100_000);
const root = nodeFs.mkdtempSync(`${os.tmpdir()}/zt-secondary-index-`);
afterAll(() => nodeFs.rmSync(root, { recursive: true, force: true }));

test("examples/secondary_index.ts runs as a script", () => {
  const run = spawnSync(process.execPath, [
    new URL("../../examples/secondary_index.ts", import.meta.url).pathname,
    `${root}/script`,
  ], { encoding: "utf8", timeout: 30_000 });
  expect(run.stderr).toBe("");
  expect(run.status).toBe(0);
  expect(run.stdout).toContain("Oslo: Ada");
  expect(run.stdout).toContain("index consistent");
}, 35_000);

test(`racing async changes keep the index consistent with the primary (seed ${SEED})`, async () => {
  const r = new Prng(SEED);
  const dir = `${root}/race`;
  let store = await UserStore.open(dir);
  const cities = ["Lima", "Oslo", "Pune", "Rome", "Kyiv", "Lagos", "Quito", "Hanoi"];
  let waits = 0;
  const between = () => {
    waits++;
    return new Promise<void>((resolve) => setTimeout(resolve, r.int(3)));
  };
  await Promise.all(Array.from({ length: 20 }, async (_, task) => {
    for (let i = 0; i < 25; i++) {
      const id = `u${r.int(30)}`;
      if (r.int(6) === 0) await store.delete(id, between);
      else await store.put(id, { name: `${id}-${task}-${i}`, city: r.pick(cities) }, between);
    }
  }));
  expect(store.verify()).toEqual([]);
  await store.close();
  store = await UserStore.open(dir);
  expect(store.verify()).toEqual([]);
  const all = [...store.tree.range({ prefix: ["user"] })].map(([k, v]) => [k.a, v] as const);
  for (const city of cities) {
    const viaIndex = [...store.inCity(city)].map(([id]) => id);
    const viaScan = all.filter(([, u]) => (u as { city: string }).city === city).map(([id]) => id);
    expect(viaIndex).toEqual(viaScan);
  }
  console.log(
    `secondary index: 500 changes by 20 tasks, ${
      waits - 500
    } retried after a conflict, ${all.length} users consistent`,
  );
  await store.close();
}, 30_000);
