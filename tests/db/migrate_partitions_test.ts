import assert from "node:assert/strict";
import { migrate } from "../../src/db/migrate.ts";
import { connect, useSchema } from "../../src/db/pool.ts";
import { countRows, databaseUrl } from "../helpers/db.ts";

Deno.test("migration 20 turns a filled installation's history into partitions, losing nothing", async () => {
  const url = databaseUrl();
  const schema = `t_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const admin = connect(url, { max: 1 });
  await admin.unsafe(`CREATE SCHEMA ${schema}`);
  const sql = connect(url, { schema, max: 2 });
  try {
    await useSchema(sql, schema);
    await migrate(sql, { upTo: 19 });
    // As version 19 stored them: a delivered event with its attempt, one pending, one retrying.
    const [sub] = await sql<{ seq: number }[]>`
      INSERT INTO subscriptions (id, url, event_types, secret)
      VALUES ('s', 'http://127.0.0.1:9/', '{*}', 'a-secret') RETURNING seq`;
    await sql`INSERT INTO events (id, type, data, fanned_out)
      SELECT 'e' || g, 't', jsonb_build_object('n', g), 1 FROM generate_series(1, 3) g`;
    await sql`INSERT INTO deliveries (event_id, subscription_id, subscription_seq, status,
        attempts, delivered_at)
      VALUES ('e1', 's', ${sub!.seq}, 'delivered', 1, now()), ('e2', 's', ${
      sub!.seq
    }, 'pending', 0, NULL),
        ('e3', 's', ${sub!.seq}, 'retrying', 1, NULL)`;
    await sql`INSERT INTO delivery_attempts (delivery_id, event_id, subscription_id,
        subscription_seq, attempt, started_at, duration_ms, status_code)
      SELECT id, event_id, 's', subscription_seq, 1, now(), 5, 200 FROM deliveries
      WHERE attempts = 1`;
    const [before] = await sql<{ seq: number; id: number }[]>`
      SELECT (SELECT max(seq) FROM events) AS seq, (SELECT max(id) FROM deliveries) AS id`;

    const status = await migrate(sql);
    assert.deepEqual(status.applied, ["0020_history_partitions"]);

    assert.equal(await countRows(sql, "events_legacy"), 3);
    assert.equal(await countRows(sql, "deliveries_legacy"), 3);
    assert.equal(await countRows(sql, "delivery_attempts_legacy"), 2);
    const [outcome] = await sql`SELECT outcome, fanned FROM dispatch_insert_events(
      ARRAY['e1', 'e4'], ARRAY['t', 't'], ARRAY[NULL, NULL], ARRAY['{"n": 1}', '{}'],
      ARRAY[NULL, NULL], ARRAY[NULL, NULL])`;
    assert.equal(outcome!.outcome, "replayed");
    const [after] = await sql<{ seq: number; id: number; part: string }[]>`
      SELECT e.seq, d.id, e.tableoid::regclass::text AS part
      FROM events e JOIN deliveries d ON d.event_id = e.id WHERE e.id = 'e4'`;
    assert.ok(after!.seq > before!.seq && after!.id > before!.id, "a sequence started over");
    assert.notEqual(after!.part, "events_legacy");
    // The pending and retrying deliveries keep the legacy partition until they end.
    const drop = () =>
      sql<{ dropped: string[] }[]>`
        SELECT dispatch_drop_history_partitions('events', now() + interval '1 second')
          AS dropped`;
    assert.deepEqual((await drop())[0]!.dropped, []);
    await sql`UPDATE deliveries SET status = 'failed' WHERE event_id IN ('e2', 'e3')`;
    assert.deepEqual((await drop())[0]!.dropped, ["legacy"]);
    assert.deepEqual((await sql`SELECT id FROM events`).map((r) => r.id), ["e4"]);
  } finally {
    await sql.end();
    await admin.unsafe(`DROP SCHEMA ${schema} CASCADE`);
    await admin.end();
  }
});
