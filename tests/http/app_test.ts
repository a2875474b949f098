import assert from "node:assert/strict";
import { loadConfig } from "../../src/config.ts";
import { DatabaseOutage } from "../../src/db/outage.ts";
import { queueStats } from "../../src/db/stats.ts";
import { createOpsApp } from "../../src/http/app.ts";
import { silentLogger } from "../../src/observability/log.ts";
import { createMetrics } from "../../src/observability/metrics.ts";
import { json, testApp } from "../helpers/app.ts";
import { testDatabase } from "../helpers/db.ts";

Deno.test("an unknown route answers 404 with an error body", async () => {
  const t = await testApp();
  try {
    const res = await t.call("GET", "/nope");
    assert.equal(res.status, 404);
    assert.equal((await json(res)).error.code, "not_found");
  } finally {
    await t.close();
  }
});

Deno.test("a wrong method on a known path answers 405 with Allow", async () => {
  const t = await testApp();
  try {
    const cases: [string, string, string][] = [
      ["PUT", "/events", "GET, HEAD, POST"],
      ["DELETE", "/events/evt_1", "GET, HEAD"],
      ["GET", "/events/evt_1/retry", "POST"],
      ["PUT", "/subscriptions/sub_1", "GET, HEAD, PATCH, DELETE"],
      ["POST", "/healthz", "GET, HEAD"],
    ];
    for (const [method, path, allow] of cases) {
      const res = await t.call(method, path);
      assert.equal(res.status, 405, `${method} ${path}`);
      assert.equal(res.headers.get("allow"), allow, `${method} ${path}`);
      const { error } = await json(res);
      assert.equal(error.code, "method_not_allowed");
      assert.equal(error.message, `Method ${method} is not allowed on ${path}: use ${allow}`);
    }
    // A path nothing serves is still a 404.
    const unknown = await t.call("PUT", "/events/evt_1/nope");
    assert.equal(unknown.status, 404);
    assert.equal(unknown.headers.get("allow"), null);
    await unknown.body?.cancel();
  } finally {
    await t.close();
  }
});

Deno.test("a route that says not found itself answers 404, not 405", async () => {
  const db = await testDatabase();
  try {
    const log = silentLogger;
    const metrics = createMetrics({ inFlight: () => 0, queueStats: () => queueStats(db.sql), log });
    const outage = new DatabaseOutage(log, { probe: () => db.sql`SELECT 1` });
    const app = createOpsApp({ sql: db.sql, log, outage, config: loadConfig({}), metrics });
    app.get("/things/:id", (c) => c.notFound());
    const own = await app.request("/things/1");
    assert.equal(own.status, 404);
    assert.equal(own.headers.get("allow"), null);
    assert.equal((await json(own)).error.code, "not_found");
    const other = await app.request("/things/1", { method: "PUT" });
    assert.equal(other.status, 405);
    assert.equal(other.headers.get("allow"), "GET, HEAD");
    await other.body?.cancel();
  } finally {
    await db.close();
  }
});

Deno.test("/healthz and /readyz answer 200 on a migrated database", async () => {
  const t = await testApp();
  try {
    assert.deepEqual(await json(await t.call("GET", "/healthz")), { status: "ok" });
    const ready = await t.call("GET", "/readyz");
    assert.equal(ready.status, 200);
    await ready.body?.cancel();
  } finally {
    await t.close();
  }
});

Deno.test("/readyz answers 503 when the schema is behind", async () => {
  const t = await testApp();
  try {
    await t.db.sql`DELETE FROM dispatch_migrations`;
    const res = await t.call("GET", "/readyz");
    assert.equal(res.status, 503);
    assert.match((await json(res)).reason, /run migrate/);
  } finally {
    await t.close();
  }
});

Deno.test("/openapi.json documents every route", async () => {
  const t = await testApp();
  try {
    const doc = await json(await t.call("GET", "/openapi.json"));
    assert.equal(doc.openapi, "3.1.0");
    for (const path of ["/events", "/events/{id}", "/subscriptions/{id}/rotate-secret"]) {
      assert.ok(path in doc.paths, path);
    }
    assert.ok(doc.paths["/events"].post.responses["413"]);
  } finally {
    await t.close();
  }
});

Deno.test("API keys: requests without a valid bearer key answer 401; probes stay open", async () => {
  const t = await testApp({ apiKeys: ["k1-secret", "k2-secret"] });
  try {
    const none = await t.call("GET", "/events");
    assert.equal(none.status, 401);
    assert.match((await json(none)).error.message, /Authorization: Bearer/);
    const wrong = await t.call("GET", "/events", undefined, { authorization: "Bearer nope" });
    assert.equal(wrong.status, 401);
    await wrong.body?.cancel();
    const ok = await t.call("GET", "/events", undefined, { authorization: "Bearer k2-secret" });
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
    const health = await t.call("GET", "/healthz");
    assert.equal(health.status, 200);
    await health.body?.cancel();
  } finally {
    await t.close();
  }
});
