import assert from "node:assert/strict";
import { createSecretCipher } from "../../src/security/secret_cipher.ts";
import { countRows, testDatabase } from "../helpers/db.ts";
import { seedDeliveries } from "../helpers/queue.ts";
import { startReceiver } from "../helpers/receiver.ts";
import { eventually } from "../helpers/service.ts";
import { worker } from "../helpers/worker.ts";

Deno.test("a claim that shutdown stops before anything was sent goes back uncounted", async () => {
  const db = await testDatabase();
  try {
    await seedDeliveries(db.sql, 1, { url: "http://hangs.example/hook" });
    const resolving = Promise.withResolvers<void>();
    // The SSRF guard's look-up never answers: shutdown lands before the request is made.
    const w = worker(db, {
      allowPrivateTargets: false,
      resolve: (_host, signal) =>
        new Promise((_, reject) => {
          resolving.resolve();
          signal.addEventListener("abort", () => reject(signal.reason));
        }),
    });
    await resolving.promise;
    await w.stop({ drainMs: 50, resultsMs: 1_000 });
    const [d] = await db.sql`SELECT status, attempts, locked_by FROM deliveries`;
    assert.deepEqual([d!.status, d!.attempts, d!.locked_by], ["pending", 0, null]);
    assert.equal(await countRows(db.sql, "delivery_attempts"), 0);
  } finally {
    await db.close();
  }
});

Deno.test("a secret that cannot be decrypted fails its delivery unsent and unretried", async () => {
  const db = await testDatabase();
  const receiver = startReceiver();
  try {
    const otherKey = createSecretCipher(crypto.getRandomValues(new Uint8Array(32)));
    await seedDeliveries(db.sql, 1, {
      url: receiver.url,
      secret: await otherKey.seal("whsec_" + btoa("x".repeat(32))),
    });
    const w = worker(db, {
      secrets: createSecretCipher(crypto.getRandomValues(new Uint8Array(32))),
    });
    const d = await eventually(async () => {
      const [row] = await db.sql`SELECT status, attempts, last_error FROM deliveries`;
      return row!.status === "failed" ? row : undefined;
    }, { what: "the delivery to fail" });
    await w.stop({ drainMs: 1_000, resultsMs: 1_000 });
    assert.equal(d!.attempts, 1);
    assert.match(d!.last_error, /^Not sent: DISPATCH_SECRETS_KEY does not decrypt/);
    const attempts = await db.sql`SELECT attempt, error_class, status_code FROM delivery_attempts`;
    assert.deepEqual(attempts.map((a) => [a.attempt, a.error_class, a.status_code]), [
      [1, "secret_unreadable", null],
    ]);
    assert.equal(receiver.received.length, 0);
  } finally {
    await receiver.close();
    await db.close();
  }
});

Deno.test("a worker stops claiming while its results cannot be written, and loses none of them", async () => {
  const db = await testDatabase();
  const receiver = startReceiver();
  try {
    await seedDeliveries(db.sql, 10, { url: receiver.url });
    // Results cannot be written (a failure that is not the data's: kept and retried).
    await db.sql.unsafe(`
      CREATE FUNCTION refuse_results() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'results refused for the test' USING ERRCODE = 'P0001'; END $$;
      CREATE TRIGGER refuse_results BEFORE UPDATE ON deliveries FOR EACH ROW
        WHEN (OLD.status = 'processing' AND NEW.status <> 'processing')
        EXECUTE FUNCTION refuse_results()`);
    const w = worker(db, { concurrency: 2, maxPendingResults: 3 });
    await receiver.waitFor(3);
    // Room for three results: after three sends the worker waits.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(receiver.received.length, 3);
    await db.sql`DROP TRIGGER refuse_results ON deliveries`;
    await receiver.waitFor(10);
    await eventually(async () => {
      const [row] = await db.sql`
        SELECT count(*) FILTER (WHERE status = 'delivered')::int AS n FROM deliveries`;
      return row!.n === 10 ? true : undefined;
    }, { what: "all ten to be delivered" });
    await w.stop({ drainMs: 1_000, resultsMs: 1_000 });
    const ids = receiver.received.map((r) => r.headers.get("webhook-id")).sort();
    assert.deepEqual(ids, Array.from({ length: 10 }, (_, i) => `e${i + 1}`).sort());
  } finally {
    await receiver.close();
    await db.close();
  }
});

