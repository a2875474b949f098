import assert from "node:assert/strict";
import { connect, useSchema } from "../../src/db/pool.ts";
import { createEngine } from "../../src/engine/engine.ts";
import { createLogger } from "../../src/observability/log.ts";
import { Completer } from "../../src/worker/completer.ts";
import { type TestDatabase, testDatabase } from "../helpers/db.ts";
import { claim, outcome, seedDeliveries } from "../helpers/queue.ts";
import { eventually } from "../helpers/service.ts";
import { startTcpProxy, type TcpProxy, throughProxy } from "../helpers/tcp_proxy.ts";

const health = {
  failureThreshold: 10,
  cooldownMs: 30_000,
  maxCooldownMs: 60_000,
  autoDisableAfterMs: 0,
};

/** A completer whose database connections go through a proxy the test controls. */
async function viaProxy(
  db: TestDatabase,
  test: (t: {
    completer: Completer;
    proxy: TcpProxy;
    lines: string[];
  }) => Promise<void>,
) {
  const target = new URL(db.url);
  const proxy = startTcpProxy({ hostname: target.hostname, port: Number(target.port || 5432) });
  const sql = connect(throughProxy(db.url, proxy), { schema: db.schema, max: 1 });
  const lines: string[] = [];
  try {
    await useSchema(sql, db.schema);
    const log = createLogger({ write: (l) => lines.push(l) });
    const engine = createEngine({ sql, channel: db.channel, log });
    const completer = new Completer({ engine, log }, { workerId: "w", health, maxPending: 100 });
    await test({ completer, proxy, lines });
    completer.close();
    await completer.drain();
    await engine.close();
  } finally {
    await sql.end({ timeout: 1 });
    await proxy.close();
  }
}

Deno.test("a result written again after its answer was lost never lands on the worker's newer claim", async () => {
  const db = await testDatabase();
  try {
    await seedDeliveries(db.sql, 2);
    await viaProxy(db, async ({ completer, proxy }) => {
      // The statement is prepared on the completer's one connection first, so that later a
      // write is sent whole without waiting for any answer.
      const [warm] = await claim(db.sql, { limit: 1 });
      completer.push(outcome(warm!, "delivered"));
      await completer.drain();
      const [first] = await claim(db.sql, { limit: 1 });
      // The write commits, but its answer never comes back.
      proxy.stall("replies");
      // Cut off by shutdown: it says nothing of the endpoint, so it is written in one statement.
      completer.push(outcome(first!, "retrying", { verdict: null }));
      await eventually(async () => {
        const [row] = await db.sql`SELECT status FROM deliveries WHERE id = ${first!.id}`;
        return row!.status === "retrying" ? true : undefined;
      }, { what: "the first write to commit" });
      // Due at once, so this worker claims the delivery again: attempt 2 is in flight.
      const [second] = await claim(db.sql);
      assert.equal(second!.attempt, 2);
      // The connection dies; the completer writes its batch again.
      proxy.cut();
      proxy.flow();
      await completer.drain();
      const [row] = await db.sql`
        SELECT status, attempts, locked_by FROM deliveries WHERE id = ${first!.id}`;
      assert.deepEqual([row!.status, row!.attempts, row!.locked_by], ["processing", 2, "w"]);
      const attempts = await db.sql`
        SELECT attempt FROM delivery_attempts WHERE delivery_id = ${first!.id}`;
      assert.deepEqual(attempts.map((a) => a.attempt), [1]);
    });
  } finally {
    await db.close();
  }
});

Deno.test("a result whose write fails with the connection is kept and written once the database answers", async () => {
  const db = await testDatabase();
  try {
    await seedDeliveries(db.sql, 2);
    await viaProxy(db, async ({ completer, proxy, lines }) => {
      const claimed = await claim(db.sql);
      proxy.stall();
      for (const d of claimed) completer.push(outcome(d, "delivered"));
      assert.equal(completer.pending, 2);
      assert.deepEqual(completer.leases().map((l) => l.attempt), [1, 1]);
      proxy.cut();
      proxy.flow();
      await completer.drain();
      assert.equal(completer.pending, 0);
      const rows = await db.sql`SELECT status FROM deliveries`;
      assert.deepEqual(rows.map((r) => r.status), ["delivered", "delivered"]);
      const [n] = await db.sql`SELECT count(*)::int AS n FROM delivery_attempts`;
      assert.equal(n!.n, 2);
      assert.ok(lines.some((l) => l.includes("Writing delivery results failed; retrying")));
    });
  } finally {
    await db.close();
  }
});

Deno.test("a result the database refuses is written without the receiver's response, and its batch goes on", async () => {
  const db = await testDatabase();
  try {
    await seedDeliveries(db.sql, 3);
    await viaProxy(db, async ({ completer, proxy }) => {
      const [a, b, c] = (await claim(db.sql)).sort((x, y) => x.id - y.id);
      // Hold the first write so the next three gather into one batch.
      proxy.stall();
      completer.push(outcome(a!, "delivered"));
      // A NUL that slipped past send(): PostgreSQL refuses it in a text column.
      completer.push(outcome(b!, "retrying", { responseBody: "bad \0 body" }));
      completer.push(outcome(c!, "delivered"));
      proxy.flow();
      await completer.drain();
      const rows = await db.sql`
        SELECT d.status, a.response_body, a.error FROM deliveries d
        JOIN delivery_attempts a ON a.delivery_id = d.id ORDER BY d.id`;
      assert.deepEqual(rows.map((r) => [r.status, r.response_body]), [
        ["delivered", "ok"],
        ["retrying", null],
        ["delivered", "ok"],
      ]);
      assert.match(rows[1]!.error, /^The database refused this attempt's response: /);
    });
  } finally {
    await db.close();
  }
});
