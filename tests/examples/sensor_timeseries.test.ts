/**
 * The sensor time-series example: it runs as a script; readings land in one partition per UTC
 * day; latest-first and window queries across days equal a model; retention drops whole days
 * (their directories are gone) and the rest survives a reopen.
 */
import { afterAll, expect, test } from "bun:test";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import { spawnSync } from "node:child_process";
import {
  applyRetention,
  ingest,
  latest,
  meanTemp,
  openSeries,
  synthetic,
} from "../../examples/sensor_timeseries.ts";

const root = nodeFs.mkdtempSync(`${os.tmpdir()}/zt-sensors-`);
afterAll(() => nodeFs.rmSync(root, { recursive: true, force: true }));
const DAY = 86_400_000;

test("examples/sensor_timeseries.ts runs as a script", () => {
  const run = spawnSync(process.execPath, [
    new URL("../../examples/sensor_timeseries.ts", import.meta.url).pathname,
    `${root}/script`,
  ], { encoding: "utf8", timeout: 30_000 });
  expect(run.stderr).toBe("");
  expect(run.status).toBe(0);
  expect(run.stdout).toContain(
    "retention kept 3 days, dropped 2024-06-01 2024-06-02 2024-06-03 2024-06-04; readings: 1728",
  );
}, 35_000);

test("daily partitions answer latest-first and window queries like a model, and retention drops days", async () => {
  const dir = `${root}/series`;
  const start = Date.UTC(2024, 0, 30, 12); // crosses a month boundary
  const readings = synthetic(start, 5, 3, 30 * 60_000);
  let series = await openSeries(dir);
  await ingest(series, readings);
  expect(series.partitions()).toEqual([
    "2024-01-30",
    "2024-01-31",
    "2024-02-01",
    "2024-02-02",
    "2024-02-03",
    "2024-02-04",
  ]);
  expect(series.count()).toBe(readings.length);
  const s1 = readings.filter((r) => r.sensor === "s-1").sort((a, b) => b.ts - a.ts);
  expect(latest(series, "s-1", 7).map((r) => r.ts)).toEqual(s1.slice(0, 7).map((r) => r.ts));
  const from = start + DAY / 2, to = start + 2 * DAY;
  const inWindow = s1.filter((r) => r.ts >= from && r.ts < to);
  expect(meanTemp(series, "s-1", from, to)).toBeCloseTo(
    inWindow.reduce((n, r) => n + r.temp, 0) / inWindow.length,
    9,
  );
  const dropped = await applyRetention(series, 2);
  expect(dropped).toEqual(["2024-01-30", "2024-01-31", "2024-02-01", "2024-02-02"]);
  expect(nodeFs.readdirSync(dir).sort()).toEqual(["2024-02-03", "2024-02-04"]);
  const kept = readings.filter((r) => r.ts >= Date.UTC(2024, 1, 3));
  expect(series.count()).toBe(kept.length);
  await series.close();
  series = await openSeries(dir);
  expect(series.partitions()).toEqual(["2024-02-03", "2024-02-04"]);
  expect(latest(series, "s-0", 1)[0].ts).toBe(Math.max(...kept.map((r) => r.ts)));
  await series.close();
});
