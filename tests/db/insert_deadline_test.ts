import assert from "node:assert/strict";
import { createEventWriter } from "../../src/engine/event_writer.ts";
import type { Sql } from "../../src/db/pool.ts";
import { countRows, testDatabase } from "../helpers/db.ts";
import { eventually } from "../helpers/service.ts";

const event = { id: "e1", type: "a", source: null, tenant_id: null, data: {} };

Deno.test("an insert that cannot finish by its deadline is aborted by the database and stores nothing", async () => {
  const db = await testDatabase();
  const writer = createEventWriter(db.sql);
  const lock = await db.sql.reserve();
  try {
    await lock`BEGIN`;
    await lock`LOCK TABLE events IN SHARE MODE`;
    const insert = writer.submit({ events: [event] }, { deadline: Date.now() + 300 });
    insert.catch(() => {});
    await eventually(() => insertsOnLock(db.sql, (n) => n > 0), { what: "the insert to wait" });
    // The database gives up the wait at the deadline by itself; nothing here cancels it.
    await eventually(() => insertsOnLock(db.sql, (n) => n === 0), { what: "the insert to end" });
    await lock`COMMIT`;
    await assert.rejects(insert, (err: { code?: string }) => err.code === "57014");
    assert.equal(await countRows(db.sql, "events"), 0);
  } finally {
    lock.release();
    writer.close();
    await writer.drain();
    await db.close();
  }
});

/** True when the number of inserts waiting on a lock in the test's database passes `test`. */
async function insertsOnLock(sql: Sql, test: (n: number) => boolean) {
  const [row] = await sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM pg_stat_activity
    WHERE datname = current_database() AND wait_event_type = 'Lock'
      AND query LIKE '%dispatch_insert_events(%'`;
  return test(row!.n) ? true : undefined;
}
