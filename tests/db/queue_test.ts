import assert from "node:assert/strict";
import type { Sql } from "../../src/db/pool.ts";
import { completeDeliveries } from "../../src/engine/complete.ts";
import { lockSubscriptions, recordHealth } from "../../src/engine/health.ts";
import { handBack, renewLeases, rescueExpired } from "../../src/engine/lease.ts";
import type { Completion } from "../../src/engine/shapes.ts";
import { healthReports } from "../../src/worker/completer.ts";
import { waitsForLock, whileLocked, withTestDatabase } from "../helpers/db.ts";
import { claim, complete, outcome, seedDeliveries } from "../helpers/queue.ts";

Deno.test({
  name: "claimDeliveries skips a row another transaction holds, without waiting for it",
  // PGlite runs one transaction at a time: the claim would wait for the lock holder.
  ignore: Deno.env.get("DISPATCH_TEST_EMBEDDED") === "1",
  fn: () =>
    withTestDatabase(async (db) => {
      await seedDeliveries(db.sql, 3);
      const { value: claimed, waited } = await whileLocked(
        db.sql,
        (tx) => tx`SELECT id FROM deliveries WHERE event_id = 'e1' FOR UPDATE`,
        () => claim(db.sql),
      );
      const whileHeld = !waited;
      assert.ok(whileHeld, "the claim waited for the locked row");
      assert.deepEqual(claimed.map((d) => d.event_id).sort(), ["e2", "e3"]);
    }),
});

Deno.test("claimDeliveries counts the attempt and says when it spends the last of the budget", () =>
  withTestDatabase(async (db) => {
    await seedDeliveries(db.sql, 1);
    const first = await claim(db.sql);
    assert.deepEqual(first.map((d) => [d.attempt, d.last_attempt]), [[1, false]]);
    await db.sql`UPDATE deliveries SET status = 'retrying', attempts = 2, locked_by = NULL,
      locked_until = NULL`;
    assert.deepEqual((await claim(db.sql)).map((d) => [d.attempt, d.last_attempt]), [[3, true]]);
    // After a requeue the budget counts from attempt_base.
    await db.sql`UPDATE deliveries SET status = 'retrying', attempt_base = 3, locked_by = NULL,
      locked_until = NULL`;
    assert.deepEqual((await claim(db.sql)).map((d) => [d.attempt, d.last_attempt]), [[4, false]]);
    // The subscription's own max_attempts wins over the default.
    await db.sql`UPDATE subscriptions SET max_attempts = 2`;
    await db.sql`UPDATE deliveries SET status = 'retrying', locked_by = NULL, locked_until = NULL`;
    assert.deepEqual((await claim(db.sql)).map((d) => [d.attempt, d.last_attempt]), [[5, true]]);
  }));

Deno.test("claimDeliveries joins the subscription that existed at fan-out, never a new one with its id", () =>
  withTestDatabase(async (db) => {
    await seedDeliveries(db.sql, 1);
    await db.sql`DELETE FROM subscriptions WHERE id = 's'`;
    await db.sql`INSERT INTO subscriptions (id, url, event_types, secret)
      VALUES ('s', 'http://127.0.0.1:10/new', '{other}', 'another-secret')`;
    const claimed = await claim(db.sql);
    assert.equal(claimed.length, 1, "a delivery whose subscription is gone is still claimed");
    assert.equal(claimed[0]!.url, null);
    assert.equal(claimed[0]!.active, null);
    assert.deepEqual(claimed[0]!.secrets, []);
  }));

Deno.test("completeDeliveries changes only the claim it was made for: same worker, same attempt", () =>
  withTestDatabase(async (db) => {
    await seedDeliveries(db.sql, 1);
    const [d1] = await claim(db.sql);
    const retry = outcome(d1!, "retrying");
    assert.deepEqual(
      await complete(db.sql, "other-worker", [retry]),
      [
        false,
      ],
    );
    let [row] = await db.sql`SELECT status, locked_by FROM deliveries`;
    assert.deepEqual([row!.status, row!.locked_by], ["processing", "w"]);
    assert.deepEqual(await complete(db.sql, "w", [retry]), [
      true,
    ]);
    // The same worker claims attempt 2; the first result is written again (its answer was lost).
    const [d2] = await claim(db.sql);
    assert.equal(d2!.attempt, 2);
    assert.deepEqual(await complete(db.sql, "w", [retry]), [
      false,
    ]);
    [row] = await db.sql`SELECT status, attempts, locked_by FROM deliveries`;
    assert.deepEqual([row!.status, row!.attempts, row!.locked_by], ["processing", 2, "w"]);
    const attempts = await db.sql`SELECT attempt FROM delivery_attempts ORDER BY attempt`;
    assert.deepEqual(attempts.map((a) => a.attempt), [1]);
  }));

