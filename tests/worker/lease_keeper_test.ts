/**
 * The lease keeper alone, against the real database, on a timer the test
 * drives: each `elapse()` is one renewal interval.
 */
import assert from "node:assert/strict";
import { settlesWithin } from "../../src/async.ts";
import type { Sql } from "../../src/db/pool.ts";
import { completeDeliveries, type Lease, renewLeases } from "../../src/db/queue.ts";
import { createLogger } from "../../src/observability/log.ts";
import { startLeaseKeeper } from "../../src/worker/lease_keeper.ts";
import { withTestDatabase } from "../helpers/db.ts";
import { claim, outcome, seedDeliveries } from "../helpers/queue.ts";
import { ManualTimer } from "../helpers/timer.ts";

/** A keeper for worker `w` renewing for ten minutes, with every renewal's outcome listed. */
function keeper(sql: Sql, held: () => Lease[]) {
  const timer = new ManualTimer();
  const renewals: (number | string)[] = [];
  const lines: Record<string, unknown>[] = [];
  const periodic = startLeaseKeeper({
    log: createLogger({ write: (l) => lines.push(JSON.parse(l)) }),
    renew: async (leases) => {
      try {
        const n = await renewLeases(sql, { workerId: "w", leases, leaseMs: 600_000 });
        renewals.push(n);
        return n;
      } catch (err) {
        renewals.push((err as Error).message);
        throw err;
      }
    },
  }, { intervalMs: 250, held, pause: timer.pause });
  /** One interval passes, and the pass it starts ends. */
  const interval = async () => {
    assert.equal(timer.elapse(), 1);
    await timer.waited();
  };
  /** Stops it, failing (not hanging) if the stop does not end its wait. */
  const stop = async () => assert.ok(await settlesWithin(periodic.stop(), 10_000), "stopped");
  return { timer, renewals, lines, interval, stop };
}

/** Seconds each delivery's lease has left, by id. */
async function leaseLeft(sql: Sql): Promise<number[]> {
  const rows = await sql<{ left: number }[]>`
    SELECT extract(epoch FROM locked_until - now())::int AS left FROM deliveries ORDER BY id`;
  return rows.map((r) => r.left);
}

const leasesOf = (claimed: { id: number; attempt: number }[]) =>
  claimed.map(({ id, attempt }) => ({ id, attempt }));

Deno.test("the lease keeper renews what its worker holds at each interval, and not at once: the claim set a full lease", () =>
  withTestDatabase(async (db) => {
    await seedDeliveries(db.sql, 2);
    const held = leasesOf(await claim(db.sql, { leaseMs: 60_000 }));
    const k = keeper(db.sql, () => held);
    try {
      await k.timer.waited();
      assert.deepEqual(k.renewals, []);
      assert.ok((await leaseLeft(db.sql)).every((s) => s <= 60), "the claim's lease stands");
      await k.interval();
      assert.deepEqual(k.renewals, [2]);
      assert.ok((await leaseLeft(db.sql)).every((s) => s > 500), "renewed for ten minutes");
      await k.interval();
      assert.deepEqual(k.renewals, [2, 2]);
      assert.deepEqual(k.timer.asked, [250, 250, 250]);
    } finally {
      await k.stop();
    }
  }));

Deno.test("the lease keeper renews only claims still its own: a result written meanwhile ends one", () =>
  withTestDatabase(async (db) => {
    await seedDeliveries(db.sql, 2);
    const claimed = await claim(db.sql);
    const held = leasesOf(claimed);
    const k = keeper(db.sql, () => held);
    try {
      await k.timer.waited();
      await completeDeliveries(db.sql, "w", [outcome(claimed[0]!, "delivered")], {
        channel: db.channel,
      });
      await k.interval();
      assert.deepEqual(k.renewals, [1]);
    } finally {
      await k.stop();
    }
  }));

Deno.test("the lease keeper asks nothing of the database while nothing is held", () =>
  withTestDatabase(async (db) => {
    let held: Lease[] = [];
    const k = keeper(db.sql, () => held);
    try {
      await k.timer.waited();
      await k.interval();
      await k.interval();
      assert.deepEqual(k.renewals, []);
      await seedDeliveries(db.sql, 1);
      held = leasesOf(await claim(db.sql));
      await k.interval();
      assert.deepEqual(k.renewals, [1]);
    } finally {
      await k.stop();
    }
  }));

Deno.test("a renewal the database refuses is logged, and made again at the next interval", () =>
  withTestDatabase(async (db) => {
    await seedDeliveries(db.sql, 1);
    const held = leasesOf(await claim(db.sql, { leaseMs: 60_000 }));
    await db.sql.unsafe(`
      CREATE FUNCTION refuse_renewal() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'renewal refused for the test' USING ERRCODE = 'P0001'; END $$;
      CREATE TRIGGER refuse_renewal BEFORE UPDATE ON deliveries FOR EACH ROW
        EXECUTE FUNCTION refuse_renewal()`);
    const k = keeper(db.sql, () => held);
    try {
      await k.timer.waited();
      await k.interval();
      assert.deepEqual(k.renewals, ["renewal refused for the test"]);
      const warned = k.lines.filter((l) => l.msg === "Renewing leases failed; will retry");
      assert.equal(warned.length, 1);
      assert.equal(warned[0]!.level, "warn");
      assert.ok((await leaseLeft(db.sql)).every((s) => s <= 60), "not renewed");
      await db.sql`DROP TRIGGER refuse_renewal ON deliveries`;
      await k.interval();
      assert.deepEqual(k.renewals, ["renewal refused for the test", 1]);
      assert.ok((await leaseLeft(db.sql)).every((s) => s > 500), "renewed");
    } finally {
      await k.stop();
    }
  }));

Deno.test("stopping the lease keeper ends its wait at once, and it renews no more", () =>
  withTestDatabase(async (db) => {
    await seedDeliveries(db.sql, 1);
    const held = leasesOf(await claim(db.sql));
    const k = keeper(db.sql, () => held);
    await k.timer.waited();
    await k.interval();
    // Nobody calls elapse(): stop alone must end the wait.
    await k.stop();
    assert.equal(k.timer.waiting, 0);
    assert.equal(k.timer.elapse(), 0);
    assert.deepEqual(k.renewals, [1]);
  }));
