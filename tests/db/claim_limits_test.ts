import assert from "node:assert/strict";
import type { Sql } from "../../src/db/pool.ts";
import { claimDeliveries } from "../../src/engine/claim.ts";
import { completeDeliveries } from "../../src/engine/complete.ts";
import { applyHealthChanges, emptyReport, recordHealth } from "../../src/engine/health.ts";
import { waitsForLock, whileLocked, withTestDatabase } from "../helpers/db.ts";
import { claim, claimOptions, outcome, seedDeliveries } from "../helpers/queue.ts";

/** Deliveries of subscription `id`: event, status, attempts, held_by, due in ms from now (null: parked). */
async function state(sql: Sql, id = "s") {
  return await sql<
    {
      event_id: string;
      status: string;
      attempts: number;
      held_by: string | null;
      due_ms: number | null;
    }[]
  >`
    SELECT event_id, status, attempts, held_by, CASE WHEN next_attempt_at < 'infinity'
      THEN round(extract(epoch FROM next_attempt_at - now()) * 1000)::int END AS due_ms
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
    const [before] = await db.sql<{ at: Date }[]>`SELECT clock_timestamp() AS at`;
    const claimed = await claim(db.sql, { limit: 30, horizonMs: 1000 });
    assert.equal(claimed.length, 10);
    // The first at once, the others paced 100 ms apart from it, not released at once.
    assert.equal(claimed.filter((d) => d.send_in_ms === null).length, 1);
    const offsets = claimed.flatMap((d) => d.send_in_ms ?? []).sort((a, b) => a - b);
    assert.equal(offsets.length, 9);
    // Counted from one reading at the answer, so exactly 100 ms apart; a slow claim (a busy
    // machine) has seen its first slots pass, and those go at once (0).
    const ahead = offsets.filter((o) => o > 0);
    for (let i = 1; i < ahead.length; i++) {
      assert.ok(Math.abs(ahead[i]! - ahead[i - 1]! - 100) <= 1, `${offsets}`);
    }
    const waiting = (await state(db.sql)).filter((d) => d.status === "pending");
    assert.equal(waiting.length, 20);
    assert.ok(waiting.every((d) => d.held_by === "rate_limit" && d.attempts === 0));
    // The 11th slot is a second after the claim's start, however long the checks take.
    const [held] = await db.sql<{ first: Date }[]>`
      SELECT min(next_attempt_at) AS first FROM deliveries WHERE held_by = 'rate_limit'`;
    assert.ok(held!.first.getTime() - before!.at.getTime() >= 1000, "held until their slot");
    // Nothing is due before the next slot.
    assert.deepEqual(await claim(db.sql, { limit: 30 }), []);
  }));

Deno.test("max_in_flight parks what exceeds it, and each finished claim lets one go", () =>
  withTestDatabase(async (db) => {
    await seedDeliveries(db.sql, 10, { maxInFlight: 2 });
    const claimed = await claim(db.sql, { limit: 10 });
    assert.equal(claimed.length, 2);
    const held = (await state(db.sql)).filter((d) => d.held_by === "max_in_flight");
    assert.equal(held.length, 8);
    assert.ok(held.every((d) => d.attempts === 0 && d.due_ms === null), "parked");
    assert.deepEqual(await claim(db.sql, { limit: 10 }), []);
    await completeDeliveries(db.sql, "w", [outcome(claimed[0]!, "delivered")]);
    // The oldest parked one, and only it, is due again.
    const due = (await state(db.sql)).filter((d) => d.status === "pending" && d.due_ms !== null);
    assert.deepEqual(due.map((d) => [d.event_id, d.held_by]), [["e3", null]]);
    const next = await claim(db.sql, { limit: 10 });
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
    // One stays due at the probe; the others are parked until the circuit closes.
    assert.ok(held[0]!.due_ms! > 55_000 && held[0]!.due_ms! <= 60_000);
    assert.ok(held.slice(1).every((d) => d.due_ms === null));
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

Deno.test("20,000 held deliveries cost the claims nothing: a healthy subscription's new delivery goes in the first claim", () =>
  withTestDatabase(async (db) => {
    await seedDeliveries(db.sql, 20_000, { id: "slow", prefix: "s", maxInFlight: 2 });
    // Claimed until nothing more is due: 2 go, the rest is held.
    let claims = 0;
    for (let scanned = 100; scanned === 100; claims++) {
      ({ scanned } = await claimDeliveries(db.sql, claimOptions({ limit: 100 })));
    }
    assert.equal(claims, 201, "200 claims of 100, then none due");
    assert.equal((await state(db.sql, "slow")).filter((d) => d.held_by !== null).length, 19_998);
    // A minute passes: whatever waits for a time is due by now.
    await db.sql`UPDATE deliveries SET next_attempt_at = next_attempt_at - interval '1 minute'
      WHERE status IN ('pending', 'retrying')`;
    await seedDeliveries(db.sql, 1, { id: "healthy", prefix: "h" });
    const first = await claimDeliveries(db.sql, claimOptions({ limit: 100 }));
    assert.deepEqual(first.deliveries.map((d) => d.event_id), ["h1"]);
    assert.equal(first.scanned, 1, "the held backlog is not read");
  }));

Deno.test({
  name:
    "a claim that parks a delivery while a claim of its subscription ends: the end waits for the claim, then lets it go",
  // PGlite has one backend: no statement can wait for another session's lock.
  ignore: Deno.env.get("DISPATCH_TEST_EMBEDDED") === "1",
  fn: () =>
    withTestDatabase(async (db) => {
      await seedDeliveries(db.sql, 2, { maxInFlight: 1 });
      const [out] = await claim(db.sql, { limit: 1 });
      const parked = Promise.withResolvers<void>();
      const commit = Promise.withResolvers<void>();
      // A claim that counted `out` as in flight: it holds the subscription and parks e2.
      const parking = db.sql.begin(async (tx) => {
        await tx`SELECT 1 FROM subscriptions WHERE id = 's' FOR UPDATE`;
        await tx`UPDATE deliveries SET held_by = 'max_in_flight', next_attempt_at = 'infinity'
          WHERE event_id = 'e2'`;
        parked.resolve();
        await commit.promise;
      });
      await parked.promise;
      let ended = false;
      const pid = Promise.withResolvers<number>();
      const ending = db.sql.begin(async (tx) => {
        pid.resolve((await tx<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`)[0]!.pid);
        await completeDeliveries(tx as unknown as Sql, "w", [outcome(out!, "delivered")]);
      }).finally(() => ended = true);
      const ender = await pid.promise;
      while (!ended && !await waitsForLock(db.sql, ender)) { /* until it waits, or is done */ }
      commit.resolve();
      await parking;
      await ending;
      const [e2] = await state(db.sql).then((rows) => rows.filter((d) => d.event_id === "e2"));
      assert.deepEqual([e2!.held_by, e2!.due_ms !== null], [null, true], "let go");
    }),
});

