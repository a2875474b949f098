import assert from "node:assert/strict";
import { deleteFinishedEvents } from "../../src/engine/retention.ts";
import { createLogger } from "../../src/observability/log.ts";
import { purgeExpiredEvents } from "../../src/worker/retention.ts";
import { countRows, type TestDatabase, testDatabase } from "../helpers/db.ts";

/** An event created `ageDays` ago with one delivery (and one attempt) per status. */
async function seed(db: TestDatabase, id: string, ageDays: number, statuses: string[]) {
  await db.sql`
    INSERT INTO events (id, type, data, created_at)
    VALUES (${id}, 't', '{}', now() - ${ageDays} * interval '1 day')`;
  for (const [i, status] of statuses.entries()) {
    const [d] = await db.sql`
      INSERT INTO deliveries (event_id, subscription_id, status, attempts, delivered_at,
        locked_by, locked_until)
      VALUES (${id}, ${`sub_${i}`}, ${status}, 1,
        ${status === "delivered" ? new Date() : null},
        ${status === "processing" ? "w" : null},
        ${status === "processing" ? new Date(Date.now() + 60_000) : null})
      RETURNING id`;
    await db.sql`
      INSERT INTO delivery_attempts (delivery_id, event_id, subscription_id, attempt,
        started_at, duration_ms)
      VALUES (${d!.id}, ${id}, ${`sub_${i}`}, 1, now(), 5)`;
  }
}

/** Every case retention must tell apart: [id, age in days, delivery statuses, deleted?] */
const cases: [string, number, string[], boolean][] = [
  ["old_delivered", 40, ["delivered"], true],
  ["old_failed", 40, ["failed"], true],
  ["old_mixed_final", 40, ["delivered", "failed"], true],
  ["old_no_subscribers", 40, [], true],
  ["old_pending", 40, ["pending"], false],
  ["old_retrying", 40, ["delivered", "retrying"], false],
  ["old_processing", 40, ["failed", "processing"], false],
  ["recent_delivered", 29, ["delivered"], false],
  ["recent_pending", 1, ["pending"], false],
];

async function seedCases(db: TestDatabase) {
  for (const [id, age, statuses] of cases) await seed(db, id, age, statuses);
}

async function remainingEvents(db: TestDatabase): Promise<string[]> {
  return (await db.sql<{ id: string }[]>`SELECT id FROM events ORDER BY id`).map((r) => r.id);
}

const kept = cases.filter(([, , , deleted]) => !deleted).map(([id]) => id).sort();

Deno.test("retention deletes old finished events with their deliveries and attempts, and keeps the rest", async () => {
  const db = await testDatabase();
  try {
    await seedCases(db);
    const n = await deleteFinishedEvents(db.sql, { olderThanDays: 30, limit: 500 });
    assert.equal(n, 4);
    assert.deepEqual(await remainingEvents(db), kept);
    const orphans = `event_id NOT IN (SELECT id FROM events)`;
    assert.equal(await countRows(db.sql, "deliveries", orphans), 0);
    assert.equal(await countRows(db.sql, "delivery_attempts", orphans), 0);
    // Every kept event still has all its deliveries and attempts.
    const keptDeliveries = cases.filter(([, , , deleted]) => !deleted)
      .reduce((n, [, , statuses]) => n + statuses.length, 0);
    assert.equal(await countRows(db.sql, "deliveries"), keptDeliveries);
    assert.equal(await countRows(db.sql, "delivery_attempts"), keptDeliveries);
  } finally {
    await db.close();
  }
});

Deno.test("retention works in batches of the given size until nothing eligible is left", async () => {
  const db = await testDatabase();
  const lines: string[] = [];
  try {
    await seedCases(db);
    assert.equal(await deleteFinishedEvents(db.sql, { olderThanDays: 30, limit: 3 }), 3);
    await seed(db, "old_delivered_2", 31, ["delivered"]);
    await seed(db, "old_failed_2", 60, ["failed"]);
    const log = createLogger({ write: (l) => lines.push(l) });
    const n = await purgeExpiredEvents({ engine: db.engine, log }, {
      days: 30,
      batchSize: 1,
      pauseMs: 1,
    });
    assert.equal(n, 3);
    assert.deepEqual(await remainingEvents(db), kept);
    const line = JSON.parse(lines.at(-1)!);
    assert.equal(line.msg, "Deleted expired events");
    assert.equal(line.count, 3);
  } finally {
    await db.close();
  }
});

Deno.test({
  name:
    "a requeue waits for a retention delete that holds the event, so no delivery it puts back is deleted",
  ignore: Deno.env.get("DISPATCH_TEST_EMBEDDED") === "1",
  async fn() {
    const db = await testDatabase();
    try {
      const [sub] = await db.sql<{ seq: number }[]>`
        INSERT INTO subscriptions (id, url, event_types, secret)
        VALUES ('s', 'http://127.0.0.1:9/', '{*}', 'a-secret') RETURNING seq`;
      await db.sql`INSERT INTO events (id, type, data, created_at)
        VALUES ('old', 't', '{}', now() - interval '40 days')`;
      await db.sql`INSERT INTO deliveries (event_id, subscription_id, subscription_seq, status,
        attempts) VALUES ('old', 's', ${sub!.seq}, 'failed', 1)`;
      const locked = Promise.withResolvers<void>();
      const go = Promise.withResolvers<void>();
      // Retention's first step: the event is locked for its delete.
      const retention = db.sql.begin(async (tx) => {
        await tx`SELECT id FROM events WHERE id = 'old' FOR UPDATE`;
        locked.resolve();
        await go.promise;
        await tx`DELETE FROM events WHERE id = 'old'`;
      });
      await locked.promise;
      let finished = false;
      const requeue = db.engine.requeue({ eventId: "old" })
        .then((r) => (finished = true, r));
      let waiting = false;
      while (!waiting && !finished) {
        const [row] = await db.sql<{ n: number }[]>`
          SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE NOT l.granted AND a.query LIKE '%FOR KEY SHARE%'`;
        waiting = row!.n > 0;
        await new Promise((r) => setTimeout(r, 10));
      }
      const finishedWhileLocked = finished;
      go.resolve();
      await retention;
      const result = await requeue;
      assert.equal(finishedWhileLocked, false, "the requeue did not wait for the delete");
      assert.deepEqual(result, { requeued: [], skipped: [] });
      assert.equal(await countRows(db.sql, "deliveries"), 0);
    } finally {
      await db.close();
    }
  },
});
