import assert from "node:assert/strict";
import { migrate, migrations } from "../../src/db/migrate.ts";
import { connect, useSchema } from "../../src/db/pool.ts";
import {
  applyHealthChanges,
  emptyReport,
  type HealthSettings,
  recordHealth,
} from "../../src/engine/health.ts";
import { queueStats } from "../../src/views/stats.ts";
import { databaseUrl, type TestDatabase, withTestDatabase } from "../helpers/db.ts";
import { claim, seedDeliveries } from "../helpers/queue.ts";

const settings: HealthSettings = {
  failureThreshold: 2,
  cooldownMs: 60_000,
  maxCooldownMs: 60_000,
  autoDisableAfterMs: 60_000,
};

const failures = (seq: number, n: number) => ({
  ...emptyReport(seq),
  failures: n,
  failuresSinceSuccess: n,
  failedSinceSuccess: true,
  lastError: "Endpoint answered 503",
});

/** A subscription of `n` deliveries whose circuit opened: one failed, the rest held. */
async function openCircuit(db: TestDatabase, n: number) {
  const seq = await seedDeliveries(db.sql, n);
  await applyHealthChanges(db.sql, await recordHealth(db.sql, [failures(seq, 2)], settings));
  const [sub] = await db.sql`SELECT circuit_state FROM subscriptions`;
  assert.equal(sub!.circuit_state, "open");
  assert.equal((await queueStats(db.sql)).openCircuits, 1);
  return seq;
}

async function subscription(db: TestDatabase) {
  const [sub] = await db.sql`
    SELECT active, disabled_reason, circuit_state, circuit_opened_at, circuit_next_probe_at,
      circuit_cooldown_ms FROM subscriptions`;
  return { ...sub };
}

const closedCircuit = {
  circuit_state: "closed",
  circuit_opened_at: null,
  circuit_next_probe_at: null,
  circuit_cooldown_ms: null,
};

Deno.test('PATCH {"active": false} cancels the waiting deliveries and closes the circuit, whatever its state', () =>
  withTestDatabase(async (db) => {
    await openCircuit(db, 5);
    // One in flight, a probe say: it finishes; the four that wait are held by the circuit.
    await db.sql`UPDATE deliveries SET status = 'processing', held_by = NULL, attempts = 1,
      locked_by = 'w', locked_until = now() + interval '1 minute' WHERE event_id = 'e1'`;
    const held = await db.sql`SELECT held_by FROM deliveries WHERE status = 'pending'`;
    assert.deepEqual(held.map((d) => d.held_by), Array(4).fill("circuit"));

    const row = await db.engine.updateSubscription("s", { active: false });
    assert.equal(row!.active, false);
    assert.equal(row!.circuit.state, "closed");
    assert.deepEqual(await subscription(db), {
      active: false,
      disabled_reason: null,
      ...closedCircuit,
    });
    const after = await db.sql`
      SELECT status, held_by, last_error FROM deliveries WHERE event_id <> 'e1'`;
    assert.deepEqual(
      after.map((d) => [d.status, d.held_by, d.last_error]),
      Array(4).fill(["failed", null, "Subscription disabled"]),
    );
    const [inFlight] = await db.sql`SELECT status FROM deliveries WHERE event_id = 'e1'`;
    assert.equal(inFlight!.status, "processing");
    assert.equal((await queueStats(db.sql)).openCircuits, 0);
  }));

Deno.test('PATCH {"active": false} cancels the waiting deliveries of a subscription whose circuit is closed', () =>
  withTestDatabase(async (db) => {
    await seedDeliveries(db.sql, 3);
    await db.engine.updateSubscription("s", { active: false });
    const after = await db.sql`SELECT DISTINCT status, last_error FROM deliveries`;
    assert.deepEqual(after.map((d) => [d.status, d.last_error]), [
      ["failed", "Subscription disabled"],
    ]);
  }));

