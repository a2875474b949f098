import assert from "node:assert/strict";
import { connect, useSchema } from "../../src/db/pool.ts";
import { createLogger } from "../../src/observability/log.ts";
import { Completer } from "../../src/worker/completer.ts";
import {
  countRows,
  oneSession,
  type TestDatabase,
  testDatabase,
  whileLocked,
  withTestDatabase,
} from "../helpers/db.ts";
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
    const completer = new Completer(
      { sql, log: createLogger({ write: (l) => lines.push(l) }) },
      { workerId: "w", channel: db.channel, health, maxPending: 100 },
    );
    await test({ completer, proxy, lines });
    completer.close();
    await completer.drain();
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

/**
 * Writes the results of 20 deliveries claimed at once, alternating failure and success, each
 * alone (a burst to an endpoint that fails every other request); answers the subscription
 * after each write.
 */
async function alternate(db: TestDatabase, settings: typeof health) {
  // Ten more wait behind the twenty in flight: an open circuit would hold them.
  await seedDeliveries(db.sql, 30);
  const claimed = (await claim(db.sql, { limit: 20 })).sort((a, b) => a.id - b.id);
  assert.equal(claimed.length, 20);
  const completer = new Completer(
    { sql: db.sql, log: createLogger({ write: () => {} }) },
    { workerId: "w", channel: db.channel, health: settings, maxPending: 100 },
  );
  const after = [];
  for (const [i, d] of claimed.entries()) {
    completer.push(outcome(d, i % 2 === 0 ? "retrying" : "delivered"));
    await completer.drain();
    const [sub] = await db.sql<{ failures: number; failing: boolean; active: boolean }[]>`
      SELECT consecutive_failures AS failures, failing_since IS NOT NULL AS failing, active
      FROM subscriptions`;
    after.push({ ...sub! });
    // The next result is written on a later clock: auto-disable compares against it.
    await db.sql`SELECT pg_sleep(0.002)`;
  }
  completer.close();
  return after;
}

Deno.test("a success resets the failure count whatever the subscription's health when it was claimed", () =>
  withTestDatabase(async (db) => {
    const after = await alternate(db, health);
    assert.deepEqual(
      after.map((s) => s.failures),
      Array.from({ length: 20 }, (_, i) => i % 2 === 0 ? 1 : 0),
    );
    const [sub] = await db.sql`SELECT circuit_state FROM subscriptions`;
    assert.equal(sub!.circuit_state, "closed");
    assert.equal(await countRows(db.sql, "deliveries", "held_by IS NOT NULL"), 0);
    assert.equal(await countRows(db.sql, "events", "type LIKE 'dispatch.%'"), 0);
  }));

Deno.test("a success between two failures keeps a subscription from being disabled as failing", () =>
  withTestDatabase(async (db) => {
    const after = await alternate(db, { ...health, failureThreshold: 0, autoDisableAfterMs: 1 });
    assert.ok(after.every((s) => s.active), "never disabled");
    assert.deepEqual(
      after.map((s) => s.failing),
      Array.from({ length: 20 }, (_, i) => i % 2 === 0),
    );
  }));

Deno.test("a success that lands after the circuit opened closes it and lets what it held go", () =>
  withTestDatabase(async (db) => {
    await seedDeliveries(db.sql, 4);
    const [failed, succeeded] = await claim(db.sql, { limit: 2 });
    const completer = new Completer(
      { sql: db.sql, log: createLogger({ write: () => {} }) },
      {
        workerId: "w",
        channel: db.channel,
        health: { ...health, failureThreshold: 1 },
        maxPending: 100,
      },
    );
    completer.push(outcome(failed!, "retrying"));
    await completer.drain();
    assert.equal(await countRows(db.sql, "deliveries", "held_by = 'circuit'"), 3);
    // Claimed while the circuit was closed, answered after it opened.
    completer.push(outcome(succeeded!, "delivered"));
    await completer.drain();
    completer.close();
    const [sub] = await db.sql`SELECT circuit_state, consecutive_failures FROM subscriptions`;
    assert.deepEqual([sub!.circuit_state, sub!.consecutive_failures], ["closed", 0]);
    assert.equal(await countRows(db.sql, "deliveries", "held_by IS NOT NULL"), 0);
    const events = await db.sql`
      SELECT type, data->>'reason' AS reason FROM events WHERE type LIKE 'dispatch.%' ORDER BY seq`;
    assert.deepEqual(events.map((e) => [e.type, e.reason]), [
      ["dispatch.subscription.circuit_opened", "consecutive_failures"],
      ["dispatch.subscription.circuit_closed", "answered"],
    ]);
  }));

