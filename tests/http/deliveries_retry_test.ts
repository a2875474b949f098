import assert from "node:assert/strict";
import { assertInvalidField, json, type TestApp, testApp } from "../helpers/app.ts";
import { bearer } from "../helpers/http.ts";

const admin = "admin-key-0123456789";

/**
 * `n` failed deliveries of subscription `id` (made if new) for events of
 * `type` and `tenant`, whose last answer was `code` (null: a network error).
 */
async function seedFailed(
  t: TestApp,
  n: number,
  options: { id: string; type?: string; tenant?: string | null; code?: number | null },
) {
  const { id, type = "order.created", tenant = null, code = 500 } = options;
  const [sub] = await t.db.sql<{ seq: number }[]>`
    INSERT INTO subscriptions (id, url, event_types, secret, tenant_id)
    VALUES (${id}, 'http://127.0.0.1:9/', '{*}', 'a-secret', ${tenant})
    ON CONFLICT (tenant_id, id) DO UPDATE SET url = EXCLUDED.url
    RETURNING seq`;
  const prefix = `${tenant}_${id}_${type}_${code}_`;
  await t.db.sql`INSERT INTO events (id, type, data, tenant_id, fanned_out)
    SELECT ${prefix} || g, ${type}, '{}', ${tenant}, 1 FROM generate_series(1, ${n}) g`;
  await t.db.sql`INSERT INTO deliveries (event_id, subscription_id, subscription_seq, status,
      attempts, last_status_code, last_error)
    SELECT ${prefix} || g, ${id}, ${sub!.seq}, 'failed', 5, ${code}, 'failed'
    FROM generate_series(1, ${n}) g`;
}

async function retry(t: TestApp, body: unknown, key = admin) {
  const res = await t.call("POST", "/deliveries/retry", body, bearer(key));
  return { status: res.status, body: await json(res) };
}

