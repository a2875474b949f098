/**
 * `deno task bench:migrate`: how long migration 20 (history into time
 * partitions) takes on a filled installation, and whether ingest waits for
 * it. Fills a schema at version 19 with ROWS events (default 1,000,000), one
 * delivery and one attempt each, then migrates while another connection
 * inserts an event every 50 ms, and prints the migration's time, per million
 * events, the longest an insert waited, and the inserts that failed (one in
 * flight when the migration commits was planned for the old tables). Needs
 * DATABASE_URL.
 *
 * @module
 */
import { migrate } from "../../src/db/migrate.ts";
import { connect, useSchema } from "../../src/db/pool.ts";

const url = Deno.env.get("DATABASE_URL");
if (!url) {
  console.error("DATABASE_URL is unset: this benchmark needs a real PostgreSQL server");
  Deno.exit(2);
}
const rows = Number(Deno.env.get("ROWS") ?? 1_000_000);
const schema = `bench_migrate_${Date.now()}`;
const admin = connect(url, { max: 1 });
await admin.unsafe(`CREATE SCHEMA ${schema}`);
const sql = connect(url, { schema, max: 2 });
const producer = connect(url, { schema, max: 1 });
const seconds = (since: number) => Math.round((performance.now() - since) / 10) / 100;
try {
  await useSchema(sql, schema);
  await useSchema(producer, schema);
  await migrate(sql, { upTo: 19 });
  const [sub] = await sql<{ seq: number }[]>`
    INSERT INTO subscriptions (id, url, event_types, secret)
    VALUES ('s', 'http://127.0.0.1:9/', '{*}', 'a-secret') RETURNING seq`;
  let t = performance.now();
  const chunk = 250_000;
  for (let from = 1; from <= rows; from += chunk) {
    const to = Math.min(rows, from + chunk - 1);
    await sql`INSERT INTO events (id, type, data, fanned_out, created_at)
      SELECT 'evt_' || g, 'order.paid', jsonb_build_object('n', g, 'note', repeat('x', 200)), 1,
        now() - (${rows} - g) * interval '10 milliseconds'
      FROM generate_series(${from}::int, ${to}::int) g`;
    await sql`INSERT INTO deliveries (event_id, subscription_id, subscription_seq, status,
        attempts, delivered_at, created_at)
      SELECT 'evt_' || g, 's', ${sub!.seq}, 'delivered', 1, now(),
        now() - (${rows} - g) * interval '10 milliseconds'
      FROM generate_series(${from}::int, ${to}::int) g`;
    console.error(`filled ${to} of ${rows} events`);
  }
  await sql`INSERT INTO delivery_attempts (delivery_id, event_id, subscription_id,
      subscription_seq, attempt, started_at, duration_ms, status_code)
    SELECT id, event_id, 's', subscription_seq, 1, created_at, 5, 200 FROM deliveries`;
  await sql`ANALYZE`;
  const fill = seconds(t);
  const [size] = await sql<{ mb: number }[]>`
    SELECT round(sum(pg_total_relation_size(c.oid)) / 1048576.0)::int AS mb FROM pg_class c
    WHERE c.relnamespace = ${schema}::regnamespace AND c.relkind = 'r'`;
  console.error(`filled in ${fill} s (${size!.mb} MB); migrating`);

  // A producer inserting through the whole migration: its longest wait is ingest's.
  let longest = 0;
  let inserts = 0;
  const failed: string[] = [];
  let stop = false;
  const producing = (async () => {
    for (let i = 0; !stop; i++) {
      const s = performance.now();
      try {
        await producer`SELECT dispatch_insert_events(ARRAY[${`new_${i}`}], ARRAY['t'],
          ARRAY[NULL], ARRAY['{}'], ARRAY[NULL], ARRAY[NULL])`;
        inserts++;
      } catch (err) {
        // A statement of the old schema that waited through the migration; a retry succeeds.
        failed.push(String(err));
      }
      longest = Math.max(longest, performance.now() - s);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  await new Promise((r) => setTimeout(r, 200));
  t = performance.now();
  await migrate(sql);
  const took = seconds(t);
  await new Promise((r) => setTimeout(r, 200));
  stop = true;
  await producing;
  const [check] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM events`;
  console.log(JSON.stringify({
    scenario: "migration 20 on a filled installation",
    events: rows,
    deliveries: rows,
    attempts: rows,
    tables_mb: size!.mb,
    migrate_s: took,
    s_per_million_events: Math.round(took / rows * 1e6 * 100) / 100,
    producer_inserts: inserts,
    producer_failed: failed,
    producer_longest_wait_ms: Math.round(longest),
    events_after: check!.n,
    load: Deno.loadavg().map((l) => Math.round(l * 10) / 10),
  }));
} finally {
  await producer.end();
  await sql.end();
  await admin.unsafe(`DROP SCHEMA ${schema} CASCADE`);
  await admin.end();
}
