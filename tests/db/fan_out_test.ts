import assert from "node:assert/strict";
import type postgres from "postgres";
import type { Sql } from "../../src/db/pool.ts";
import { testDatabase } from "../helpers/db.ts";

/** The pattern rule in plain code, to hold the index's answers against. */
function matches(pattern: string, type: string): boolean {
  if (pattern === "*") return !type.startsWith("dispatch.");
  if (pattern.endsWith(".*")) return type.startsWith(pattern.slice(0, -1));
  return pattern === type;
}

async function addSubscription(
  sql: Sql,
  sub: { id: string; patterns: string[]; tenant?: string | null; active?: boolean },
) {
  await sql`
    INSERT INTO subscriptions (id, url, event_types, secret, tenant_id, active)
    VALUES (${sub.id}, 'http://127.0.0.1:9/', ${sub.patterns}, 's', ${sub.tenant ?? null},
      ${sub.active ?? true})`;
}

/**
 * The fan-out of every event of `events`, a relation with columns `id`, `type`, `source`,
 * `tenant_id` and `data`, as `dispatch_insert_events` runs it.
 */
function fanOut(sql: Sql, events: postgres.Helper<string>) {
  return sql`
    SELECT e.id AS event_id, f.subscription_id, f.subscription_seq
    FROM (
      SELECT e.*, dispatch_filter_document(e.id, e.type, e.source, e.tenant_id, e.data) AS document
      FROM ${events} e OFFSET 0
    ) e
    CROSS JOIN LATERAL dispatch_fan_out(e.tenant_id, e.type, e.document) f`;
}

/** The subscription ids dispatch_fan_out() gives each event of a VALUES list (any relation will do). */
async function fannedTo(sql: Sql, events: [string, string, string | null][]) {
  const rows = await sql<{ event_id: string; subscription_id: string }[]>`
    WITH ev AS (
      SELECT * FROM unnest(${events.map((e) => e[0])}::text[], ${events.map((e) => e[1])}::text[],
        ${events.map((e) => e[2])}::text[]) AS e(id, type, tenant_id)
      CROSS JOIN (SELECT NULL::text AS source, '{}'::jsonb AS data) payload
    )
    SELECT event_id, subscription_id FROM (${fanOut(sql, sql("ev"))}) f
    ORDER BY event_id, subscription_id`;
  const by = new Map<string, string[]>(events.map((e) => [e[0], []]));
  for (const r of rows) by.get(r.event_id)!.push(r.subscription_id);
  return by;
}

Deno.test("dispatch_fan_out() answers what the pattern rule says for every pattern and type, within each tenant", async () => {
  const db = await testDatabase();
  try {
    const patterns = [
      "*",
      "a",
      "a.*",
      "a.b",
      "a.b.*",
      "a.b.c",
      "a.b.c.*",
      "a.c.*",
      "ab.*",
      "a..*",
      "dispatch.*",
      "dispatch.subscription.disabled",
      "dispatch.subscription.*",
    ];
    const types = [
      "a",
      "a.b",
      "a.b.c",
      "a.b.c.d",
      "ab",
      "ab.c",
      "a.",
      "a..b",
      "b.a",
      "dispatch",
      "dispatch.subscription.disabled",
      "dispatch.other",
    ];
    const tenants = [null, "acme", "globex"];
    for (const [i, p] of patterns.entries()) {
      for (const tenant of tenants) {
        await addSubscription(db.sql, { id: `s${i}_${tenant}`, patterns: [p], tenant });
      }
    }
    const events = types.flatMap((type) =>
      tenants.map((tenant) =>
        [`${type}@${tenant}`, type, tenant] as [string, string, string | null]
      )
    );
    const got = await fannedTo(db.sql, events);
    for (const [id, type, tenant] of events) {
      const expected = patterns.flatMap((p, i) => matches(p, type) ? [`s${i}_${tenant}`] : []);
      assert.deepEqual(got.get(id), expected.sort(), `${type} for tenant ${tenant}`);
    }
  } finally {
    await db.close();
  }
});

