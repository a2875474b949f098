/**
 * What each key may reach, walked over every operation of /openapi.json, so
 * an operation added later is held to the same rules without a new test.
 */
import assert from "node:assert/strict";
import type { Sql } from "../../src/db/pool.ts";
import { json, testApp } from "../helpers/app.ts";
import { apiClient, bearer } from "../helpers/http.ts";

// deno-lint-ignore no-explicit-any -- the document is arbitrary JSON
type Doc = any;

const admin = "admin-key-0123456789";
const methods = ["get", "post", "put", "patch", "delete"];
const hook = "http://127.0.0.1:9/hook";

function operations(doc: Doc) {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item as Doc).filter(([m]) => methods.includes(m)).map(([method, op]) => ({
      method: method.toUpperCase(),
      path,
      op: op as Doc,
    }))
  );
}

function resolve(doc: Doc, schema: Doc): Doc {
  return schema?.$ref ? doc.components.schemas[schema.$ref.split("/").at(-1)] : schema;
}

/** Every row of every table, as text: what "changes nothing" compares (last use aside). */
async function snapshot(sql: Sql): Promise<string> {
  // The audit log records the refusal: that is its job (tests/http/audit_log_test.ts). A
  // partition's rows are its table's.
  const tables = await sql<{ name: string }[]>`
    SELECT c.relname AS name FROM pg_class c
    WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
      AND NOT c.relispartition AND c.relname <> 'audit_log' ORDER BY 1`;
  const parts = [];
  for (const { name } of tables) {
    const rows = await sql.unsafe(
      name === "api_keys"
        ? `SELECT id, scope, tenant_id, description, expires_at FROM api_keys t ORDER BY 1`
        : `SELECT t::text AS row FROM "${name}" t ORDER BY 1`,
    );
    parts.push(`${name}: ${JSON.stringify(rows)}`);
  }
  return parts.join("\n");
}

Deno.test("for every operation in /openapi.json, a tenant key aimed at another tenant's resource answers 404 and changes nothing", async () => {
  const t = await testApp({ apiKeys: [admin] });
  try {
    const call = apiClient(t.call, { key: admin });
    // Tenant "b" has one of everything; so do resources without a tenant.
    for (const tenant of ["b", undefined]) {
      const suffix = tenant ?? "none";
      await call("POST", "/subscriptions", { id: `sub_${suffix}`, tenant_id: tenant, url: hook });
      await call("POST", "/events", {
        id: `evt_${suffix}`,
        tenant_id: tenant,
        type: "a",
        data: {},
      });
    }
    await t.db.sql`UPDATE deliveries SET status = 'failed'`;
    const theirKey = await call("POST", "/api-keys", { scope: "tenant", tenant_id: "b" });
    const mine = (await call("POST", "/api-keys", { scope: "tenant", tenant_id: "a" })).key;
    const doc = await call("GET", "/openapi.json");
    const warm = await t.call("GET", "/events", undefined, bearer(mine));
    await warm.body?.cancel();

    const targets = (resource: string) =>
      ({
        events: ["evt_b", "evt_none"],
        subscriptions: ["sub_b", "sub_none"],
        tenants: ["b"],
        "api-keys": [theirKey.id],
      })[resource] ?? ["evt_b"];
    let checked = 0;
    for (const { method, path, op } of operations(doc)) {
      if (op["x-scopes"] === undefined) continue; // open operations: the probes, /metrics, /docs
      const what = `${method} ${path}`;
      const allowed = op["x-scopes"].includes("tenant");
      const namesTenant = (op.parameters ?? []).some((p: Doc) => p.name === "tenant_id");
      const bodySchema = resolve(doc, op.requestBody?.content["application/json"].schema);
      const example = op.requestBody?.content["application/json"].example;
      const named = bodySchema?.properties?.tenant_id ? { ...example, tenant_id: "b" } : example;
      const query = namesTenant ? "?tenant_id=b" : "";
      const ids = path.includes("{id}") ? targets(path.split("/")[1]!) : [null];
      // Aimed by id, with and without naming the tenant in the body too.
      const tries = ids.flatMap((id) =>
        (id === null ? [named] : [...new Set([example, named])]).map((body) => ({ id, body }))
      );
      for (const { id, body } of tries) {
        const url = (id === null ? path : path.replace("{id}", id)) + query;
        const before = await snapshot(t.db.sql);
        const res = await t.call(method, url, body, bearer(mine));
        const answer = await json(res).catch(() => null);
        const where = `${what} as ${url}`;
        if (!allowed) {
          assert.equal(res.status, 403, where);
        } else if (id !== null || namesTenant || bodySchema?.properties?.tenant_id) {
          assert.equal(res.status, 404, `${where}: ${JSON.stringify(answer)}`);
          assert.equal(answer.error.code, "not_found", where);
          // The same answer as for an id that does not exist (a tenant with nothing, for tenant_id).
          let expected = 'Tenant "b" does not exist';
          if (id !== null) {
            const control = await t.call(method, url.replace(id, "zz"), body, bearer(admin));
            expected = (await json(control)).error.message.replace("zz", id);
          }
          assert.equal(answer.error.message, expected, where);
        } else {
          // Nothing to aim at: whatever it answers holds nothing of another tenant's.
          assert.ok(res.status < 500, where);
          assert.ok(!JSON.stringify(answer).match(/evt_(b|none)|sub_(b|none)/), where);
        }
        assert.equal(await snapshot(t.db.sql), before, `${where} changed something`);
        checked++;
      }
    }
    assert.ok(checked >= 20, `only ${checked} requests`);
  } finally {
    await t.close();
  }
});