async function countByStatus(t: TestApp) {
  const rows = await t.db.sql<{ status: string; n: number }[]>`
    SELECT status, count(*)::int AS n FROM deliveries GROUP BY status ORDER BY status`;
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

Deno.test("POST /deliveries/retry counts 2,000 failed deliveries with dry_run, then puts them all back at once", async () => {
  const t = await testApp({ apiKeys: [admin] });
  try {
    await seedFailed(t, 2000, { id: "s" });
    const dry = await retry(t, { status: "failed", dry_run: true });
    assert.equal(dry.status, 200);
    assert.deepEqual(dry.body, { matching: 2000 });
    assert.deepEqual(await countByStatus(t), { failed: 2000 });

    const done = await retry(t, { status: "failed" });
    assert.equal(done.status, 202);
    assert.deepEqual(done.body, { requeued: 2000 });
    assert.deepEqual(await countByStatus(t), { retrying: 2000 });
    // A fresh attempt budget, in one transaction: one time for all.
    const [row] = await t.db.sql<{ base: number; times: number; errors: number }[]>`
      SELECT min(attempt_base)::int AS base, count(DISTINCT updated_at)::int AS times,
        count(last_error)::int AS errors FROM deliveries`;
    assert.deepEqual({ ...row }, { base: 5, times: 1, errors: 0 });
    assert.deepEqual((await retry(t, { status: "failed", dry_run: true })).body, { matching: 0 });
    const [entry] = await t.db.sql`SELECT action, status FROM audit_log ORDER BY id DESC LIMIT 1`;
    assert.deepEqual({ ...entry }, { action: "retryDeliveries", status: 200 });
  } finally {
    await t.close();
  }
});

Deno.test("POST /deliveries/retry puts back only what its filter matches", async () => {
  const t = await testApp({ apiKeys: [admin] });
  try {
    await seedFailed(t, 3, { id: "a", type: "order.created", code: 500 });
    await seedFailed(t, 4, { id: "a", type: "order.paid", code: 404 });
    await seedFailed(t, 5, { id: "b", type: "order.created", code: null });
    await seedFailed(t, 6, { id: "c", type: "order.created", tenant: "acme", code: 503 });
    await seedFailed(t, 7, { id: "off", type: "order.created" });
    await t.db.sql`UPDATE subscriptions SET active = false WHERE id = 'off'`;
    const matching = async (filter: Record<string, unknown>) =>
      (await retry(t, { status: "failed", dry_run: true, ...filter })).body.matching;
    // A disabled subscription's are never put back, so they do not match.
    assert.equal(await matching({}), 18);
    assert.equal(await matching({ subscription_id: "a" }), 7);
    assert.equal(await matching({ subscription_id: "nope" }), 0);
    assert.equal(await matching({ event_type: "order.paid" }), 4);
    assert.equal(await matching({ tenant_id: "acme" }), 6);
    assert.equal(await matching({ status_class: "4xx" }), 4);
    assert.equal(await matching({ status_class: "5xx" }), 9);
    assert.equal(await matching({ status_class: "network" }), 5);
    assert.equal(await matching({ until: "2000-01-01T00:00:00Z" }), 0);
    assert.equal(await matching({ since: "2000-01-01T00:00:00Z" }), 18);
    await t.db.sql`UPDATE deliveries SET created_at = now() - interval '2 days'
      WHERE subscription_id = 'b'`;
    const yesterday = new Date(Date.now() - 86_400_000).toISOString();
    assert.equal(await matching({ since: yesterday }), 13);
    assert.equal(await matching({ until: yesterday }), 5);

    const done = await retry(t, { status: "failed", subscription_id: "a", status_class: "5xx" });
    assert.deepEqual(done.body, { requeued: 3 });
    const [left] = await t.db.sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM deliveries WHERE status = 'failed'`;
    assert.equal(left!.n, 25 - 3);
  } finally {
    await t.close();
  }
});

Deno.test("a tenant key retries only its own tenant's failed deliveries", async () => {
  const t = await testApp({ apiKeys: [admin] });
  try {
    await seedFailed(t, 2, { id: "s", tenant: "acme" });
    await seedFailed(t, 3, { id: "s", tenant: "other" });
    await seedFailed(t, 4, { id: "s" });
    const key = await json(
      await t.call("POST", "/api-keys", { scope: "tenant", tenant_id: "acme" }, bearer(admin)),
    );
    assert.deepEqual((await retry(t, { status: "failed", dry_run: true }, key.key)).body, {
      matching: 2,
    });
    const foreign = await retry(t, { status: "failed", tenant_id: "other" }, key.key);
    assert.equal(foreign.status, 404);
    const ids = async (tenant: string) =>
      (await t.db.sql<{ id: string }[]>`
        SELECT d.id FROM deliveries d JOIN events e ON e.id = d.event_id
        WHERE e.tenant_id = ${tenant} ORDER BY d.id`).map((r) => Number(r.id));
    // Another tenant's ids are as absent as none; one of its own picks that one only.
    const theirs = await retry(t, { status: "failed", delivery_ids: await ids("other") }, key.key);
    assert.deepEqual(theirs.body, { requeued: 0 });
    const [first, ...rest] = await ids("acme");
    const one = await retry(t, { status: "failed", delivery_ids: [first] }, key.key);
    assert.deepEqual(one.body, { requeued: 1 });
    const done = await retry(t, { status: "failed" }, key.key);
    assert.deepEqual(done.body, { requeued: rest.length });
    const rows = await t.db.sql<{ tenant_id: string | null; status: string }[]>`
      SELECT e.tenant_id, d.status FROM deliveries d JOIN events e ON e.id = d.event_id
      WHERE d.status <> 'failed'`;
    assert.deepEqual(rows.map((r) => r.tenant_id), ["acme", "acme"]);
    const [entry] = await t.db.sql`
      SELECT actor_key_id, tenant_id, status FROM audit_log WHERE action = 'retryDeliveries'
      ORDER BY id DESC LIMIT 1`;
    assert.deepEqual({ ...entry }, { actor_key_id: key.id, tenant_id: "acme", status: 202 });
  } finally {
    await t.close();
  }
});

Deno.test("POST /deliveries/retry refuses a status other than failed and unknown fields, naming them", async () => {
  const t = await testApp({ apiKeys: [admin] });
  try {
    const call = (body: unknown) => t.call("POST", "/deliveries/retry", body, bearer(admin));
    await assertInvalidField(await call({ status: "delivered" }), "status");
    await assertInvalidField(await call({}), "status");
    await assertInvalidField(await call({ status: "failed", since: "yesterday" }), "since");
    await assertInvalidField(await call({ status: "failed", status_class: "1xx" }), "status_class");
    await assertInvalidField(await call({ status: "failed", dry_run: "yes" }), "dry_run");
    await assertInvalidField(await call({ status: "failed", delivery_ids: [] }), "delivery_ids");
    await assertInvalidField(
      await call({ status: "failed", delivery_ids: [1, "2"] }),
      "delivery_ids[1]",
      "delivery_ids",
    );
    const extra = await call({ status: "failed", subscription: "s" });
    assert.equal(extra.status, 400);
    assert.match((await json(extra)).error.message, /subscription/);
  } finally {
    await t.close();
  }
});
