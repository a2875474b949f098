import assert from "node:assert/strict";
import { connect, type Sql } from "../../src/db/pool.ts";
import { claimDeliveries } from "../../src/engine/claim.ts";
import { handBack } from "../../src/engine/lease.ts";
import type { ClaimedDelivery } from "../../src/engine/shapes.ts";
import { createLogger } from "../../src/observability/log.ts";
import { type ClaimSource, startClaimLoop } from "../../src/worker/claim_loop.ts";
import { testDatabase, withTestDatabase } from "../helpers/db.ts";
import { claim, seedDeliveries } from "../helpers/queue.ts";
import { eventually } from "../helpers/service.ts";

/** The real queue statements for worker "w". */
function realSource(sql: Sql): ClaimSource {
  return {
    claim: ({ limit, retryReserve }) =>
      claimDeliveries(sql, {
        workerId: "w",
        limit,
        retryReserve,
        leaseMs: 60_000,
        maxAttempts: 3,
        horizonMs: 1000,
        recheckMs: 5000,
      }),
    handBackExcept: (leases) => handBack(sql, "w", { except: leases }),
  };
}

/** The first claim commits, and its answer is lost with the connection (`code`). */
function losingFirstAnswer(real: ClaimSource, code: string): ClaimSource {
  let calls = 0;
  return {
    ...real,
    async claim(request) {
      const claimed = await real.claim(request);
      if (calls++ === 0) throw Object.assign(new Error("connection lost"), { code });
      return claimed;
    },
  };
}

Deno.test("the claim loop hands back claims whose answer was lost before it claims again", () =>
  withTestDatabase(async (db) => {
    const lines: string[] = [];
    await seedDeliveries(db.sql, 3);
    const real = realSource(db.sql);
    const started: ClaimedDelivery[] = [];
    const loop = startClaimLoop({
      log: createLogger({ write: (l) => lines.push(l) }),
      source: losingFirstAnswer(real, "ECONNRESET"),
    }, {
      capacity: () => 10,
      leases: () => [],
      start: (d) => started.push(d),
      pollIntervalMs: 20,
      orphanWindowMs: 0,
    });
    await eventually(() => Promise.resolve(started.length === 3 ? true : undefined), {
      what: "the three deliveries to be claimed again",
    });
    await loop.stop();
    // Handed back uncounted: the claim that reached them is attempt 1, not 2.
    assert.deepEqual(started.map((d) => d.attempt), [1, 1, 1]);
    const handed = lines.map((l) => JSON.parse(l))
      .filter((l) => l.msg === "Handed back deliveries whose claim answer was lost");
    assert.deepEqual(handed.map((l) => l.count), [3]);
  }));

Deno.test("a claim whose answer was lost and that commits after the hand-back is handed back before a later claim, not left to expire", () =>
  withTestDatabase(async (db) => {
    await seedDeliveries(db.sql, 1);
    const real = realSource(db.sql);
    let lost: Promise<unknown> | undefined;
    const started: ClaimedDelivery[] = [];
    const loop = startClaimLoop({
      log: createLogger({ write: () => {} }),
      source: {
        claim: (request) =>
          lost === undefined
            ? Promise.reject(Object.assign(new Error("connection lost"), { code: "ECONNRESET" }))
            : real.claim(request),
        async handBackExcept(held) {
          const n = await real.handBackExcept(held);
          // The lost claim's statement commits only now, after the hand-back ran.
          lost ??= real.claim({ limit: 10, retryReserve: 0 });
          await lost;
          return n;
        },
      },
    }, {
      capacity: () => 10,
      leases: () => started.map((d) => ({ id: d.id, attempt: d.attempt })),
      start: (d) => started.push(d),
      pollIntervalMs: 20,
      orphanWindowMs: 60_000,
    });
    await eventually(() => Promise.resolve(started.length === 1 ? true : undefined), {
      what: "the late claim's delivery to be handed back and claimed again",
    });
    await loop.stop();
    assert.deepEqual(started.map((d) => [d.event_id, d.attempt]), [["e1", 1]]);
  }));

