/**
 * The crash child of `event_store.test.ts`: appends events to random streams of the example
 * event store (expected versions, some stale; request ids, some retried) until SIGKILLed.
 *
 * Lines (synchronous write(2) after the call returned):
 *   R                              the store is open
 *   A <requestId> <stream> <v> <n> an append of n events at version v returned
 *   F <appends>                    a flush covering the first <appends> A lines resolved
 *   E <message>                    something failed
 *
 * Run: bun tests/examples/event_store_child.ts '{"dir":"/tmp/x","seed":1}'
 */
import * as nodeFs from "node:fs";
import { EventStore, WrongExpectedVersionError } from "../../examples/event_store.ts";
import { Prng } from "../../src/util/prng.ts";

const cfg = JSON.parse(process.argv[2]) as { dir: string; seed: number };
const out = (line: string) => {
  const bytes = new TextEncoder().encode(line + "\n");
  for (let done = 0; done < bytes.length;) done += nodeFs.writeSync(1, bytes, done);
};
try {
  const store = await EventStore.open(cfg.dir, {
    mutableSegmentMaxItemCount: 300,
    multipartMinItemCount: 100,
    multipartMaxItemCount: 400,
  });
  store.tree.events.on("error", (e) => {
    if (!(e instanceof Error && /torn/.test(e.message))) {
      out(`E error event ${String(e)}`.replaceAll("\n", " "));
    }
  });
  out("R");
  const r = new Prng(cfg.seed);
  const sent: string[] = [];
  let appends = 0;
  for (let step = 0;; step++) {
    const stream = `s${r.int(8)}`;
    const retry = sent.length > 0 && r.int(8) === 0;
    const requestId = retry ? r.pick(sent) : `${cfg.seed}-${step}`;
    const stale = r.int(10) === 0;
    const expected = Math.max(0, store.version(stream) - (stale ? 1 + r.int(2) : 0));
    const events = Array.from(
      { length: 1 + r.int(4) },
      (_, i) => ({ type: "Happened", data: { step, i, pad: "p".repeat(r.int(50)) } }),
    );
    try {
      const result = store.append(stream, expected, events, requestId);
      if (!result.duplicate) sent.push(requestId);
      appends++;
      out(
        `A ${requestId} ${stream} ${result.firstVersion} ${result.duplicate ? 0 : events.length}`,
      );
    } catch (e) {
      if (!(e instanceof WrongExpectedVersionError)) throw e;
    }
    if (step % 25 === 24) {
      const covered = appends;
      await store.flush();
      out(`F ${covered}`);
    } else if (step % 7 === 6) await new Promise((resolve) => setTimeout(resolve, 0));
  }
} catch (e) {
  out(`E ${e instanceof Error ? `${e.name} ${e.message}` : String(e)}`.replaceAll("\n", " "));
  process.exit(1);
}
