import assert from "node:assert/strict";
import { json, type TestApp, testApp } from "../helpers/app.ts";
import { consoleClient, postForms } from "../helpers/console.ts";
import { SessionSigner } from "../../src/console/session.ts";
import { bearer } from "../helpers/http.ts";
import { startReceiver } from "../helpers/receiver.ts";
import { eventually } from "../helpers/service.ts";
import { worker } from "../helpers/worker.ts";

const xss = "<script>alert('xss')</script>";
// Known to the tests, so they can make the token a session's pages would carry.
const consoleSessionKey = new Uint8Array(32).fill(7);

/**
 * Two tenants: acme's endpoint answers 200, globex's 500 with a script in
 * its body; one event each, carrying a script in its data, delivered (or
 * failed, after one attempt) by a real worker to real receivers.
 */
async function seeded() {
  const t = await testApp({ apiKeys: ["console-admin-key-0123456789"], consoleSessionKey });
  const ok = startReceiver();
  const failing = startReceiver(() => new Response(xss, { status: 500 }));
  const close = async () => {
    await ok.close();
    await failing.close();
    await t.close();
  };
  try {
    return { ...(await seed(t, ok.url, failing.url)), close };
  } catch (err) {
    await close();
    throw err;
  }
}

async function seed(t: TestApp, okUrl: string, failingUrl: string) {
  const key = bearer("console-admin-key-0123456789");
  for (
    const [id, tenant, url] of [["sub_ok", "acme", okUrl], ["sub_bad", "globex", failingUrl]]
  ) {
    const res = await t.call("POST", "/subscriptions", { id, tenant_id: tenant, url }, key);
    assert.equal(res.status, 201);
  }
  for (const [id, tenant] of [["evt_acme", "acme"], ["evt_globex", "globex"]]) {
    const res = await t.call("POST", "/events", {
      id,
      type: "order.created",
      tenant_id: tenant,
      data: { note: xss },
    }, key);
    assert.equal(res.status, 201);
  }
  const w = worker(t.db, { maxAttempts: 1 });
  try {
    await eventually(async () => {
      const [row] = await t.db.sql`
        SELECT count(*) FILTER (WHERE status IN ('delivered', 'failed'))::int AS n FROM deliveries`;
      return row!.n === 2 ? true : undefined;
    }, { what: "both deliveries to finish" });
  } finally {
    await w.stop({ drainMs: 1_000, resultsMs: 1_000 });
  }
  const admin = consoleClient(t);
  const signed = await admin.post("/console/sign-in", { key: "console-admin-key-0123456789" });
  await signed.body?.cancel();
  return { t, key, admin };
}

async function page(client: ReturnType<typeof consoleClient>, path: string, status = 200) {
  const res = await client.get(path);
  const html = await res.text();
  assert.equal(res.status, status, `${path}: ${html.slice(0, 500)}`);
  return html;
}