Deno.test("* does not match the operator's dispatch. events; dispatch.* and the exact type do", async () => {
  const db = await testDatabase();
  try {
    await addSubscription(db.sql, { id: "star", patterns: ["*"] });
    await addSubscription(db.sql, { id: "ops", patterns: ["dispatch.*"] });
    await addSubscription(db.sql, { id: "exact", patterns: ["dispatch.subscription.disabled"] });
    const got = await fannedTo(db.sql, [
      ["e1", "dispatch.subscription.disabled", null],
      ["e2", "order.created", null],
      ["e3", "dispatcher.x", null],
    ]);
    assert.deepEqual(got.get("e1"), ["exact", "ops"]);
    assert.deepEqual(got.get("e2"), ["star"]);
    assert.deepEqual(got.get("e3"), ["star"]);
  } finally {
    await db.close();
  }
});

Deno.test("an inactive subscription never matches, and changing event_types moves its keys", async () => {
  const db = await testDatabase();
  try {
    await addSubscription(db.sql, { id: "off", patterns: ["*"], active: false });
    await addSubscription(db.sql, { id: "on", patterns: ["a.*"] });
    assert.deepEqual((await fannedTo(db.sql, [["e", "a.x", null]])).get("e"), ["on"]);
    await db.sql`UPDATE subscriptions SET event_types = '{b.*}' WHERE id = 'on'`;
    await db.sql`UPDATE subscriptions SET active = true WHERE id = 'off'`;
    assert.deepEqual((await fannedTo(db.sql, [["e", "a.x", null]])).get("e"), ["off"]);
    assert.deepEqual((await fannedTo(db.sql, [["e", "b.x", null]])).get("e"), ["off", "on"]);
  } finally {
    await db.close();
  }
});

Deno.test("fan-out is an index probe per event with 10,000 tenants × 2 subscriptions (one filtered) and 10,000 that do not match", async () => {
  const db = await testDatabase();
  try {
    await db.sql`
      INSERT INTO subscriptions (id, url, event_types, secret, tenant_id, filter)
      SELECT 't' || i || '_' || j, 'http://127.0.0.1:9/', '{order.*}', 's', 'tenant_' || i,
        CASE WHEN j = 1 THEN '$.data.n > 0' END
      FROM generate_series(1, 10000) i, generate_series(1, 2) j`;
    await db.sql`
      INSERT INTO subscriptions (id, url, event_types, secret)
      SELECT 'n' || i, 'http://127.0.0.1:9/', '{other.thing}', 's' FROM generate_series(1, 10000) i`;
    await db.sql`
      INSERT INTO subscriptions (id, url, event_types, secret, active)
      SELECT 'off' || i, 'http://127.0.0.1:9/', '{*}', 's', false FROM generate_series(1, 10000) i`;
    await addSubscription(db.sql, { id: "match", patterns: ["bench.*"] });
    await db.sql`ANALYZE subscriptions`;
    const ev = db.sql`
      SELECT * FROM unnest(${["e1", "e2", "e3"]}::text[],
        ${["order.created", "order.paid", "bench.event"]}::text[],
        ${["tenant_7", "tenant_9000", null]}::text[]) AS e(id, type, tenant_id)
      CROSS JOIN (SELECT NULL::text AS source, '{"n": 1}'::jsonb AS data) payload`;
    const [explained] = await db.sql<{ "QUERY PLAN": [{ Plan: unknown }] }[]>`
      EXPLAIN (ANALYZE, FORMAT JSON) WITH ev AS (${ev}) ${fanOut(db.sql, db.sql("ev"))}`;
    const nodes: { "Node Type": string; "Relation Name"?: string; "Index Name"?: string }[] = [];
    const walk = (n: Record<string, unknown>) => {
      nodes.push(n as (typeof nodes)[number]);
      for (const child of (n.Plans as Record<string, unknown>[] | undefined) ?? []) walk(child);
    };
    walk(explained!["QUERY PLAN"][0].Plan as Record<string, unknown>);
    const what = JSON.stringify(nodes.map((n) => n["Node Type"]));
    assert.ok(
      nodes.some((n) => n["Index Name"] === "subscriptions_match_keys"),
      `no probe of subscriptions_match_keys: ${what}`,
    );
    assert.ok(
      !nodes.some((n) => n["Node Type"] === "Seq Scan" && n["Relation Name"] === "subscriptions"),
      `subscriptions scanned: ${what}`,
    );
    const rows = await db.sql`WITH ev AS (${ev}) ${fanOut(db.sql, db.sql("ev"))}`;
    assert.equal(rows.length, 5);
  } finally {
    await db.close();
  }
});
