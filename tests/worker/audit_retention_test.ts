import assert from "node:assert/strict";
import type { Sql } from "../../src/db/pool.ts";
import { silentLogger } from "../../src/observability/log.ts";
import { startRetention } from "../../src/worker/retention.ts";
import { testDatabase } from "../helpers/db.ts";

/** `n` audit entries written at `at`, their request ids `${prefix}1` … */
async function seedEntries(sql: Sql, prefix: string, n: number, at: Date) {
  await sql`INSERT INTO audit_log (at, actor_type, action, resource_type, status, request_id)
    SELECT ${at}, 'open', 'createEvent', 'event', 201, ${prefix} || g
    FROM generate_series(1, ${n}) g`;
}

async function requestIds(sql: Sql): Promise<string[]> {
  const rows = await sql<{ request_id: string }[]>`
    SELECT request_id FROM audit_log ORDER BY request_id`;
  return rows.map((r) => r.request_id);
}

Deno.test("audit retention drops whole partitions of expired entries and keeps the rest", async () => {
  const db = await testDatabase();
  try {
    // One-minute partitions after those the migration made.
    const [row] = await db.sql<{ start: Date }[]>`
      SELECT max(to_at) AS start FROM history_partitions WHERE family = 'audit'`;
    const start = row!.start.getTime();
    await db.sql`SELECT dispatch_add_history_partitions('audit', interval '1 minute',
      ${new Date(start + 60_000)})`;
    await seedEntries(db.sql, "before", 2, new Date(Date.now() - 91 * 86_400_000));
    await seedEntries(db.sql, "old", 5, new Date(start + 1_000));
    await seedEntries(db.sql, "new", 2, new Date(start + 61_000));
    const [dropped] = await db.sql<{ dropped: string[] }[]>`
      SELECT dispatch_drop_history_partitions('audit', ${new Date(start + 60_000)}) AS dropped`;
    assert.equal(dropped!.dropped[0], "legacy");
    assert.deepEqual(await requestIds(db.sql), ["new1", "new2"]);
  } finally {
    await db.close();
  }
});

Deno.test("the retention worker drops the audit log's expired partitions even when events are kept forever", async () => {
  const db = await testDatabase();
  try {
    await seedEntries(db.sql, "old", 3, new Date(Date.now() - 8 * 86_400_000));
    await db.sql`INSERT INTO events (id, type, data, created_at)
      VALUES ('e', 't', '{}', now() - interval '400 days')`;
    // An audit retention of minus a day: whatever ends before tomorrow has expired.
    const retention = startRetention({ engine: db.engine, log: silentLogger }, {
      days: null,
      auditDays: -1,
    });
    await retention.stop();
    assert.deepEqual(await requestIds(db.sql), []);
    assert.equal((await db.sql`SELECT 1 FROM events`).length, 1);
  } finally {
    await db.close();
  }
});
