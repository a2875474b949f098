import assert from "node:assert/strict";
import type { Sql } from "../../src/db/pool.ts";
import { createLogger } from "../../src/observability/log.ts";
import { maintainHistory } from "../../src/worker/retention.ts";
import { countRows, oneSession, type TestDatabase, testDatabase } from "../helpers/db.ts";

const minute = 60_000;

/**
 * One-minute partitions after the ones the migration made (which reach two
 * months ahead), and the start of the first of them: tests place events there.
 */
async function minutePartitions(sql: Sql, count: number): Promise<Date> {
  const [row] = await sql<{ start: Date }[]>`
    SELECT max(to_at) AS start FROM history_partitions WHERE family = 'events'`;
  await sql`SELECT dispatch_add_history_partitions('events', interval '1 minute',
    ${row!.start}::timestamptz + ${count - 1} * interval '1 minute')`;
  return row!.start;
}

/** An event at `at` with one delivery (and one attempt) per status, as ingest places them. */
async function seed(db: TestDatabase, id: string, at: Date, statuses: string[]) {
  await db.sql`INSERT INTO events (id, type, data, created_at) VALUES (${id}, 't', '{}', ${at})`;
  for (const [i, status] of statuses.entries()) {
    const [d] = await db.sql`
      INSERT INTO deliveries (event_id, subscription_id, status, attempts, delivered_at,
        locked_by, locked_until, held_by, next_attempt_at, created_at)
      VALUES (${id}, ${`sub_${i}`}, ${status === "parked" ? "pending" : status}, 1,
        ${status === "delivered" ? new Date() : null},
        ${status === "processing" ? "w" : null},
        ${status === "processing" ? new Date(Date.now() + 60_000) : null},
        ${status === "parked" ? "ordering" : null},
        ${status === "parked" ? "infinity" : "now"}, ${at})
      RETURNING id`;
    await db.sql`
      INSERT INTO delivery_attempts (delivery_id, event_id, subscription_id, attempt,
        started_at, duration_ms, delivery_created_at)
      VALUES (${d!.id}, ${id}, ${`sub_${i}`}, 1, now(), 5, ${at})`;
  }
}

async function dropBefore(sql: Sql, before: Date, lockWait = "100 milliseconds") {
  const [row] = await sql<{ dropped: string[] }[]>`
    SELECT dispatch_drop_history_partitions('events', ${before}, ${lockWait}::interval)
      AS dropped`;
  return row!.dropped;
}

async function eventIds(sql: Sql): Promise<string[]> {
  return (await sql<{ id: string }[]>`SELECT id FROM events ORDER BY id`).map((r) => r.id);
}

/** Every case retention must tell apart: [id, minute partition, delivery statuses, dropped?] */
const cases: [string, number, string[], boolean][] = [
  ["finished", 0, ["delivered", "failed"], true],
  ["no_subscribers", 1, [], true],
  ["pending", 2, ["delivered", "pending"], false],
  ["retrying", 3, ["retrying"], false],
  ["processing", 4, ["failed", "processing"], false],
  ["parked_in_fifo", 5, ["parked"], false],
  ["not_yet_expired", 7, ["delivered"], false],
];

Deno.test("retention drops whole expired partitions with their deliveries and attempts, and keeps any with a delivery that waits", async () => {
  const db = await testDatabase();
  try {
    const start = await minutePartitions(db.sql, 8);
    const at = (m: number) => new Date(start.getTime() + m * minute + 1_000);
    for (const [id, m, statuses] of cases) await seed(db, id, at(m), statuses);
    await seed(db, "before_partitioning", new Date(Date.now() - 40 * 86_400_000), ["delivered"]);
    const before = (await db.sql<
      { n: number }[]
    >`SELECT count(*)::int AS n FROM history_partitions WHERE family = 'events'`)[0]!.n;

    const dropped = await dropBefore(db.sql, new Date(start.getTime() + 7 * minute));

    // legacy, the migration's month-wide partitions, and minutes 0, 1 and 6.
    assert.equal(dropped.length, before - 8 + 3 + 0);
    assert.equal(dropped[0], "legacy");
    const kept = cases.filter(([, , , gone]) => !gone).map(([id]) => id).sort();
    assert.deepEqual(await eventIds(db.sql), kept);
    const left = await db.sql<{ suffix: string }[]>`
      SELECT suffix FROM history_partitions WHERE family = 'events'`;
    assert.equal(left.length, 5);
    for (const table of ["events", "deliveries", "delivery_attempts"]) {
      for (const suffix of dropped) {
        const [row] = await db.sql`SELECT to_regclass(${`${table}_${suffix}`}) AS r`;
        assert.equal(row!.r, null, `${table}_${suffix} is still there`);
      }
    }
    const keptDeliveries = cases.filter(([, , , gone]) => !gone)
      .reduce((n, [, , statuses]) => n + statuses.length, 0);
    assert.equal(await countRows(db.sql, "deliveries"), keptDeliveries);
    assert.equal(await countRows(db.sql, "delivery_attempts"), keptDeliveries);
  } finally {
    await db.close();
  }
});

