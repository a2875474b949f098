import assert from "node:assert/strict";
import type { Sql } from "../../src/db/pool.ts";
import { whileLocked, withTestDatabase } from "../helpers/db.ts";
import { claim, complete, outcome, seedDeliveries } from "../helpers/queue.ts";

/** Deliveries of subscription `id`: event, status, attempts, held_by, due in ms from now. */
async function state(sql: Sql, id = "s") {
  return await sql<
    { event_id: string; status: string; attempts: number; held_by: string | null; due_ms: number }[]
  >`
    SELECT event_id, status, attempts, held_by,
      round(extract(epoch FROM next_attempt_at - now()) * 1000)::int AS due_ms
    FROM deliveries WHERE subscription_id = ${id} ORDER BY id`;
}

Deno.test("a claim takes due first attempts before retries, and keeps a quarter for retries", () =>
  withTestDatabase(async (db) => {
    await seedDeliveries(db.sql, 20, { prefix: "r" });
    // The retries have waited longer than any first attempt.
    await db.sql`UPDATE deliveries SET status = 'retrying', attempts = 1,
      next_attempt_at = now() - interval '1 hour'`;
    await seedDeliveries(db.sql, 5, { id: "t", prefix: "p" });
    const first = await claim(db.sql, { limit: 8 });
    assert.deepEqual(
      first.map((d) => d.event_id[0]).sort().join(""),
      "ppppprrr",
    );
    // With first attempts to spare, retries still get their quarter.
    await seedDeliveries(db.sql, 20, { id: "u", prefix: "q" });
    const second = await claim(db.sql, { limit: 8 });
    const kinds = second.map((d) => d.event_id[0]);
    assert.equal(kinds.filter((k) => k === "q").length, 6);
    assert.equal(kinds.filter((k) => k === "r").length, 2);
  }));

Deno.test("a rate-limited subscription gets its next slots, each with its time, and the rest wait unspent", () =>
  withTestDatabase(async (db) => {
    await seedDeliveries(db.sql, 30, { rateLimit: 10 });
    const before = Date.now();
    const claimed = await claim(db.sql, { limit: 30, horizonMs: 1000 });
    assert.equal(claimed.length, 10);
    const offsets = claimed.map((d) => d.send_at === null ? 0 : d.send_at.getTime() - before)
      .sort((a, b) => a - b);
    // Paced 100 ms apart, not released at once.
    for (let i = 1; i < offsets.length; i++) {
      assert.ok(Math.abs(offsets[i]! - offsets[i - 1]! - 100) <= 5, `${offsets}`);
    }
    const waiting = (await state(db.sql)).filter((d) => d.status === "pending");
    assert.equal(waiting.length, 20);
    assert.ok(waiting.every((d) => d.held_by === "rate_limit" && d.attempts === 0));
    assert.ok(waiting.every((d) => d.due_ms >= 900), "held until their slot");
    // Nothing is due before the next slot.
    assert.deepEqual(await claim(db.sql, { limit: 30 }), []);
  }));

Deno.test("max_in_flight holds what exceeds it, and each finished claim lets one go", () =>
  withTestDatabase(async (db) => {
    await seedDeliveries(db.sql, 10, { maxInFlight: 2 });
    const claimed = await claim(db.sql, { limit: 10, recheckMs: 60_000 });
    assert.equal(claimed.length, 2);
    const held = (await state(db.sql)).filter((d) => d.held_by === "max_in_flight");
    assert.equal(held.length, 8);
    assert.ok(held.every((d) => d.attempts === 0 && d.due_ms > 50_000));
    assert.deepEqual(await claim(db.sql, { limit: 10 }), []);
    await complete(db.sql, "w", [outcome(claimed[0]!, "delivered")]);
    // Even with every held one due again, one claim is out: one more may go.
    await db.sql`UPDATE deliveries SET next_attempt_at = now() WHERE status = 'pending'`;
    const next = await claim(db.sql, { limit: 10, recheckMs: 60_000 });
    assert.equal(next.length, 1);
    assert.equal((await state(db.sql)).filter((d) => d.status === "processing").length, 2);
  }));