Deno.test("completeDeliveries records a late result in place of the rescuer's lease_expired row, leaving the delivery to its new owner", () =>
  withTestDatabase(async (db) => {
    await seedDeliveries(db.sql, 1);
    const [d1] = await claim(db.sql, { workerId: "old" });
    await db.sql`UPDATE deliveries SET locked_until = now() - interval '1 second'`;
    assert.equal(
      await rescueExpired(db.sql, { maxAttempts: 3, limit: 10 }),
      1,
    );
    const [d2] = await claim(db.sql, { workerId: "new" });
    assert.equal(d2!.attempt, 2);
    const late = outcome(d1!, "delivered", { lastStatusCode: 200 });
    assert.deepEqual(await complete(db.sql, "old", [late]), [
      false,
    ]);
    const [row] = await db.sql`SELECT status, attempts, locked_by FROM deliveries`;
    assert.deepEqual([row!.status, row!.attempts, row!.locked_by], ["processing", 2, "new"]);
    const attempts = await db.sql`
      SELECT attempt, status_code, error_class, response_body FROM delivery_attempts`;
    assert.deepEqual(
      attempts.map((a) => [a.attempt, a.status_code, a.error_class, a.response_body]),
      [
        [1, 200, null, "ok"],
      ],
    );
  }));

Deno.test("handBack returns only the given claims, uncounted", () =>
  withTestDatabase(async (db) => {
    await seedDeliveries(db.sql, 3);
    const [a, b, c] = (await claim(db.sql)).sort((x, y) => x.id - y.id);
    const lease = (d: typeof a) => ({ id: d!.id, attempt: d!.attempt });
    assert.equal(await handBack(db.sql, "other-worker", { only: [lease(a)] }), 0);
    // A lease with another attempt number is not this claim.
    assert.equal(await handBack(db.sql, "w", { only: [{ id: a!.id, attempt: 7 }] }), 0);
    assert.equal(await handBack(db.sql, "w", { only: [lease(a), lease(b)] }), 2);
    assert.equal(await handBack(db.sql, "w", { only: [] }), 0);
    const rows = await db.sql`SELECT id, status, attempts, locked_by FROM deliveries ORDER BY id`;
    assert.deepEqual(rows.map((r) => [r.id, r.status, r.attempts, r.locked_by]), [
      [a!.id, "pending", 0, null],
      [b!.id, "pending", 0, null],
      [c!.id, "processing", 1, "w"],
    ]);
  }));

Deno.test("handBack returns every claim of the worker except the ones it still holds", () =>
  withTestDatabase(async (db) => {
    await seedDeliveries(db.sql, 3);
    const [a, b, c] = (await claim(db.sql)).sort((x, y) => x.id - y.id);
    assert.equal(await handBack(db.sql, "w", { except: [{ id: b!.id, attempt: b!.attempt }] }), 2);
    const rows = await db.sql`SELECT id, status, locked_by FROM deliveries ORDER BY id`;
    assert.deepEqual(rows.map((r) => [r.id, r.status, r.locked_by]), [
      [a!.id, "pending", null],
      [b!.id, "processing", "w"],
      [c!.id, "pending", null],
    ]);
  }));

Deno.test("renewLeases extends only the leases that are still the worker's", () =>
  withTestDatabase(async (db) => {
    await seedDeliveries(db.sql, 2);
    const [a, b] = (await claim(db.sql)).sort((x, y) => x.id - y.id);
    await db.sql`UPDATE deliveries SET locked_until = now() + interval '1 second'`;
    const renewed = await renewLeases(db.sql, {
      workerId: "w",
      leases: [{ id: a!.id, attempt: a!.attempt }, { id: b!.id, attempt: b!.attempt + 1 }],
      leaseMs: 60_000,
    });
    assert.equal(renewed, 1);
    const rows = await db.sql<{ long: boolean }[]>`
      SELECT locked_until > now() + interval '30 seconds' AS long FROM deliveries ORDER BY id`;
    assert.deepEqual(rows.map((r) => r.long), [true, false]);
    assert.equal(
      await renewLeases(db.sql, {
        workerId: "x",
        leases: [{ id: a!.id, attempt: 1 }],
        leaseMs: 1,
      }),
      0,
    );
  }));