Deno.test("a publish key answers 403 on every route but the two ingest ones, testing a filter and the catalog's reads, before the body is read", async () => {
  const t = await testApp({ apiKeys: [admin], metricsPublic: false, maxPayloadBytes: 1024 });
  try {
    const created = await t.call("POST", "/api-keys", { scope: "publish" }, bearer(admin));
    const { key } = await json(created);
    const doc = await json(await t.call("GET", "/openapi.json"));
    const ingest = ["createEvent", "createEventBatch", "testFilter"];
    let refused = 0;
    for (const { method, path, op } of operations(doc)) {
      const url = path.replace("{id}", "x").replace("{name}", "x");
      if (op.operationId === "listEventTypes" || op.operationId === "getEventType") {
        const res = await t.call(method, url, undefined, bearer(key));
        assert.equal(res.status, op.operationId === "getEventType" ? 404 : 200, op.operationId);
        await res.body?.cancel();
        continue;
      }
      if (op.security?.length === 0) {
        const res = await t.call(method, url, undefined, bearer(key));
        assert.ok(res.status < 300 || path === "/readyz", `${method} ${path} stays open`);
        await res.body?.cancel();
        continue;
      }
      if (ingest.includes(op.operationId)) {
        const ok = await t.call(
          method,
          url,
          op.requestBody.content["application/json"].example,
          bearer(key),
        );
        assert.ok(ok.status === 201 || ok.status === 200, `${method} ${path}: ${ok.status}`);
        await ok.body?.cancel();
        continue;
      }
      // Not JSON, not valid, too large: the scope is refused first all the same.
      const bodies: [string | undefined, HeadersInit][] = method === "GET" || method === "DELETE"
        ? [[undefined, {}]]
        : [["x", { "content-type": "text/plain" }], ["{not json", {}], ["y".repeat(4096), {}]];
      for (const [body, headers] of bodies) {
        const res = await t.call(method, url, body, { ...bearer(key), ...headers });
        assert.equal(res.status, 403, `${method} ${path} with ${body?.slice(0, 10)}`);
        const { error } = await json(res);
        assert.equal(error.code, "forbidden");
        assert.match(
          error.message,
          /^A "publish" key cannot call .*: it may only call POST \/events, POST \/events\/batch and POST \/filters\/test, and read \/event-types$/,
        );
        refused++;
      }
    }
    assert.ok(refused >= 20, `only ${refused} refusals`);
    for (const path of ["/docs", "/healthz", "/openapi.json"]) {
      const res = await t.call("GET", path, undefined, bearer(key));
      assert.equal(res.status, 200, path);
      await res.body?.cancel();
    }
  } finally {
    await t.close();
  }
});

Deno.test("a subscription id is unique within its tenant: creating another tenant's id answers as a new one, never 409", async () => {
  const t = await testApp({ apiKeys: [admin] });
  try {
    const asAdmin = (method: string, path: string, body?: unknown) =>
      t.call(method, path, body, bearer(admin));
    const key = async (tenant: string) =>
      (await json(await asAdmin("POST", "/api-keys", { scope: "tenant", tenant_id: tenant }))).key;
    const [a, b] = [await key("a"), await key("b")];
    const create = (who: string, id: string, url: string) =>
      t.call("POST", "/subscriptions", { id, url }, bearer(who));
    assert.equal((await create(b, "sub_shared", "http://127.0.0.1:9/b")).status, 201);
    assert.equal(
      (await asAdmin("POST", "/subscriptions", { id: "sub_none", url: hook })).status,
      201,
    );

    // Tenant a cannot tell b's id, or one without a tenant, from a free one.
    for (const id of ["sub_shared", "sub_none", "sub_free"]) {
      const res = await create(a, id, "http://127.0.0.1:9/a");
      assert.equal(res.status, 201, id);
      assert.equal((await json(res)).tenant_id, "a");
    }
    const again = await create(a, "sub_shared", "http://127.0.0.1:9/a");
    assert.equal(again.status, 409);
    assert.equal(
      (await json(again)).error.message,
      'Subscription "sub_shared" already exists: use a new id',
    );

    // Each tenant reaches its own; an admin names the tenant when the id alone is ambiguous.
    const urlOf = async (res: Response) => (await json(res)).url;
    assert.equal(
      await urlOf(await t.call("GET", "/subscriptions/sub_shared", undefined, bearer(a))),
      "http://127.0.0.1:9/a",
    );
    assert.equal(
      await urlOf(await t.call("GET", "/subscriptions/sub_shared", undefined, bearer(b))),
      "http://127.0.0.1:9/b",
    );
    const ambiguous = await asAdmin("GET", "/subscriptions/sub_shared");
    assert.equal(ambiguous.status, 409);
    assert.equal(
      (await json(ambiguous)).error.message,
      'Subscription "sub_shared" exists in more than one tenant: name one with ?tenant_id=',
    );
    assert.equal(
      await urlOf(await asAdmin("GET", "/subscriptions/sub_shared?tenant_id=b")),
      "http://127.0.0.1:9/b",
    );
    assert.equal((await asAdmin("DELETE", "/subscriptions/sub_shared?tenant_id=a")).status, 204);
    assert.equal(
      await urlOf(await asAdmin("GET", "/subscriptions/sub_shared")),
      "http://127.0.0.1:9/b",
    );
    const rows = await t.db.sql`SELECT id, tenant_id FROM subscriptions ORDER BY id, tenant_id`;
    assert.deepEqual(rows.map((r) => `${r.id}/${r.tenant_id}`), [
      "sub_free/a",
      "sub_none/a",
      "sub_none/null",
      "sub_shared/b",
    ]);
  } finally {
    await t.close();
  }
});