Deno.test('PATCH {"active": false} cancels the deliveries parked for max_in_flight too', () =>
  withTestDatabase(async (db) => {
    await seedDeliveries(db.sql, 5, { maxInFlight: 2 });
    assert.equal((await claim(db.sql, { limit: 5 })).length, 2);
    const [parked] = await db.sql`SELECT count(*)::int AS n FROM deliveries
      WHERE next_attempt_at = 'infinity' AND held_by = 'max_in_flight'`;
    assert.equal(parked!.n, 3);
    await db.engine.updateSubscription("s", { active: false });
    const after = await db.sql`
      SELECT status, held_by, last_error FROM deliveries ORDER BY event_id`;
    assert.deepEqual(after.map((d) => [d.status, d.held_by, d.last_error]), [
      ["processing", null, null],
      ["processing", null, null],
      ...Array(3).fill(["failed", null, "Subscription disabled"]),
    ]);
  }));

Deno.test("disabling a subscription whose circuit is open closes it, announced only as the disabling", () =>
  withTestDatabase(async (db) => {
    const seq = await openCircuit(db, 3);
    await db.sql`UPDATE subscriptions SET failing_since = now() - interval '61 seconds'`;
    const changes = await recordHealth(db.sql, [failures(seq, 1)], settings);
    assert.deepEqual(changes.map((c) => [c.kind, c.reason]), [["disabled", "failing"]]);
    await applyHealthChanges(db.sql, changes);
    assert.deepEqual(await subscription(db), {
      active: false,
      disabled_reason: "failing",
      ...closedCircuit,
    });
    assert.equal((await queueStats(db.sql)).openCircuits, 0);
    // A result that lands later counts, but opens nothing: nothing of it waits.
    assert.deepEqual(await recordHealth(db.sql, [failures(seq, 2)], settings), []);
    assert.equal((await subscription(db)).circuit_state, "closed");
  }));

Deno.test("410 Gone on a half-open circuit disables the subscription and closes the circuit", () =>
  withTestDatabase(async (db) => {
    const seq = await openCircuit(db, 2);
    await db.sql`UPDATE subscriptions SET circuit_state = 'half_open'`;
    const changes = await recordHealth(db.sql, [{
      ...emptyReport(seq),
      gone: true,
      failedSinceSuccess: true,
    }], settings);
    assert.deepEqual(changes.map((c) => [c.kind, c.reason]), [["disabled", "gone"]]);
    assert.deepEqual(await subscription(db), {
      active: false,
      disabled_reason: "gone",
      ...closedCircuit,
    });
  }));

Deno.test("migration 7 closes the circuits of subscriptions disabled before it, and a disabled subscription cannot have one open", async () => {
  const url = databaseUrl();
  const schema = `t_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const admin = connect(url, { max: 1 });
  await admin.unsafe(`CREATE SCHEMA ${schema}`);
  const sql = connect(url, { schema, max: 1 });
  try {
    await useSchema(sql, schema);
    await sql`CREATE TABLE dispatch_migrations (version integer PRIMARY KEY, name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`;
    for (const m of migrations.filter((m) => m.version < 7)) {
      await sql.unsafe(m.sql);
      await sql`INSERT INTO dispatch_migrations (version, name) VALUES (${m.version}, ${m.name})`;
    }
    await sql`INSERT INTO subscriptions (id, url, event_types, secret, active, circuit_state,
        circuit_opened_at, circuit_next_probe_at, circuit_cooldown_ms)
      VALUES ('off', 'http://127.0.0.1:9/', '{*}', 'x', false, 'open', now(),
        now() + interval '1 hour', 3600000),
        ('on', 'http://127.0.0.1:9/', '{*}', 'x', true, 'open', now(),
        now() + interval '1 hour', 3600000)`;
    await migrate(sql);
    const rows = await sql`SELECT id, circuit_state FROM subscriptions ORDER BY id`;
    assert.deepEqual(rows.map((r) => [r.id, r.circuit_state]), [["off", "closed"], ["on", "open"]]);
    assert.equal((await queueStats(sql)).openCircuits, 1);
    await assert.rejects(
      sql`UPDATE subscriptions SET active = false WHERE id = 'on'`,
      /subscriptions_disabled_circuit_closed/,
    );
  } finally {
    await sql.end({ timeout: 1 });
    await admin.unsafe(`DROP SCHEMA ${schema} CASCADE`);
    await admin.end();
  }
});
