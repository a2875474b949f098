import assert from "node:assert/strict";
import { insertEvents } from "../../src/db/events.ts";
import { connect } from "../../src/db/pool.ts";
import { countRows, testDatabase } from "../helpers/db.ts";
import { eventually } from "../helpers/service.ts";
import { startTcpProxy, throughProxy } from "../helpers/tcp_proxy.ts";

const event = { id: "e1", type: "a", source: null, tenant_id: null, data: {} };

Deno.test("an insert whose signal aborts is cancelled and stores nothing", async () => {
  const db = await testDatabase();
  const lock = await db.sql.reserve();
  try {
    await lock`BEGIN`;
    await lock`LOCK TABLE events IN SHARE MODE`;
    const stop = new AbortController();
    const insert = insertEvents(db.sql, [event], { channel: db.channel, signal: stop.signal });
    await waitingOnLock(db.sql);
    stop.abort();
    await assert.rejects(insert, (err: { code?: string }) => err.code === "57014");
    await lock`COMMIT`;
    assert.equal(await countRows(db.sql, "events"), 0);
  } finally {
    lock.release();
    await db.close();
  }
});

Deno.test("a cancel that cannot reach the server does not end the process", async () => {
  const db = await testDatabase();
  const target = new URL(db.url);
  const proxy = startTcpProxy({ hostname: target.hostname, port: Number(target.port || 5432) });
  const sql = connect(throughProxy(db.url, proxy), { schema: db.schema, max: 1 });
  const lock = await db.sql.reserve();
  try {
    await lock`BEGIN`;
    await lock`LOCK TABLE events IN SHARE MODE`;
    const stop = new AbortController();
    const insert = insertEvents(sql, [event], { channel: db.channel, signal: stop.signal });
    await waitingOnLock(db.sql);
    // The cancel request's connection is refused; the insert's own is cut.
    stop.abort();
    await proxy.down();
    await assert.rejects(insert);
    // A refused cancel request would surface as an unhandled rejection by now, failing the test.
    await sql`SELECT 1`.catch(() => {});
    await new Promise((r) => setTimeout(r, 200));
  } finally {
    await lock`ROLLBACK`;
    lock.release();
    await sql.end({ timeout: 1 });
    await proxy.close();
    await db.close();
  }
});

/** Resolves once a statement of the test's database waits on a lock. */
function waitingOnLock(sql: ReturnType<typeof connect>) {
  return eventually(async () => {
    const [row] = await sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO events%'`;
    return row!.n > 0 ? true : undefined;
  }, { what: "the insert to wait on the lock" });
}
