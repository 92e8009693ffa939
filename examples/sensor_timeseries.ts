/**
 * Sensor time series with daily partitions and retention: readings go to one tree per UTC day
 * (`PartitionedTree`, partitioned by a daily bucket of the `ts` key field); queries read across
 * days in key order (latest-first per sensor, a time window); retention drops whole days, which
 * removes their directories at once instead of deleting readings one by one.
 *
 * Key layout: `sensor:<sensor>:ts:<ts:u64be>` -> { temp: f64, humidity: f32 } (a fixed-size
 * struct), in `<dir>/<yyyy-mm-dd>/`.
 *
 * Run: bun examples/sensor_timeseries.ts [dataDir]
 */
import { defineKeyspace, PartitionedTree } from "../mod.ts";

/** The keyspace of every day. */
export const readingKeyspace = defineKeyspace({
  name: "readings",
  key: "sensor:<str>:ts:<u64be>",
  value: { temp: "f64", humidity: "f32" },
});

/** One reading. */
export interface Reading {
  sensor: string;
  ts: number;
  temp: number;
  humidity: number;
}

type Series = PartitionedTree<
  { sensor: string; ts: bigint },
  { temp: number; humidity: number },
  { sensor: string; ts: bigint | number },
  unknown
>;

/** Opens the series in `dir`, one partition per UTC day. */
export async function openSeries(dir: string): Promise<Series> {
  return await PartitionedTree.open({
    dir,
    keyspace: readingKeyspace,
    partitionBy: { field: "ts", bucket: "day" },
  }) as unknown as Series;
}

/** Stores readings (one batch per day touched). */
export async function ingest(series: Series, readings: readonly Reading[]): Promise<void> {
  await series.batch(
    readings.map((r) => ({
      put: { sensor: r.sensor, ts: BigInt(r.ts) },
      value: { temp: r.temp, humidity: r.humidity },
    })),
  );
}

/** The newest `limit` readings of a sensor, latest first, across days. */
export function latest(series: Series, sensor: string, limit: number): Reading[] {
  return [...series.range({ prefix: { sensor }, reverse: true, limit })].map(([k, v]) => ({
    sensor,
    ts: Number(k.ts),
    ...v,
  }));
}

/** Mean temperature of a sensor in [from, to). */
export function meanTemp(
  series: Series,
  sensor: string,
  from: number,
  to: number,
): number | undefined {
  let sum = 0;
  let n = 0;
  for (
    const [, v] of series.range({
      gte: { sensor, ts: BigInt(from) },
      lt: { sensor, ts: BigInt(to) },
    })
  ) {
    sum += v.temp;
    n++;
  }
  return n === 0 ? undefined : sum / n;
}

/** Drops every day before the newest `keepDays` days. Returns the days dropped. */
export async function applyRetention(series: Series, keepDays: number): Promise<string[]> {
  const days = series.partitions(); // sorted oldest first
  const dropped = days.slice(0, Math.max(0, days.length - keepDays));
  for (const day of dropped) await series.dropPartition(day);
  return dropped;
}

/** Synthetic readings: `sensors` sensors, one reading every `stepMs`, from `start` for `days` days. */
export function synthetic(start: number, days: number, sensors: number, stepMs: number): Reading[] {
  const out: Reading[] = [];
  for (let ts = start; ts < start + days * 86_400_000; ts += stepMs) {
    for (let s = 0; s < sensors; s++) {
      const hour = (ts / 3_600_000) % 24;
      out.push({
        sensor: `s-${s}`,
        ts,
        temp: 15 + s + 5 * Math.sin((hour / 24) * 2 * Math.PI),
        humidity: 40 + s,
      });
    }
  }
  return out;
}

if (import.meta.main) {
  const nodeFs = await import("node:fs");
  const os = await import("node:os");
  const dir = process.argv[2] ?? nodeFs.mkdtempSync(`${os.tmpdir()}/zt-sensors-`);
  const series = await openSeries(dir);
  const start = Date.UTC(2024, 5, 1);
  await ingest(series, synthetic(start, 7, 4, 10 * 60_000)); // 7 days, 4 sensors, every 10 minutes
  console.log(`days: ${series.partitions().join(" ")}; readings: ${series.count()}`);
  const last = latest(series, "s-2", 3);
  console.log(
    `s-2 latest: ${
      last.map((r) => `${new Date(r.ts).toISOString()} ${r.temp.toFixed(2)}`).join(" | ")
    }`,
  );
  console.log(
    `s-2 mean on day 3: ${
      meanTemp(series, "s-2", start + 2 * 86_400_000, start + 3 * 86_400_000)?.toFixed(3)
    }`,
  );
  const dropped = await applyRetention(series, 3);
  console.log(
    `retention kept 3 days, dropped ${
      dropped.join(" ")
    }; readings: ${series.count()}; directories: ${nodeFs.readdirSync(dir).sort().join(" ")}`,
  );
  await series.close();
  if (process.argv[2] === undefined) nodeFs.rmSync(dir, { recursive: true, force: true });
}
