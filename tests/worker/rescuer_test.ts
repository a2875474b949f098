import assert from "node:assert/strict";
import { createLogger } from "../../src/observability/log.ts";
import { startRescuer } from "../../src/worker/rescuer.ts";
import { testDatabase } from "../helpers/db.ts";
import { eventually } from "../helpers/service.ts";

Deno.test({
  name: "the rescuer returns every expired lease in passes of 500, and wakes the workers",
  // PGlite's socket server cannot LISTEN.
  ignore: Deno.env.get("DISPATCH_TEST_EMBEDDED") === "1",
  async fn() {
    const db = await testDatabase();
    const lines: string[] = [];
    try {
      const [sub] = await db.sql<{ seq: number }[]>`
        INSERT INTO subscriptions (id, url, event_types, secret)
        VALUES ('s', 'http://127.0.0.1:9/', '{*}', 'a-secret') RETURNING seq`;
      await db.sql`INSERT INTO events (id, type, data) SELECT 'e' || g, 'a', '{}'
        FROM generate_series(1, 600) g`;
      await db.sql`INSERT INTO deliveries (event_id, subscription_id, subscription_seq, status,
          attempts, locked_by, locked_until)
        SELECT 'e' || g, 's', ${sub!.seq}, 'processing', 1, 'dead', now() - interval '1 second'
        FROM generate_series(1, 600) g`;
      let woken = 0;
      const listener = await db.sql.listen(db.channel, () => woken++);
      const rescuer = startRescuer({
        engine: db.engine,
        log: createLogger({ write: (l) => lines.push(l) }),
      }, { intervalMs: 60_000, maxAttempts: 3 });
      await eventually(async () => {
        const [row] = await db.sql`
          SELECT count(*) FILTER (WHERE status = 'retrying')::int AS n FROM deliveries`;
        return row!.n === 600 && woken > 0 ? true : undefined;
      }, { what: "all 600 to be rescued" });
      await rescuer.stop();
      await listener.unlisten();
      const counts = lines.map((l) => JSON.parse(l))
        .filter((l) => l.msg === "Rescued deliveries with an expired lease").map((l) => l.count);
      // One pass at start-up, two statements: the second because the first was full.
      assert.deepEqual(counts, [500, 100]);
    } finally {
      await db.close();
    }
  },
});