Deno.test("every page answers, shows the delivered and the failed event, and escapes what it was sent", async () => {
  const s = await seeded();
  try {
    const overview = await page(s.admin, "/console");
    assert.match(overview, /<svg class="chart"/);
    assert.match(overview, /sub_bad/, "the most failing subscription");

    const events = await page(s.admin, "/console/events");
    assert.match(events, /evt_acme[\s\S]*status-delivered|status-delivered[\s\S]*evt_acme/);
    assert.match(events, /status-failed/);
    const filtered = await page(s.admin, "/console/events?status=failed");
    assert.ok(filtered.includes("evt_globex") && !filtered.includes("evt_acme"), "status filter");
    const byTenant = await page(s.admin, "/console/events?tenant_id=acme&type=order.created");
    assert.ok(byTenant.includes("evt_acme") && !byTenant.includes("evt_globex"), "tenant filter");

    const failed = await page(s.admin, "/console/events/evt_globex");
    assert.ok(!failed.includes(xss), "no script from the payload or the response body");
    assert.match(failed, /&lt;script&gt;alert\(/);
    assert.match(failed, /Retry failed deliveries/);
    assert.match(failed, /curl -X POST/);
    assert.match(failed, /webhook-signature: v1,&lt;signature/);
    assert.doesNotMatch(failed, /whsec_/, "no secret in the page");

    const subs = await page(s.admin, "/console/subscriptions");
    assert.match(subs, /sub_ok/);
    assert.match(subs, /<svg class="spark"/);
    assert.match(subs, /0\.0 %|0 %/, "sub_bad's success rate");
    await page(s.admin, "/console/subscriptions/sub_bad");
    await page(s.admin, "/console/subscriptions/sub_bad/delete");

    const dead = await page(s.admin, "/console/deliveries?status_class=5xx");
    assert.match(dead, /evt_globex/);
    const none = await page(s.admin, "/console/deliveries?status_class=4xx");
    assert.doesNotMatch(none, /evt_globex/);
    const confirm = await page(s.admin, "/console/deliveries/retry-all?subscription_id=sub_bad");
    assert.match(confirm, /<strong>1<\/strong> failed delivery matches/);
  } finally {
    await s.close();
  }
});

Deno.test("retrying from the event page puts its failed delivery back in the queue", async () => {
  const s = await seeded();
  try {
    await page(s.admin, "/console/events/evt_globex");
    const res = await s.admin.post("/console/events/evt_globex/retry");
    await res.body?.cancel();
    assert.equal(res.status, 303);
    assert.equal(res.headers.get("location"), "/console/events/evt_globex?done=retried&n=1");
    const [d] = await s.t.db.sql`SELECT status FROM deliveries WHERE event_id = 'evt_globex'`;
    assert.notEqual(d!.status, "failed");
    assert.match(await page(s.admin, res.headers.get("location")!), /1 failed deliveries put back/);
  } finally {
    await s.close();
  }
});

Deno.test("retry selected and retry all that match put back only the failed deliveries chosen", async () => {
  const s = await seeded();
  try {
    const html = await page(s.admin, "/console/deliveries");
    const id = /name="id" value="(\d+)"/.exec(html)![1]!;
    const selected = await s.admin.post("/console/deliveries/retry", { id: [id, "999999"] });
    await selected.body?.cancel();
    assert.equal(selected.headers.get("location"), "/console/deliveries?done=retried&n=1");
    await s.t.db.sql`UPDATE deliveries SET status = 'failed' WHERE id = ${Number(id)}`;
    const other = await s.admin.post("/console/deliveries/retry-all?subscription_id=sub_ok");
    await other.body?.cancel();
    assert.equal(other.headers.get("location"), "/console/deliveries?done=retried&n=0");
    const all = await s.admin.post("/console/deliveries/retry-all?tenant_id=globex");
    await all.body?.cancel();
    assert.equal(all.headers.get("location"), "/console/deliveries?done=retried&n=1");
  } finally {
    await s.close();
  }
});

Deno.test("a portal link opens the console for its tenant only; a read-only one has no control that changes state", async () => {
  const s = await seeded();
  try {
    const link = await json(
      await s.t.call("POST", "/tenants/acme/portal-sessions", { read_only: true }, s.key),
    );
    assert.match(link.url, /^http:\/\/localhost\/console\/portal\?token=/);
    const portal = consoleClient(s.t);
    const opened = await portal.get(new URL(link.url).pathname + new URL(link.url).search);
    assert.equal(opened.status, 200);
    assert.match(await opened.text(), /http-equiv="refresh" content="0; url=\/console"/);

    // A dead letter of acme's: pages would offer to retry it, but not to a read-only portal.
    await s.t.db
      .sql`UPDATE deliveries SET status = 'failed', delivered_at = NULL WHERE event_id = 'evt_acme'`;
    const pages = [
      "/console",
      "/console/events",
      "/console/events/evt_acme",
      "/console/subscriptions",
      "/console/subscriptions/sub_ok",
      "/console/deliveries",
      "/console/audit-log",
    ];
    for (const path of pages) {
      const html = await page(portal, path);
      assert.deepEqual(postForms(html), [], `${path} has a form that changes state`);
      assert.ok(!html.includes("globex") && !html.includes("sub_bad"), `${path} shows globex`);
    }
    assert.match(await page(portal, "/console/deliveries"), /evt_acme/, "its own dead letter");
    await page(portal, "/console/events/evt_globex", 404);
    await page(portal, "/console/subscriptions/sub_bad", 404);
    const other = await page(portal, "/console/events?tenant_id=globex");
    assert.doesNotMatch(other, /evt_globex/);

    // Even with the session's own CSRF token (no page of it shows one), a POST is refused.
    const refused = await portal.post("/console/subscriptions/sub_ok/delete", {}, {
      csrf: await ownCsrf(portal.cookie!),
    });
    assert.equal(refused.status, 403);
    assert.match(await refused.text(), /read-only/);
    assert.equal((await s.t.call("GET", "/subscriptions/sub_ok", undefined, s.key)).status, 200);
  } finally {
    await s.close();
  }
});

Deno.test("console and portal actions are audited as the console or the portal, and the audit page shows a tenant only its own", async () => {
  const s = await seeded();
  try {
    await page(s.admin, "/console/events/evt_globex");
    const retried = await s.admin.post("/console/events/evt_globex/retry");
    await retried.body?.cancel();
    assert.equal(retried.status, 303);

    const link = await json(await s.t.call("POST", "/tenants/acme/portal-sessions", {}, s.key));
    const portal = consoleClient(s.t);
    await (await portal.get(new URL(link.url).pathname + new URL(link.url).search)).body?.cancel();
    await s.t.db
      .sql`UPDATE deliveries SET status = 'failed', delivered_at = NULL WHERE event_id = 'evt_acme'`;
    await page(portal, "/console/events/evt_acme");
    const own = await portal.post("/console/events/evt_acme/retry");
    await own.body?.cancel();
    assert.equal(own.status, 303);

    const entries = await s.t.db.sql<{ actor_type: string; action: string; resource_id: string }[]>`
      SELECT actor_type, action, resource_id, actor_tenant_id FROM audit_log
      WHERE action = 'retryEvent' ORDER BY id`;
    assert.deepEqual(entries.map((e) => [e.actor_type, e.action, e.resource_id]), [
      ["console", "retryEvent", "evt_globex"],
      ["portal", "retryEvent", "evt_acme"],
    ]);

    const all = await page(s.admin, "/console/audit-log");
    assert.match(all, /evt_globex/);
    assert.match(all, /evt_acme/);
    const mine = await page(portal, "/console/audit-log");
    assert.match(mine, /event evt_acme/);
    assert.doesNotMatch(mine, /globex/);
    assert.doesNotMatch(await page(portal, "/console/audit-log?tenant_id=globex"), /globex/);
  } finally {
    await s.close();
  }
});

/** The CSRF token of the session in `cookie`, made with the app's key. */
async function ownCsrf(cookie: string): Promise<string> {
  const signer = new SessionSigner(consoleSessionKey);
  const claims = await signer.verify(cookie.replace("dispatch_console=", ""), "session");
  return await signer.csrfToken(claims!.sid);
}

Deno.test("POST /tenants/:id/portal-sessions takes an optional body, an admin key, and a sane ttl", async () => {
  const s = await seeded();
  try {
    const before = Date.now();
    const res = await s.t.call("POST", "/tenants/acme/portal-sessions", undefined, s.key);
    assert.equal(res.status, 201);
    const link = await json(res);
    const ttl = Date.parse(link.expires_at) - before;
    assert.ok(ttl > 3_590_000 && ttl <= 3_601_000, `default ttl: ${ttl}`);

    const unknown = await s.t.call("POST", "/tenants/nobody/portal-sessions", undefined, s.key);
    assert.equal(unknown.status, 404);
    assert.equal((await json(unknown)).error.message, 'Tenant "nobody" does not exist');

    const bad = await s.t.call("POST", "/tenants/acme/portal-sessions", { ttl_seconds: 5 }, s.key);
    assert.equal(bad.status, 400);
    assert.match((await json(bad)).error.message, /^Invalid field "ttl_seconds"/);

    const tenantKey = await json(
      await s.t.call("POST", "/api-keys", { scope: "tenant", tenant_id: "acme" }, s.key),
    );
    const forbidden = await s.t.call(
      "POST",
      "/tenants/acme/portal-sessions",
      undefined,
      bearer(tenantKey.key),
    );
    await forbidden.body?.cancel();
    assert.ok(forbidden.status === 403 || forbidden.status === 401, `${forbidden.status}`);

    const forged = consoleClient(s.t);
    await page(forged, `/console/portal?token=${link.url.split("token=")[1].slice(0, -2)}xx`, 401);
  } finally {
    await s.close();
  }
});
