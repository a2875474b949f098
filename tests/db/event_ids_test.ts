import assert from "node:assert/strict";
import type { Sql } from "../../src/db/pool.ts";
import { countRows, oneSession, testDatabase } from "../helpers/db.ts";

async function store(sql: Sql, id: string, data: string): Promise<string> {
  const [row] = await sql<{ outcome: string }[]>`
    SELECT outcome FROM dispatch_insert_events(ARRAY[${id}], ARRAY['t'], ARRAY[NULL],
      ARRAY[${data}], ARRAY[NULL], ARRAY[NULL])`;
  return row!.outcome;
}

Deno.test("an event id in an older partition is replayed or a conflict, never stored twice", async () => {
  const db = await testDatabase();
  try {
    await db.sql`INSERT INTO events (id, type, data, created_at)
      VALUES ('old', 't', '{"a": 1}', now() - interval '40 days')`;
    assert.equal(await store(db.sql, "old", '{"a": 1}'), "replayed");
    assert.equal(await store(db.sql, "old", '{"a": 2}'), "conflict");
    assert.equal(await store(db.sql, "new", "{}"), "created");
    assert.equal(await store(db.sql, "new", "{}"), "replayed");
    assert.equal(await countRows(db.sql, "events", "id = 'old'"), 1);
    assert.equal(await countRows(db.sql, "events", "id = 'new'"), 1);
    const [row] = await db
      .sql`SELECT tableoid::regclass::text AS part FROM events WHERE id = 'old'`;
    assert.equal(row!.part, "events_legacy");
  } finally {
    await db.close();
  }
});

Deno.test({
  name: "a second transaction storing an id waits for the first, then replays it",
  // PGlite is one session: the second store cannot wait for another transaction there.
  ignore: Deno.env.get("DISPATCH_TEST_EMBEDDED") === "1",
  async fn() {
    const db = await testDatabase();
    const first = await oneSession(db);
    const second = await oneSession(db);
    const commit = Promise.withResolvers<void>();
    try {
      const stored = Promise.withResolvers<string>();
      const firstTx = first.sql.begin(async (tx) => {
        stored.resolve(await store(tx as unknown as Sql, "same", '{"n": 1}'));
        await commit.promise;
      });
      assert.equal(await stored.promise, "created");
      let finished = false;
      const secondStore = store(second.sql, "same", '{"n": 1}').then((o) => (finished = true, o));
      let waiting = false;
      while (!waiting && !finished) {
        const [row] = await db.sql<{ n: number }[]>`
          SELECT count(*)::int AS n FROM pg_locks
          WHERE pid = ${second.pid} AND locktype = 'advisory' AND NOT granted`;
        waiting = row!.n > 0;
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(finished, false, "the second store did not wait for the first");
      commit.resolve();
      await firstTx;
      assert.equal(await secondStore, "replayed");
      assert.equal(await countRows(db.sql, "events", "id = 'same'"), 1);
    } finally {
      commit.resolve();
      await first.sql.end();
      await second.sql.end();
      await db.close();
    }
  },
});