Deno.test({
  name:
    "a health write locks the subscription before its deliveries, as a PATCH does, so the two never deadlock",
  // PGlite is one session: nothing waits for anything.
  ignore: Deno.env.get("DISPATCH_TEST_EMBEDDED") === "1",
  fn: () =>
    withTestDatabase(async (db) => {
      const seq = await seedDeliveries(db.sql, 2, { maxInFlight: 1 });
      // One in flight; the other held until it ends, when the completion lets it go.
      const [sent] = await claim(db.sql);
      assert.equal(await countRows(db.sql, "deliveries", "held_by = 'max_in_flight'"), 1);
      const { sql, pid } = await oneSession(db);
      const lines: string[] = [];
      const completer = new Completer(
        { sql, log: createLogger({ write: (l) => lines.push(l) }) },
        { workerId: "w", channel: db.channel, health, maxPending: 100 },
      );
      try {
        await db.sql.begin(async (tx) => {
          // PATCH's order: the subscription, then its deliveries.
          await tx`SELECT 1 FROM subscriptions WHERE seq = ${seq} FOR UPDATE`;
          // A failure: its write changes the subscription's health.
          completer.push(outcome(sent!, "retrying"));
          await eventually(async () => {
            const [s] = await db
              .sql`SELECT wait_event_type FROM pg_stat_activity WHERE pid = ${pid}`;
            return s?.wait_event_type === "Lock" ? true : undefined;
          }, { what: "the health write to wait for the subscription" });
          await tx`
            UPDATE deliveries SET next_attempt_at = now(), held_by = NULL
            WHERE subscription_seq = ${seq} AND held_by IS NOT NULL
              AND status IN ('pending', 'retrying')`;
        });
        await completer.drain();
      } finally {
        completer.close();
        await sql.end({ timeout: 1 });
      }
      assert.deepEqual(lines.filter((l) => l.includes("Writing delivery results failed")), []);
      const [sub] = await db.sql`SELECT consecutive_failures FROM subscriptions`;
      assert.equal(sub!.consecutive_failures, 1);
      const [d] = await db.sql`SELECT status FROM deliveries WHERE id = ${sent!.id}`;
      assert.equal(d!.status, "retrying");
    }),
});

Deno.test({
  name: "a success on a subscription with nothing to reset is written without its lock",
  ignore: Deno.env.get("DISPATCH_TEST_EMBEDDED") === "1",
  fn: () =>
    withTestDatabase(async (db) => {
      await seedDeliveries(db.sql, 1);
      const [sent] = await claim(db.sql);
      const completer = new Completer(
        { sql: db.sql, log: createLogger({ write: () => {} }) },
        { workerId: "w", channel: db.channel, health, maxPending: 100 },
      );
      const { waited } = await whileLocked(
        db.sql,
        (tx) => tx`SELECT 1 FROM subscriptions FOR UPDATE`,
        async () => {
          completer.push(outcome(sent!, "delivered"));
          await completer.drain();
        },
      );
      completer.close();
      assert.equal(waited, false);
      const [d] = await db.sql`SELECT status FROM deliveries`;
      assert.equal(d!.status, "delivered");
    }),
});