Deno.test("a claim gives a subscription only what is left of its fair share, and skips one that holds all of it", () =>
  withTestDatabase(async (db) => {
    const a = await seedDeliveries(db.sql, 5, { id: "a", prefix: "a" });
    const b = await seedDeliveries(db.sql, 5, { id: "b", prefix: "b" });
    await db.sql`UPDATE deliveries SET next_attempt_at = now() - interval '1 minute'
      WHERE subscription_id = 'a'`;
    // The worker sends one of a's and three of b's already; a share is 3.
    const busy = [{ seq: a, tenant: null }, ...Array(3).fill({ seq: b, tenant: null })];
    const claimed = await claim(db.sql, { limit: 10, fair: { cap: 3, busy } });
    assert.deepEqual(claimed.map((d) => d.event_id).sort(), ["a1", "a2"]);
  }));

Deno.test("a circuit that opens while all that waits is parked for max_in_flight keeps one delivery due at its probe", () =>
  withTestDatabase(async (db) => {
    const seq = await seedDeliveries(db.sql, 3, { maxInFlight: 1 });
    assert.equal((await claim(db.sql)).length, 1);
    const failed = { ...emptyReport(seq), failures: 1, failuresSinceSuccess: 1 };
    failed.failedSinceSuccess = true;
    const changes = await recordHealth(db.sql, [failed], {
      failureThreshold: 1,
      cooldownMs: 60_000,
      maxCooldownMs: 60_000,
      autoDisableAfterMs: 0,
    });
    await applyHealthChanges(db.sql, changes);
    const waiting = (await state(db.sql)).filter((d) => d.status === "pending");
    assert.deepEqual(waiting.map((d) => [d.event_id, d.held_by, d.due_ms === null]), [
      ["e2", "circuit", false],
      ["e3", "max_in_flight", true],
    ]);
    assert.ok(waiting[0]!.due_ms! > 55_000, "due at the probe");
  }));