Deno.test("rescueExpired fails what spent its budget, retries what did not, and records lease_expired", () =>
  withTestDatabase(async (db) => {
    const seq = await seedDeliveries(db.sql, 4);
    // [event, attempts, attempt_base]: MAX_ATTEMPTS is 3 here.
    const cases: [string, number, number][] = [["e1", 3, 0], ["e2", 2, 0], ["e3", 5, 2], [
      "e4",
      4,
      1,
    ]];
    for (const [event, attempts, base] of cases) {
      await db.sql`UPDATE deliveries SET status = 'processing', attempts = ${attempts},
        attempt_base = ${base}, locked_by = 'dead', locked_until = now() - interval '1 second'
        WHERE event_id = ${event}`;
    }
    // A lease that has not run out is left alone.
    await db.sql`INSERT INTO events (id, type, data) VALUES ('live', 'a', '{}')`;
    await db.sql`INSERT INTO deliveries (event_id, subscription_id, subscription_seq, status,
      attempts, locked_by, locked_until) VALUES ('live', 's', ${seq}, 'processing', 1, 'alive',
      now() + interval '1 minute')`;
    assert.equal(
      await rescueExpired(db.sql, { maxAttempts: 3, limit: 10 }),
      4,
    );
    const rows = await db.sql`SELECT event_id, status FROM deliveries ORDER BY event_id`;
    assert.deepEqual(rows.map((r) => [r.event_id, r.status]), [
      ["e1", "failed"],
      ["e2", "retrying"],
      ["e3", "failed"],
      ["e4", "failed"],
      ["live", "processing"],
    ]);
    const attempts = await db.sql`
      SELECT d.event_id, a.attempt, a.error_class FROM delivery_attempts a
      JOIN deliveries d ON d.id = a.delivery_id ORDER BY d.event_id`;
    assert.deepEqual(attempts.map((a) => [a.event_id, a.attempt, a.error_class]), [
      ["e1", 3, "lease_expired"],
      ["e2", 2, "lease_expired"],
      ["e3", 5, "lease_expired"],
      ["e4", 4, "lease_expired"],
    ]);
  }));

Deno.test("rescueExpired follows the subscription's own max_attempts in both directions", () =>
  withTestDatabase(async (db) => {
    await seedDeliveries(db.sql, 2, { maxAttempts: 5 });
    await db.sql`UPDATE deliveries SET status = 'processing', locked_by = 'dead',
      locked_until = now() - interval '1 second',
      attempts = CASE event_id WHEN 'e1' THEN 4 ELSE 5 END`;
    // MAX_ATTEMPTS 3 alone would fail both.
    assert.equal(
      await rescueExpired(db.sql, { maxAttempts: 3, limit: 10 }),
      2,
    );
    let rows = await db.sql`SELECT event_id, status FROM deliveries ORDER BY event_id`;
    assert.deepEqual(rows.map((r) => [r.event_id, r.status]), [["e1", "retrying"], [
      "e2",
      "failed",
    ]]);

    await db.sql`UPDATE subscriptions SET max_attempts = 1`;
    await db.sql`UPDATE deliveries SET status = 'processing', attempts = 1, attempt_base = 0,
      locked_by = 'dead', locked_until = now() - interval '1 second'`;
    // MAX_ATTEMPTS 3 alone would retry both.
    assert.equal(
      await rescueExpired(db.sql, { maxAttempts: 3, limit: 10 }),
      2,
    );
    rows = await db.sql`SELECT status FROM deliveries`;
    assert.deepEqual(rows.map((r) => r.status), ["failed", "failed"]);
  }));

Deno.test({
  name:
    "two result writes that change the health of each other's subscriptions take their locks in one order, so neither deadlocks",
  // PGlite runs one transaction at a time.
  ignore: Deno.env.get("DISPATCH_TEST_EMBEDDED") === "1",
  fn: () =>
    withTestDatabase(async (db) => {
      const settings = {
        failureThreshold: 10,
        cooldownMs: 30_000,
        maxCooldownMs: 60_000,
        autoDisableAfterMs: 0,
      };
      await seedDeliveries(db.sql, 2, { id: "one", prefix: "a", maxInFlight: 5 });
      await seedDeliveries(db.sql, 2, { id: "two", prefix: "b", maxInFlight: 5 });
      const got = new Map((await claim(db.sql)).map((d) => [d.event_id, d]));
      const stale = (id: string) => ({ ...outcome(got.get(id)!, "retrying"), attempt: 9 });
      // Each writes a result of its own subscription and a late one of the other's.
      const batches = {
        a: [outcome(got.get("a1")!, "delivered"), stale("b1")],
        b: [outcome(got.get("b2")!, "delivered"), stale("a2")],
      };
      const firstDone = Promise.withResolvers<void>();
      const secondWritten = Promise.withResolvers<void>();
      const pids: number[] = [];
      const write = (batch: Completion[], between: () => Promise<void>) =>
        db.sql.begin(async (tx) => {
          const sql = tx as unknown as Sql;
          pids.push((await sql<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`)[0]!.pid);
          await lockSubscriptions(sql, batch.map((c) => c.subscriptionSeq));
          await completeDeliveries(sql, "w", batch);
          await between();
          await recordHealth(sql, healthReports(batch), settings);
        });
      const a = write(batches.a, async () => {
        firstDone.resolve();
        await secondWritten.promise;
      });
      await firstDone.promise;
      let bWrote = false;
      const b = write(batches.b, () => (bWrote = true, Promise.resolve()));
      // b's write has either taken its own locks or waits for a's.
      while (!bWrote && (pids.length < 2 || !await waitsForLock(db.sql, pids[1]!))) {
        await new Promise((r) => setTimeout(r, 1));
      }
      secondWritten.resolve();
      const results = await Promise.allSettled([a, b]);
      assert.deepEqual(results.map((r) => r.status), ["fulfilled", "fulfilled"]);
    }),
});
