import assert from "node:assert/strict";
import {
  announce,
  emptyReport,
  type HealthReport,
  type HealthSettings,
  recordHealth,
} from "../../src/db/subscription_health.ts";
import type { Sql } from "../../src/db/pool.ts";
import { oneSession, type TestDatabase, testDatabase, withTestDatabase } from "../helpers/db.ts";
import { seedDeliveries } from "../helpers/queue.ts";
import { eventually } from "../helpers/service.ts";

const settings: HealthSettings = {
  failureThreshold: 10,
  cooldownMs: 30_000,
  maxCooldownMs: 100_000,
  autoDisableAfterMs: 0,
};

const report = (seq: number, extra: Partial<HealthReport> = {}): HealthReport => ({
  ...emptyReport(seq),
  ...extra,
});

const failures = (seq: number, n: number) =>
  report(seq, {
    failures: n,
    failuresSinceSuccess: n,
    failedSinceSuccess: true,
    lastError: "Endpoint answered 503",
  });

async function circuit(db: TestDatabase) {
  const [row] = await db.sql<
    { state: string; failures: number; cooldown: number | null; probe_in_ms: number | null }[]
  >`
    SELECT circuit_state AS state, consecutive_failures AS failures,
      circuit_cooldown_ms::int AS cooldown,
      round(extract(epoch FROM circuit_next_probe_at - now()) * 1000)::int AS probe_in_ms
    FROM subscriptions`;
  return row!;
}

async function withSeeded(test: (db: TestDatabase, seq: number) => Promise<void>) {
  const db = await testDatabase();
  try {
    await test(db, await seedDeliveries(db.sql, 3));
  } finally {
    await db.close();
  }
}

Deno.test("the circuit opens at the threshold of consecutive failures, and not one before", () =>
  withSeeded(async (db, seq) => {
    assert.deepEqual(await recordHealth(db.sql, [failures(seq, 9)], settings), []);
    assert.deepEqual({ ...(await circuit(db)) }, {
      state: "closed",
      failures: 9,
      cooldown: null,
      probe_in_ms: null,
    });
    const [change] = await recordHealth(db.sql, [failures(seq, 1)], settings);
    assert.equal(change!.kind, "circuit_opened");
    assert.equal(change!.reason, "consecutive_failures");
    assert.equal(change!.lastError, "Endpoint answered 503");
    const open = await circuit(db);
    assert.equal(open.state, "open");
    assert.equal(open.cooldown, 30_000);
    assert.ok(open.probe_in_ms! > 29_000 && open.probe_in_ms! <= 30_000);
  }));

Deno.test("a success resets the count; only failures after the last one count", () =>
  withSeeded(async (db, seq) => {
    await recordHealth(db.sql, [failures(seq, 8)], settings);
    await recordHealth(db.sql, [
      report(seq, {
        success: true,
        answered: true,
        failures: 5,
        failuresSinceSuccess: 2,
        failedSinceSuccess: true,
      }),
    ], settings);
    assert.equal((await circuit(db)).failures, 2);
    // Another answer (a 400, say) neither counts nor resets.
    await recordHealth(
      db.sql,
      [report(seq, { answered: true, failedSinceSuccess: true })],
      settings,
    );
    assert.equal((await circuit(db)).failures, 2);
  }));

Deno.test("a failed probe opens the circuit again with twice the cool-down, up to the maximum", () =>
  withSeeded(async (db, seq) => {
    await db.sql`UPDATE subscriptions SET circuit_state = 'half_open', circuit_cooldown_ms = 60000,
      circuit_opened_at = now() - interval '1 minute'`;
    const [change] = await recordHealth(db.sql, [failures(seq, 1)], settings);
    assert.deepEqual([change!.kind, change!.reason], ["circuit_opened", "probe_failed"]);
    const reopened = await circuit(db);
    assert.equal(reopened.state, "open");
    assert.equal(reopened.cooldown, 100_000, "doubled to 120 s, capped at 100 s");
    assert.ok(reopened.probe_in_ms! > 99_000);
  }));

Deno.test("an answer closes a half-open circuit and the deliveries it held go at once", () =>
  withSeeded(async (db, seq) => {
    await db.sql`UPDATE subscriptions SET circuit_state = 'half_open', circuit_cooldown_ms = 30000`;
    await db.sql`UPDATE deliveries SET held_by = 'circuit',
      next_attempt_at = now() + interval '1 hour'`;
    const changes = await recordHealth(
      db.sql,
      [report(seq, { success: true, answered: true })],
      settings,
    );
    assert.deepEqual(changes.map((c) => [c.kind, c.reason]), [["circuit_closed", "answered"]]);
    await announce(db.sql, changes, { channel: db.channel });
    assert.deepEqual({ ...(await circuit(db)) }, {
      state: "closed",
      failures: 0,
      cooldown: null,
      probe_in_ms: null,
    });
    const waiting = await db.sql`
      SELECT count(*)::int AS n FROM deliveries WHERE held_by IS NULL AND next_attempt_at <= now()`;
    assert.equal(waiting[0]!.n, 3);
  }));

Deno.test("a threshold of 0 never opens the circuit", () =>
  withSeeded(async (db, seq) => {
    assert.deepEqual(
      await recordHealth(db.sql, [failures(seq, 1000)], { ...settings, failureThreshold: 0 }),
      [],
    );
    assert.equal((await circuit(db)).state, "closed");
  }));