Deno.test("the claim loop keeps what the worker holds when it hands orphans back", () =>
  withTestDatabase(async (db) => {
    await seedDeliveries(db.sql, 2);
    const real = realSource(db.sql);
    // The worker is sending e1 (claimed earlier, in its held list); e2's claim answer is lost.
    const [held] = await claim(db.sql, { limit: 1 });
    const started: ClaimedDelivery[] = [];
    const loop = startClaimLoop({
      log: createLogger({ write: () => {} }),
      source: losingFirstAnswer(real, "EPIPE"),
    }, {
      capacity: () => 10,
      leases: () => [{ id: held!.id, attempt: held!.attempt }],
      start: (d) => started.push(d),
      pollIntervalMs: 20,
      orphanWindowMs: 0,
    });
    await eventually(() => Promise.resolve(started.length === 1 ? true : undefined), {
      what: "the orphan to be claimed again",
    });
    await loop.stop();
    assert.notEqual(started[0]!.id, held!.id);
    const [row] = await db.sql`SELECT status, locked_by FROM deliveries WHERE id = ${held!.id}`;
    assert.deepEqual([row!.status, row!.locked_by], ["processing", "w"]);
  }));

Deno.test("the claim loop claims no more than the worker's capacity", () =>
  withTestDatabase(async (db) => {
    await seedDeliveries(db.sql, 5);
    const limits: number[] = [];
    const real = realSource(db.sql);
    let free = 2;
    const loop = startClaimLoop({
      log: createLogger({ write: () => {} }),
      source: { ...real, claim: (r) => (limits.push(r.limit), real.claim(r)) },
    }, {
      capacity: () => free,
      leases: () => [],
      start: () => free--,
      pollIntervalMs: 20,
      orphanWindowMs: 0,
    });
    await eventually(() => Promise.resolve(free === 0 ? true : undefined), { what: "a claim" });
    await new Promise((r) => setTimeout(r, 100));
    await loop.stop();
    assert.deepEqual(limits, [2]);
    const [row] = await db
      .sql`SELECT count(*)::int AS n FROM deliveries WHERE status = 'processing'`;
    assert.equal(row!.n, 2);
  }));

Deno.test("the claim loop never starts what it claimed after stop was asked for, and returns it", () =>
  withTestDatabase(async (db) => {
    await seedDeliveries(db.sql, 2);
    const real = realSource(db.sql);
    const inClaim = Promise.withResolvers<void>();
    const release = Promise.withResolvers<void>();
    const started: ClaimedDelivery[] = [];
    const loop = startClaimLoop({
      log: createLogger({ write: () => {} }),
      source: {
        ...real,
        async claim(request) {
          inClaim.resolve();
          await release.promise;
          return await real.claim(request);
        },
      },
    }, {
      capacity: () => 10,
      leases: () => [],
      start: (d) => started.push(d),
      pollIntervalMs: 20,
      orphanWindowMs: 0,
    });
    await inClaim.promise;
    const stopped = loop.stop();
    release.resolve();
    const leftovers = await stopped;
    assert.equal(started.length, 0);
    assert.deepEqual(leftovers.map((d) => d.event_id).sort(), ["e1", "e2"]);
  }));

Deno.test({
  name: "a claim stuck behind a lock is cancelled by the statement timeout and the loop goes on",
  // PGlite runs one statement at a time: the lock holder would block the test itself.
  ignore: Deno.env.get("DISPATCH_TEST_EMBEDDED") === "1",
  async fn() {
    const db = await testDatabase();
    const sql = connect(db.url, { schema: db.schema, max: 2, statementTimeoutMs: 200 });
    const lines: string[] = [];
    const locked = Promise.withResolvers<void>();
    const release = Promise.withResolvers<void>();
    try {
      await seedDeliveries(db.sql, 1);
      // Blocks every UPDATE of deliveries, the claim's included.
      const holder = db.sql.begin(async (tx) => {
        await tx`LOCK TABLE deliveries IN SHARE ROW EXCLUSIVE MODE`;
        locked.resolve();
        await release.promise;
      });
      await locked.promise;
      const started: ClaimedDelivery[] = [];
      const loop = startClaimLoop({
        log: createLogger({ write: (l) => lines.push(l) }),
        source: realSource(sql),
      }, {
        capacity: () => 10,
        leases: () => [],
        start: (d) => started.push(d),
        pollIntervalMs: 20,
        orphanWindowMs: 0,
      });
      const timedOut = () => lines.some((l) => l.includes("due to statement timeout"));
      await eventually(() => Promise.resolve(timedOut() ? true : undefined), {
        what: "the claim to time out",
      });
      assert.equal(started.length, 0);
      release.resolve();
      await holder;
      await eventually(() => Promise.resolve(started.length === 1 ? true : undefined), {
        what: "the claim to succeed once the lock is gone",
      });
      await loop.stop();
    } finally {
      release.resolve();
      await sql.end({ timeout: 1 });
      await db.close();
    }
  },
});
