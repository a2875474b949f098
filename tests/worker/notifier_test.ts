/**
 * The notifier alone, against the real database: what wakes it, and that
 * a lost LISTEN connection wakes it too once it is back.
 */
import assert from "node:assert/strict";
import { settlesWithin } from "../../src/async.ts";
import { createLogger } from "../../src/observability/log.ts";
import { listen } from "../../src/worker/notifier.ts";
import { withTestDatabase } from "../helpers/db.ts";

/** Counts wakes; `reach(n)` resolves once there have been `n`. */
function wakes() {
  let count = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  return {
    get count() {
      return count;
    },
    onWake: () => {
      count++;
      for (const w of waiters.filter((w) => count >= w.n)) w.resolve();
    },
    /** Fails (rather than hangs) when the wakes do not come. */
    async reach(n: number) {
      if (count >= n) return;
      const { promise, resolve } = Promise.withResolvers<void>();
      waiters.push({ n, resolve });
      assert.ok(await settlesWithin(promise, 10_000), `woken ${count} times, not ${n}`);
    },
  };
}

const noLog = createLogger({ write: () => {} });

Deno.test("the notifier wakes once on connect, then once per NOTIFY on its channel, and not for another channel", () =>
  withTestDatabase(async (db) => {
    const a = wakes();
    const other = wakes();
    const listener = await listen({ sql: db.sql, log: noLog }, db.channel, a.onWake);
    const otherListener = await listen(
      { sql: db.sql, log: noLog },
      `${db.channel}_x`,
      other.onWake,
    );
    try {
      await a.reach(1);
      await other.reach(1);
      await db.sql`SELECT pg_notify(${`${db.channel}_x`}, '')`;
      await other.reach(2);
      await db.sql`SELECT pg_notify(${db.channel}, '')`;
      await db.sql`SELECT pg_notify(${db.channel}, '')`;
      await a.reach(3);
      // Both ride one connection, in order: the other channel's next wake comes after ours.
      await db.sql`SELECT pg_notify(${`${db.channel}_x`}, '')`;
      await other.reach(3);
      assert.equal(a.count, 3);
    } finally {
      await listener.close();
      await otherListener.close();
    }
  }));

Deno.test("a closed notifier is woken no more", () =>
  withTestDatabase(async (db) => {
    const closed = wakes();
    const open = wakes();
    const first = await listen({ sql: db.sql, log: noLog }, db.channel, closed.onWake);
    const second = await listen({ sql: db.sql, log: noLog }, db.channel, open.onWake);
    try {
      await closed.reach(1);
      await open.reach(1);
      await first.close();
      await db.sql`SELECT pg_notify(${db.channel}, '')`;
      // The same notification reaches the one still listening, on the same connection.
      await open.reach(2);
      assert.equal(closed.count, 1);
    } finally {
      await second.close();
    }
  }));

Deno.test("the notifier wakes again when its connection comes back, since notifications sent meanwhile are lost", () =>
  withTestDatabase(async (db) => {
    const w = wakes();
    const listener = await listen({ sql: db.sql, log: noLog }, db.channel, w.onWake);
    try {
      await w.reach(1);
      // End the LISTEN connection from the server's side.
      const ended = await db.sql`
        SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
        WHERE pid <> pg_backend_pid() AND query ILIKE ${`listen%${db.channel}%`}`;
      assert.deepEqual(ended.map((r) => r.ok), [true]);
      await w.reach(2);
      // And it listens again.
      await db.sql`SELECT pg_notify(${db.channel}, '')`;
      await w.reach(3);
    } finally {
      await listener.close();
    }
  }));

Deno.test("the notifier leaves out a notification whose payload it was told to ignore (its own process's)", () =>
  withTestDatabase(async (db) => {
    const w = wakes();
    const listener = await listen({ sql: db.sql, log: noLog }, db.channel, w.onWake, {
      ignore: "own",
    });
    try {
      await w.reach(1);
      await db.sql`SELECT pg_notify(${db.channel}, 'own')`;
      // Notifications arrive in order: once the next one has woken it, the ignored one is past.
      await db.sql`SELECT pg_notify(${db.channel}, '')`;
      await w.reach(2);
      await db.sql`SELECT pg_notify(${db.channel}, 'another process')`;
      await w.reach(3);
      assert.equal(w.count, 3);
    } finally {
      await listener.close();
    }
  }));
