/**
 * `deno task bench:console`: how long each console page takes with
 * 1,000,000 events in the database. Loads a scratch schema with SQL alone
 * (generate_series: events over 30 days, one delivery each, one attempt per
 * delivery, 200 subscriptions of 50 tenants, 2.1 % of deliveries failed, spread over the tenants and types), then
 * times every page through `app.request()` (no socket: the figures are the
 * app's and the database's), as an admin and as one tenant's portal. Prints
 * one line per page: the median and the slowest of `--repeat` requests.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { connect, useSchema } from "../../src/db/pool.ts";
import { createEngine } from "../../src/engine/engine.ts";
import { silentLogger } from "../../src/observability/log.ts";
import { createViews } from "../../src/views/views.ts";
import { databaseUrl, type TestDatabase, testDatabase } from "../helpers/db.ts";
import { buildApp } from "../helpers/app.ts";
import { consoleClient } from "../helpers/console.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    events: { type: "string", default: "1000000" },
    repeat: { type: "string", default: "9" },
    // Keeps the loaded schema (its name is printed) / times one kept before, without loading.
    keep: { type: "boolean", default: false },
    schema: { type: "string" },
  },
});
const events = Number(args.events);
const repeat = Number(args.repeat);
const subs = 200;
const tenants = 50;

const db = args.schema === undefined ? await testDatabase({ max: 8 }) : await kept(args.schema);
try {
  if (args.schema === undefined) await load();
  await time();
} finally {
  if (args.keep || args.schema !== undefined) {
    console.log(`\nkept schema ${db.schema}: --schema ${db.schema} times it again`);
    await db.engine.close();
    await db.sql.end();
  } else {
    await db.close();
  }
}

/** A schema a previous run kept, as `testDatabase` gives a new one. */
async function kept(schema: string): Promise<TestDatabase> {
  const sql = connect(databaseUrl(), { schema, max: 8 });
  await useSchema(sql, schema);
  const engine = createEngine({ sql, channel: `dispatch_${schema}`, log: silentLogger });
  const close = () => Promise.reject(new Error("a kept schema is not dropped"));
  return { url: databaseUrl(), schema, channel: "", sql, engine, views: createViews(sql), close };
}

async function load() {
  const loading = performance.now();
  await db.sql`
    INSERT INTO subscriptions (id, url, event_types, secret, tenant_id)
    SELECT 'sub_' || i, 'http://127.0.0.1:9/hook/' || i, '{*}', 'bench-secret',
      'tenant_' || (i % ${tenants})
    FROM generate_series(0, ${subs - 1}) i`;
  // Newest last, as they arrive: event g was created (events - g) × 30 days / events ago.
  await db.sql`
    INSERT INTO events (id, type, data, tenant_id, created_at, fanned_out)
    SELECT 'evt_' || g, 'order.' || (ARRAY['created', 'paid', 'shipped', 'refunded'])[g % 4 + 1],
      json_build_object('order', g, 'amount', g % 9973)::jsonb,
      'tenant_' || (g % ${subs} % ${tenants}),
      now() - (${events} - g) * (interval '30 days' / ${events}), 1
    FROM generate_series(1, ${events}) g`;
  await db.sql`
    INSERT INTO deliveries (event_id, subscription_id, subscription_seq, status, attempts,
      last_status_code, last_error, delivered_at, created_at, updated_at)
    SELECT e.id, s.id, s.seq,
      CASE WHEN g % 47 = 0 THEN 'failed' WHEN g > ${events} - 200 THEN 'pending' ELSE 'delivered' END,
      CASE WHEN g > ${events} - 200 THEN 0 ELSE 1 END,
      CASE WHEN g % 47 = 0 THEN 500 + g % 4 WHEN g > ${events} - 200 THEN NULL ELSE 200 END,
      CASE WHEN g % 47 = 0 THEN 'HTTP 500' END,
      CASE WHEN g % 47 <> 0 AND g <= ${events} - 200 THEN e.created_at END,
      e.created_at, e.created_at
    FROM generate_series(1, ${events}) g
    JOIN events e ON e.id = 'evt_' || g
    JOIN subscriptions s ON s.id = 'sub_' || (g % ${subs})`;
  await db.sql`
    INSERT INTO delivery_attempts (delivery_id, event_id, subscription_id, subscription_seq,
      attempt, started_at, duration_ms, status_code, error_class)
    SELECT d.id, d.event_id, d.subscription_id, d.subscription_seq, 1, d.created_at,
      20 + d.id % 180, d.last_status_code, CASE WHEN d.status = 'failed' THEN 'http_5xx' END
    FROM deliveries d WHERE d.attempts > 0`;
  await db.sql`VACUUM ANALYZE`.catch(() => db.sql`ANALYZE`);
  console.log(
    `loaded ${events} events, ${events} deliveries and their attempts in ${
      Math.round((performance.now() - loading) / 1000)
    } s`,
  );
}

async function time() {
  const app = buildApp(db);
  const fetch = (request: Request) => app.fetch(request);
  const admin = consoleClient({ fetch });
  const portalLink = await (await app.request("/tenants/tenant_7/portal-sessions", {
    method: "POST",
  })).json();
  const portal = consoleClient({ fetch });
  const link = new URL(portalLink.url);
  await (await portal.get(link.pathname + link.search)).body?.cancel();

  const pages = [
    "/console",
    "/console/events",
    "/console/events?type=order.paid",
    "/console/events?status=failed",
    "/console/events?tenant_id=tenant_3",
    `/console/events?since=${new Date(Date.now() - 86_400_000).toISOString()}`,
    // An event of tenant_7 (event g is tenant (g % 200) % 50's), so the portal sees it too.
    `/console/events/evt_${events - events % 200 - 193}`,
    "/console/subscriptions",
    "/console/subscriptions/sub_7",
    "/console/deliveries",
    "/console/deliveries?status_class=5xx&subscription_id=sub_50",
    "/console/deliveries?event_type=order.paid",
    "/console/deliveries/retry-all?subscription_id=sub_50",
  ];
  console.log(`\npage | as | median ms | slowest ms (of ${repeat})`);
  for (const [who, client] of [["admin", admin], ["portal", portal]] as const) {
    for (const path of pages) {
      const times: number[] = [];
      let status = 0;
      for (let i = 0; i < repeat; i++) {
        const start = performance.now();
        const res = await client.get(path);
        await res.arrayBuffer();
        times.push(performance.now() - start);
        status = res.status;
      }
      times.sort((a, b) => a - b);
      const median = times[Math.floor(times.length / 2)]!;
      console.log(
        `${path} | ${who} | ${median.toFixed(1)} | ${times.at(-1)!.toFixed(1)}${
          status === 200 ? "" : ` (HTTP ${status})`
        }`,
      );
    }
  }
}