Deno.test("an open circuit holds every delivery until its probe, then lets exactly one go", () =>
  withTestDatabase(async (db) => {
    await seedDeliveries(db.sql, 5);
    await db.sql`UPDATE subscriptions SET circuit_state = 'open', circuit_opened_at = now(),
      circuit_next_probe_at = now() + interval '1 minute', circuit_cooldown_ms = 60000`;
    assert.deepEqual(await claim(db.sql), []);
    const held = await state(db.sql);
    assert.ok(held.every((d) => d.held_by === "circuit" && d.attempts === 0));
    assert.ok(held.every((d) => d.due_ms > 55_000 && d.due_ms <= 60_000));
    // The cool-down is over.
    await db.sql`UPDATE subscriptions SET circuit_next_probe_at = now() - interval '1 second'`;
    await db.sql`UPDATE deliveries SET next_attempt_at = now() - interval '1 second'`;
    const probe = await claim(db.sql);
    assert.equal(probe.length, 1);
    const [sub] = await db.sql`SELECT circuit_state FROM subscriptions`;
    assert.equal(sub!.circuit_state, "half_open");
    await db.sql`UPDATE deliveries SET next_attempt_at = now() - interval '1 second'
      WHERE status = 'pending'`;
    assert.deepEqual(await claim(db.sql), [], "one probe at a time");
  }));

Deno.test({
  name:
    "a limited subscription another process is claiming for is skipped, never waited for, and others go on",
  ignore: Deno.env.get("DISPATCH_TEST_EMBEDDED") === "1",
  fn: () =>
    withTestDatabase(async (db) => {
      await seedDeliveries(db.sql, 3, { maxInFlight: 5 });
      await seedDeliveries(db.sql, 3, { id: "free", prefix: "f" });
      const { value: deliveries, waited } = await whileLocked(
        db.sql,
        (tx) => tx`SELECT 1 FROM subscriptions WHERE id = 's' FOR UPDATE`,
        () => claim(db.sql),
      );
      const whileHeld = !waited;
      assert.ok(whileHeld, "the claim waited for the subscription's lock");
      assert.deepEqual(deliveries.map((d) => d.event_id).sort(), ["f1", "f2", "f3"]);
      const untouched = await state(db.sql);
      assert.ok(untouched.every((d) => d.status === "pending" && d.held_by === null));
    }),
});

Deno.test({
  name:
    "dispatch_claims_out, which max_in_flight counts with, sees claims committed after its statement began; the statement's own snapshot does not",
  // PGlite has one backend: no other session can commit while a statement waits.
  ignore: Deno.env.get("DISPATCH_TEST_EMBEDDED") === "1",
  fn: () =>
    withTestDatabase(async (db) => {
      const seq = await seedDeliveries(db.sql, 3, { maxInFlight: 2 });
      const key = Math.floor(Math.random() * 2 ** 31);
      const gate = await db.sql.reserve();
      try {
        await gate`SELECT pg_advisory_lock(${key})`;
        // Its snapshot is taken, then it waits at the gate, then it counts.
        const counting = db.sql<{ fresh: number; snapshot: number }[]>`
          WITH gate AS MATERIALIZED (SELECT pg_advisory_xact_lock(${key}))
          SELECT dispatch_claims_out(${seq}) AS fresh,
            (SELECT count(*)::int FROM deliveries
              WHERE subscription_seq = ${seq} AND status = 'processing') AS snapshot
          FROM gate`.execute();
        const waiting = async () =>
          (await db.sql<{ n: number }[]>`
            SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE wait_event = 'advisory' AND query LIKE '%dispatch_claims_out%'`)[0]!.n;
        while (await waiting() === 0) { /* until the statement waits at the gate */ }
        // Another process claims two and commits while the statement waits.
        assert.equal((await claim(db.sql, { limit: 2 })).length, 2);
        await gate`SELECT pg_advisory_unlock(${key})`;
        assert.deepEqual([...await counting], [{ fresh: 2, snapshot: 0 }]);
      } finally {
        gate.release();
      }
    }),
});