Deno.test("a subscription failing without a success for AUTO_DISABLE_AFTER_MS is disabled, and 410 disables at once", () =>
  withSeeded(async (db, seq) => {
    const auto = { ...settings, autoDisableAfterMs: 60_000 };
    assert.deepEqual(await recordHealth(db.sql, [failures(seq, 1)], auto), []);
    await db.sql`UPDATE subscriptions SET failing_since = now() - interval '61 seconds'`;
    const changes = await recordHealth(db.sql, [failures(seq, 1)], auto);
    assert.deepEqual(changes.map((c) => [c.kind, c.reason]), [["disabled", "failing"]]);
    await announce(db.sql, changes, { channel: db.channel });
    const [sub] = await db.sql`SELECT active, disabled_reason FROM subscriptions`;
    assert.deepEqual([sub!.active, sub!.disabled_reason], [false, "failing"]);
    const waiting = await db.sql`SELECT status, last_error FROM deliveries`;
    assert.ok(waiting.every((d) => d.status === "failed"));
    assert.ok(waiting.every((d) => d.last_error === "Subscription disabled: failing"));
    const events = await db
      .sql`SELECT type, tenant_id, data FROM events WHERE type LIKE 'dispatch.%'`;
    assert.equal(events.length, 1);
    assert.equal(events[0]!.type, "dispatch.subscription.disabled");
    assert.equal(events[0]!.tenant_id, null);
    assert.deepEqual(Object.keys(events[0]!.data).sort(), [
      "at",
      "last_error",
      "reason",
      "subscription_id",
      "tenant_id",
    ]);

    await db.sql`UPDATE subscriptions SET active = true, disabled_reason = NULL`;
    const gone = await recordHealth(
      db.sql,
      [report(seq, { gone: true, failedSinceSuccess: true })],
      settings,
    );
    assert.deepEqual(gone.map((c) => [c.kind, c.reason]), [["disabled", "gone"]]);
  }));

Deno.test({
  name:
    "health writes lock their subscriptions in seq order, whatever the order of their reports, so two never deadlock",
  // PGlite is one session: nothing waits for anything.
  ignore: Deno.env.get("DISPATCH_TEST_EMBEDDED") === "1",
  fn: () =>
    withTestDatabase(async (db) => {
      const s1 = await seedDeliveries(db.sql, 1, { id: "s1", prefix: "a" });
      const s2 = await seedDeliveries(db.sql, 1, { id: "s2", prefix: "b" });
      // Enough others that the statement finds its subscriptions by index, one report at a time.
      await db.sql`INSERT INTO subscriptions (id, url, event_types, secret)
        SELECT 'x' || g, 'http://127.0.0.1:9/', '{*}', 'x' FROM generate_series(1, 2000) g`;
      await db.sql`ANALYZE subscriptions`;
      const sessions: { sql: Sql; pid: number }[] = [];
      try {
        for (let i = 0; i < 2; i++) sessions.push(await oneSession(db));
        const [a, b] = sessions;
        const started = await db.sql.begin(async (tx) => {
          // Each row locked by a subtransaction of its own: their xmax tell them apart.
          await tx`SAVEPOINT one`;
          await tx`SELECT 1 FROM subscriptions WHERE seq = ${s1} FOR UPDATE`;
          await tx`SAVEPOINT two`;
          await tx`SELECT 1 FROM subscriptions WHERE seq = ${s2} FOR UPDATE`;
          const writes = Promise.allSettled([
            recordHealth(a!.sql, [failures(s2, 1), failures(s1, 1)], settings),
            recordHealth(b!.sql, [failures(s1, 1), failures(s2, 1)], settings),
          ]);
          // What each waits for: the row (the first waiter queues on the transaction holding
          // it, the next on the row itself), answered as whether it is s1.
          const waitsForFirst = await eventually(async () => {
            const rows = await db.sql<{ first: boolean }[]>`
              SELECT (l.locktype = 'transactionid' AND l.transactionid = s.xmax)
                OR (l.locktype = 'tuple' AND l.relation = 'subscriptions'::regclass
                  AND format('(%s,%s)', l.page, l.tuple) = s.ctid::text) AS first
              FROM pg_locks l, subscriptions s
              WHERE s.seq = ${s1} AND l.pid IN (${a!.pid}, ${b!.pid}) AND NOT l.granted
              ORDER BY l.pid`;
            return rows.length === 2 ? rows.map((r) => r.first) : undefined;
          }, { what: "both health writes to wait" });
          // Both wait for s1 and hold nothing: neither can hold what the other waits for.
          assert.deepEqual(waitsForFirst, [true, true]);
          // Not the promise itself: the transaction would wait for it before letting go.
          return { writes };
        });
        const results = await started.writes;
        assert.deepEqual(results.map((r) => r.status), ["fulfilled", "fulfilled"]);
      } finally {
        for (const s of sessions) await s.sql.end({ timeout: 1 });
      }
      const rows = await db.sql`
        SELECT consecutive_failures FROM subscriptions WHERE seq IN (${s1}, ${s2})`;
      assert.deepEqual(rows.map((r) => r.consecutive_failures), [2, 2]);
    }),
});