Deno.test("a live worker keeps its lease however long the endpoint takes, so the rescuer never takes it", async () => {
  const db = await testDatabase();
  const release = Promise.withResolvers<void>();
  const receiver = startReceiver(async () => {
    await release.promise;
    return new Response("ok");
  });
  const rescuing = new AbortController();
  try {
    await seedDeliveries(db.sql, 1, { url: receiver.url });
    // A lease of one second, renewed every quarter of it, against a rescuer that runs all the time.
    const w = worker(db, { leaseMs: 1_000 });
    const rescuer = (async () => {
      while (!rescuing.signal.aborted) {
        await db.engine.rescue({ maxAttempts: 3, limit: 10 });
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    await receiver.waitFor(1);
    // Hold the answer for three leases.
    await new Promise((r) => setTimeout(r, 3_000));
    release.resolve();
    await eventually(async () => {
      const [row] = await db.sql`SELECT status FROM deliveries`;
      return row!.status === "delivered" ? true : undefined;
    }, { what: "the delivery to be delivered" });
    rescuing.abort();
    await rescuer;
    await w.stop({ drainMs: 1_000, resultsMs: 1_000 });
    assert.equal(receiver.received.length, 1);
    const attempts = await db.sql`SELECT attempt, error_class FROM delivery_attempts`;
    assert.deepEqual(attempts.map((a) => [a.attempt, a.error_class]), [[1, null]]);
  } finally {
    release.resolve();
    rescuing.abort();
    await receiver.close();
    await db.close();
  }
});

Deno.test("a worker that holds two claims of one delivery (after a rescue) keeps track of both", async () => {
  const db = await testDatabase();
  try {
    await seedDeliveries(db.sql, 1);
    const releases = new Map<number, () => void>();
    const started: number[] = [];
    // A sender that holds each attempt until the test lets it finish.
    const w = worker(db, {
      sender: async (d) => {
        started.push(d.attempt);
        await new Promise<void>((resolve) => releases.set(d.attempt, resolve));
        return null;
      },
    });
    await eventually(() => Promise.resolve(started.length === 1 ? true : undefined));
    // The lease runs out under attempt 1, the rescuer takes it, and this worker claims attempt 2.
    await db.sql`UPDATE deliveries SET locked_until = now() - interval '1 second'`;
    await db.engine.rescue({ maxAttempts: 3, limit: 10 });
    w.wake();
    await eventually(() => Promise.resolve(started.length === 2 ? true : undefined));
    assert.equal(w.inFlight, 2);
    releases.get(1)!();
    await eventually(() => Promise.resolve(w.inFlight === 1 ? true : undefined));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(w.inFlight, 1, "attempt 2 is still in flight");
    releases.get(2)!();
    await w.stop({ drainMs: 1_000, resultsMs: 1_000 });
    assert.deepEqual(started, [1, 2]);
  } finally {
    await db.close();
  }
});

/** The test database with its engine's claims counted. */
function countingClaims(db: Awaited<ReturnType<typeof testDatabase>>) {
  const counted = { claims: 0, db };
  counted.db = {
    ...db,
    engine: {
      ...db.engine,
      claim: (options) => {
        counted.claims++;
        return db.engine.claim(options);
      },
    },
  };
  return counted;
}

Deno.test("a finished send that freed nothing the claim loop waits for starts no claim", async () => {
  const db = await testDatabase();
  const receiver = startReceiver();
  try {
    await seedDeliveries(db.sql, 1, { url: receiver.url });
    const counted = countingClaims(db);
    // No poll within the test: only a wake-up can start a claim.
    const w = worker(counted.db, { concurrency: 4, pollIntervalMs: 60_000 });
    await eventually(async () => {
      const [row] = await db.sql`SELECT status FROM deliveries`;
      return row!.status === "delivered" ? true : undefined;
    }, { what: "the delivery to be written" });
    await w.stop({ drainMs: 1_000, resultsMs: 1_000 });
    assert.equal(counted.claims, 1);
  } finally {
    await receiver.close();
    await db.close();
  }
});

Deno.test("a finished send that frees the worker's last slot wakes the claim loop for the next delivery", async () => {
  const db = await testDatabase();
  const receiver = startReceiver();
  try {
    await seedDeliveries(db.sql, 3, { url: receiver.url });
    const counted = countingClaims(db);
    const w = worker(counted.db, { concurrency: 1, pollIntervalMs: 60_000 });
    // One slot: each of the three waits for the one before it to end, not for a poll.
    await receiver.waitFor(3);
    await w.stop({ drainMs: 1_000, resultsMs: 1_000 });
    assert.ok(counted.claims >= 3, `${counted.claims} claims`);
  } finally {
    await receiver.close();
    await db.close();
  }
});
