/**
 * `deno task bench:claim`: does the claim stay flat as work grows? Times the
 * worker's claim statement (batches of 100) on a small queue, then with
 * 1,000,000 finished deliveries and a backlog of 100,000 due ones, and prints
 * the claim's plan with EXPLAIN (ANALYZE, BUFFERS). Needs DATABASE_URL.
 *
 * @module
 */
import { migrate } from "../../src/db/migrate.ts";
import { connect, type Sql, useSchema } from "../../src/db/pool.ts";
import { claimDeliveries } from "../../src/engine/claim.ts";
import { completeDeliveries } from "../../src/engine/complete.ts";
import type { Completion } from "../../src/engine/shapes.ts";
import { listEvents } from "../../src/views/events.ts";

const url = Deno.env.get("DATABASE_URL");
if (!url) {
  console.error("DATABASE_URL is unset: this benchmark needs a real PostgreSQL server");
  Deno.exit(2);
}
const finished = Number(Deno.env.get("FINISHED") ?? 1_000_000);
const backlog = Number(Deno.env.get("BACKLOG") ?? 100_000);

const schema = `bench_claim_${Date.now()}`;
const admin = connect(url, { max: 1 });
await admin.unsafe(`CREATE SCHEMA ${schema}`);
const sql = connect(url, { schema, max: 2 });
try {
  await useSchema(sql, schema);
  await migrate(sql);
  await sql`INSERT INTO subscriptions (id, url, event_types, secret)
    VALUES ('sub', 'http://127.0.0.1:9/', '{*}', 'bench-secret-0123456789')`;

  await fill(sql, { from: 1, count: 2_000, status: "pending" });
  const small = await timeClaims(sql, 20);
  report("small queue", { finished: 0, due: 2_000 }, small);

  log(`Filling ${finished} finished and ${backlog} due deliveries…`);
  await fill(sql, { from: 10_001, count: finished, status: "delivered" });
  await fill(sql, { from: 10_001 + finished, count: backlog, status: "pending" });
  await sql`VACUUM ANALYZE deliveries`;
  await sql`VACUUM ANALYZE events`;
  const large = await timeClaims(sql, 200);
  report("large", { finished, due: backlog }, large);

  // GET /events?status=failed reads the few failed deliveries, not the million delivered ones.
  await fill(sql, { from: 20_001 + finished + backlog, count: 20, status: "failed" });
  await sql`ANALYZE deliveries`;
  const listed: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t = performance.now();
    const page = await listEvents(sql, { limit: 50, status: "failed" });
    listed.push(performance.now() - t);
    if (page.events.length !== 20) throw new Error(`Listed ${page.events.length} failed events`);
  }
  const ms = listed.sort((a, b) => a - b);
  console.log(JSON.stringify({
    case: "GET /events?status=failed",
    events: 10_000 + finished + backlog + 20,
    failed: 20,
    list_ms: { p50: Math.round(ms[10]! * 100) / 100, max: Math.round(ms.at(-1)! * 100) / 100 },
  }));

  const plan = await sql.unsafe(`EXPLAIN (ANALYZE, BUFFERS)
    WITH due AS (
      SELECT id FROM deliveries
      WHERE status IN ('pending', 'retrying') AND next_attempt_at <= now()
      ORDER BY next_attempt_at LIMIT 100 FOR UPDATE SKIP LOCKED
    )
    UPDATE deliveries d SET status = 'processing', attempts = d.attempts + 1,
      locked_by = 'explain', locked_until = now() + interval '1 minute'
    FROM due WHERE d.id = due.id RETURNING d.id`);
  console.log(plan.map((r) => r["QUERY PLAN"]).join("\n"));
  // The completion's shape: one UPDATE joined to the batch's arrays.
  const ids = (await sql`SELECT id FROM deliveries WHERE locked_by = 'explain'`).map((r) => r.id);
  const completion = await sql.unsafe(
    `EXPLAIN (ANALYZE, BUFFERS)
    WITH r AS (SELECT * FROM unnest($1::bigint[], $2::text[]) AS r(id, status))
    UPDATE deliveries d SET status = r.status, delivered_at = now(), locked_by = NULL,
      locked_until = NULL, updated_at = now()
    FROM r WHERE d.id = r.id AND d.status = 'processing' AND d.locked_by = 'explain'`,
    [ids, ids.map(() => "delivered")],
  );
  console.log(completion.map((r) => r["QUERY PLAN"]).join("\n"));
  const [dead] = await sql`
    SELECT n_live_tup::int AS live, n_dead_tup::int AS dead FROM pg_stat_user_tables
    WHERE relname = 'deliveries' AND schemaname = ${schema}`;
  console.log(JSON.stringify({ deliveries_table: dead }));
} finally {
  await sql.end();
  await admin.unsafe(`DROP SCHEMA ${schema} CASCADE`);
  await admin.end();
}

async function fill(sql: Sql, o: { from: number; count: number; status: string }) {
  for (let start = o.from; start < o.from + o.count; start += 100_000) {
    const end = Math.min(o.from + o.count, start + 100_000) - 1;
    await sql`INSERT INTO events (id, type, data, fanned_out)
      SELECT 'e' || g, 'bench', '{}', 1 FROM generate_series(${start}::int, ${end}::int) g`;
    await sql`INSERT INTO deliveries (event_id, subscription_id, subscription_seq, status,
        attempts, delivered_at)
      SELECT 'e' || g, 'sub', 1, ${o.status}, ${o.status === "delivered" ? 1 : 0},
        CASE WHEN ${o.status} = 'delivered' THEN now() END
      FROM generate_series(${start}::int, ${end}::int) g`;
  }
}

/** Claims and completes batches of 100, timing each claim statement. */
async function timeClaims(sql: Sql, rounds: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t = performance.now();
    const { deliveries: claimed } = await claimDeliveries(sql, {
      workerId: "bench",
      limit: 100,
      retryReserve: 25,
      leaseMs: 60_000,
      maxAttempts: 8,
      horizonMs: 1000,
      recheckMs: 5000,
    });
    times.push(performance.now() - t);
    const done: Completion[] = claimed.map((d) => ({
      deliveryId: d.id,
      eventId: d.event_id,
      subscriptionId: d.subscription_id,
      subscriptionSeq: d.subscription_seq,
      attempt: d.attempt,
      status: "delivered",
      retryInMs: 0,
      record: null,
      lastError: null,
      lastStatusCode: 200,
      verdict: "success",
      healthy: true,
    }));
    await completeDeliveries(sql, "bench", done);
  }
  return times.sort((a, b) => a - b);
}

function report(name: string, size: Record<string, number>, ms: number[]) {
  const at = (p: number) => Math.round(ms[Math.floor(p * (ms.length - 1))]! * 100) / 100;
  console.log(JSON.stringify({
    claim_batch: 100,
    case: name,
    ...size,
    claims: ms.length,
    claim_ms: { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: at(1) },
  }));
}

function log(msg: string) {
  console.error(msg);
}
