import assert from "node:assert/strict";
import type { Sql } from "../../src/db/pool.ts";
import { createLogger, silentLogger } from "../../src/observability/log.ts";
import { purgeExpiredAudit, startRetention } from "../../src/worker/retention.ts";
import { testDatabase } from "../helpers/db.ts";

/** `n` audit entries written `ageDays` ago, their request ids `${prefix}1` … */
async function seedEntries(sql: Sql, prefix: string, n: number, ageDays: number) {
  await sql`INSERT INTO audit_log (at, actor_type, action, resource_type, status, request_id)
    SELECT now() - ${ageDays} * interval '1 day', 'open', 'createEvent', 'event', 201,
      ${prefix} || g
    FROM generate_series(1, ${n}) g`;
}

async function requestIds(sql: Sql): Promise<string[]> {
  const rows = await sql<{ request_id: string }[]>`
    SELECT request_id FROM audit_log ORDER BY request_id`;
  return rows.map((r) => r.request_id);
}

Deno.test("audit retention deletes entries older than its days, batch by batch, and keeps the rest", async () => {
  const db = await testDatabase();
  const lines: string[] = [];
  try {
    await seedEntries(db.sql, "old", 5, 91);
    await seedEntries(db.sql, "new", 2, 89);
    const log = createLogger({ write: (l) => lines.push(l) });
    const n = await purgeExpiredAudit({ engine: db.engine, log }, {
      days: 90,
      batchSize: 2,
      pauseMs: 1,
    });
    assert.equal(n, 5);
    assert.deepEqual(await requestIds(db.sql), ["new1", "new2"]);
    const line = JSON.parse(lines.at(-1)!);
    assert.equal(line.msg, "Deleted expired audit log entries");
    assert.equal(line.count, 5);
  } finally {
    await db.close();
  }
});

Deno.test("the retention worker purges the audit log even when events are kept forever", async () => {
  const db = await testDatabase();
  try {
    await seedEntries(db.sql, "old", 3, 8);
    await seedEntries(db.sql, "new", 1, 6);
    await db.sql`INSERT INTO events (id, type, data, created_at)
      VALUES ('e', 't', '{}', now() - interval '400 days')`;
    const retention = startRetention({ engine: db.engine, log: silentLogger }, {
      days: null,
      auditDays: 7,
    });
    await retention.stop();
    assert.deepEqual(await requestIds(db.sql), ["new1"]);
    assert.equal((await db.sql`SELECT 1 FROM events`).length, 1);
  } finally {
    await db.close();
  }
});