Deno.test({
  name: "a delivery put back while its partition waits to be dropped keeps the partition",
  // PGlite is one session: the drop cannot wait for another transaction there.
  ignore: Deno.env.get("DISPATCH_TEST_EMBEDDED") === "1",
  async fn() {
    const db = await testDatabase();
    const other = await oneSession(db);
    try {
      const start = await minutePartitions(db.sql, 2);
      await seed(db, "failed", new Date(start.getTime() + 1_000), ["failed"]);
      // Only the event's partition is left to drop, so the drop's first lock is of it.
      await dropBefore(db.sql, start);
      const putBack = Promise.withResolvers<void>();
      const commit = Promise.withResolvers<void>();
      // A requeue's write, not yet committed, when the drop comes for the partition.
      const requeue = other.sql.begin(async (tx) => {
        await tx`UPDATE deliveries SET status = 'pending', next_attempt_at = now()
          WHERE event_id = 'failed'`;
        putBack.resolve();
        await commit.promise;
      });
      await putBack.promise;
      const dropping = dropBefore(db.sql, new Date(start.getTime() + minute), "10 seconds");
      // The drop queues for the partition's lock; then the requeue commits.
      for (let waiting = false; !waiting;) {
        const [row] = await db.sql<{ n: number }[]>`
          SELECT count(*)::int AS n FROM pg_locks l
          JOIN pg_class c ON c.oid = l.relation
          WHERE NOT l.granted AND c.relname LIKE 'deliveries_%'
            AND c.relnamespace = ${db.schema}::regnamespace`;
        waiting = row!.n > 0;
        await new Promise((r) => setTimeout(r, 10));
      }
      commit.resolve();
      await requeue;
      await dropping;
      assert.equal(
        await countRows(
          db.sql,
          "history_partitions",
          `family = 'events' AND from_at = '${start.toISOString()}'`,
        ),
        1,
      );
      assert.deepEqual(await eventIds(db.sql), ["failed"]);
      assert.equal(await countRows(db.sql, "deliveries", "status = 'pending'"), 1);
    } finally {
      await other.sql.end();
      await db.close();
    }
  },
});

Deno.test("the retention pass makes partitions ahead and logs what it drops", async () => {
  const db = await testDatabase({ partitionWidthMs: minute });
  const lines: string[] = [];
  const log = createLogger({ write: (l) => lines.push(l) });
  try {
    await seed(db, "old", new Date(Date.now() - 40 * 86_400_000), ["delivered"]);
    // A retention of -1 minute: what ends before a minute from now has expired.
    const dropped = await maintainHistory({ engine: db.engine, log }, {
      family: "events",
      widthMs: 15 * minute,
      retentionMs: -minute,
    });
    assert.equal(dropped[0], "legacy");
    assert.deepEqual(await eventIds(db.sql), []);
    const [ahead] = await db.sql<
      { until: Date }[]
    >`SELECT max(to_at) AS until FROM history_partitions WHERE family = 'events'`;
    assert.ok(ahead!.until.getTime() >= Date.now() + 15 * minute);
    const messages = lines.map((l) => JSON.parse(l)).map((l) => l.msg);
    assert.deepEqual(messages, ["Added partitions", "Dropped expired partitions"]);
  } finally {
    await db.close();
  }
});
