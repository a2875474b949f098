import assert from "node:assert/strict";
import { json, type TestApp, testApp } from "../helpers/app.ts";
import { withAudit } from "../../src/engine/audit.ts";
import { readOnlyOperations } from "../../src/http/audit.ts";
import { bearer } from "../helpers/http.ts";

const admin = "admin-key-0123456789";
const hook = "http://127.0.0.1:9/hook";
const changing = ["post", "patch", "put", "delete"];

/** One call of an operation: its path and body, and the resource its entry must name. */
interface Call {
  path: string;
  body?: unknown;
  status: number;
  resource: { type: string; id: string | null };
}

/** Sends a call with its own request id (answered and read), with the admin key unless told. */
async function send(
  t: TestApp,
  method: string,
  call: { path: string; body?: unknown },
  requestId: string,
  key = admin,
) {
  const res = await t.call(method, call.path, call.body, {
    ...(key === "" ? {} : bearer(key)),
    "x-request-id": requestId,
  });
  const text = await res.text();
  return { status: res.status, body: text === "" ? null : JSON.parse(text) };
}

/** A call with the admin key that must succeed; answers its JSON. */
async function setup(t: TestApp, method: string, path: string, body?: unknown) {
  const res = await send(t, method, { path, body }, crypto.randomUUID());
  assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** A subscription `id` (of `tenant`, if given) with one failed delivery; answers its delivery. */
async function failedDelivery(t: TestApp, id: string, tenant?: string) {
  const tenantField = tenant === undefined ? {} : { tenant_id: tenant };
  await setup(t, "POST", "/subscriptions", { id, url: hook, event_types: [id], ...tenantField });
  const event = await setup(t, "POST", "/events", { type: id, data: {}, ...tenantField });
  const [d] = await t.db.sql<{ id: number }[]>`
    UPDATE deliveries SET status = 'failed' WHERE event_id = ${event.id} RETURNING id`;
  return { eventId: event.id as string, deliveryId: d!.id };
}

/**
 * How to make each state-changing operation succeed: what it needs made
 * first, and the call. An operation added to the API needs a case here
 * (the test below says which).
 */
const cases: Record<string, (t: TestApp) => Promise<Call>> = {
  createEvent: () =>
    Promise.resolve({
      path: "/events",
      body: { id: "evt_a", type: "order.created", data: { card: "4242" } },
      status: 201,
      resource: { type: "event", id: "evt_a" },
    }),
  createEventBatch: () =>
    Promise.resolve({
      path: "/events/batch",
      body: { events: [{ type: "a", data: {} }, { type: "b", data: {} }] },
      status: 200,
      resource: { type: "event", id: null },
    }),
  retryEvent: async (t) => {
    const { eventId } = await failedDelivery(t, "sub_retry_event");
    return {
      path: `/events/${eventId}/retry`,
      status: 202,
      resource: { type: "event", id: eventId },
    };
  },
  createEventType: () =>
    Promise.resolve({
      path: "/event-types",
      body: { name: "order.created", schema: { type: "object" } },
      status: 201,
      resource: { type: "event_type", id: "order.created" },
    }),
  updateEventType: async (t) => {
    await setup(t, "POST", "/event-types", { name: "order.updated" });
    return {
      path: "/event-types/order.updated",
      body: { description: "changed" },
      status: 200,
      resource: { type: "event_type", id: "order.updated" },
    };
  },
  deleteEventType: async (t) => {
    await setup(t, "POST", "/event-types", { name: "order.deleted" });
    return {
      path: "/event-types/order.deleted",
      status: 204,
      resource: { type: "event_type", id: "order.deleted" },
    };
  },
  createSubscription: () =>
    Promise.resolve({
      path: "/subscriptions",
      body: { id: "sub_new", url: hook, event_types: ["*"] },
      status: 201,
      resource: { type: "subscription", id: "sub_new" },
    }),
  updateSubscription: async (t) => {
    await setup(t, "POST", "/subscriptions", { id: "sub_up", url: hook, event_types: ["*"] });
    return {
      path: "/subscriptions/sub_up",
      body: { description: "changed" },
      status: 200,
      resource: { type: "subscription", id: "sub_up" },
    };
  },
  deleteSubscription: async (t) => {
    await setup(t, "POST", "/subscriptions", { id: "sub_del", url: hook, event_types: ["*"] });
    return {
      path: "/subscriptions/sub_del",
      status: 204,
      resource: { type: "subscription", id: "sub_del" },
    };
  },
  rotateSubscriptionSecret: async (t) => {
    await setup(t, "POST", "/subscriptions", { id: "sub_rot", url: hook, event_types: ["*"] });
    return {
      path: "/subscriptions/sub_rot/rotate-secret",
      status: 200,
      resource: { type: "subscription", id: "sub_rot" },
    };
  },
  testSubscription: async (t) => {
    await setup(t, "POST", "/subscriptions", { id: "sub_test", url: hook, event_types: ["*"] });
    return {
      path: "/subscriptions/sub_test/test",
      status: 202,
      resource: { type: "subscription", id: "sub_test" },
    };
  },
  recoverSubscription: async (t) => {
    await failedDelivery(t, "sub_recover");
    return {
      path: "/subscriptions/sub_recover/recover",
      body: { since: "2000-01-01T00:00:00Z" },
      status: 202,
      resource: { type: "subscription", id: "sub_recover" },
    };
  },
  retryDelivery: async (t) => {
    const { deliveryId } = await failedDelivery(t, "sub_retry_delivery");
    return {
      path: `/deliveries/${deliveryId}/retry`,
      status: 202,
      resource: { type: "delivery", id: String(deliveryId) },
    };
  },
  retryDeliveries: async (t) => {
    await failedDelivery(t, "sub_bulk");
    return {
      path: "/deliveries/retry",
      body: { status: "failed" },
      status: 202,
      resource: { type: "delivery", id: null },
    };
  },
  deleteTenant: async (t) => {
    await setup(t, "POST", "/subscriptions", {
      url: hook,
      event_types: ["*"],
      tenant_id: "gone",
    });
    return { path: "/tenants/gone", status: 204, resource: { type: "tenant", id: "gone" } };
  },
  createPortalSession: async (t) => {
    await setup(t, "POST", "/subscriptions", {
      url: hook,
      event_types: ["*"],
      tenant_id: "portal",
    });
    return {
      path: "/tenants/portal/portal-sessions",
      body: { read_only: true },
      status: 201,
      resource: { type: "tenant", id: "portal" },
    };
  },
  createApiKey: () =>
    Promise.resolve({
      path: "/api-keys",
      body: { scope: "publish" },
      status: 201,
      // Its id is the answer's: checked below.
      resource: { type: "api_key", id: null },
    }),
  deleteApiKey: async (t) => {
    const key = await setup(t, "POST", "/api-keys", { scope: "publish" });
    return { path: `/api-keys/${key.id}`, status: 204, resource: { type: "api_key", id: key.id } };
  },
};

/** Every state-changing operation of the OpenAPI document: method, path, operationId. */
async function changingOperations(t: TestApp) {
  const doc = await json(await t.call("GET", "/openapi.json", undefined, bearer(admin)));
  const ops: { method: string; path: string; operationId: string }[] = [];
  for (const [path, item] of Object.entries<Record<string, { operationId: string }>>(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (changing.includes(method) && !readOnlyOperations.has(op.operationId)) {
        ops.push({ method, path, operationId: op.operationId });
      }
    }
  }
  return ops;
}

/** The entries a request left, by its request id. */
async function entriesOf(t: TestApp, requestId: string) {
  return await t.db.sql<
    {
      actor_type: string;
      actor_key_id: string | null;
      action: string;
      resource_type: string;
      resource_id: string | null;
      tenant_id: string | null;
      status: number;
    }[]
  >`SELECT actor_type, actor_key_id, action, resource_type, resource_id, tenant_id, status
    FROM audit_log WHERE request_id = ${requestId}`;
}

Deno.test("each state-changing operation of /openapi.json leaves exactly one entry with its actor and resource", async () => {
  const t = await testApp({ apiKeys: [admin] });
  try {
    const ops = await changingOperations(t);
    assert.ok(ops.length >= 14, `only ${ops.length} operations found`);
    const missing = ops.filter((o) => !(o.operationId in cases)).map((o) => o.operationId);
    assert.deepEqual(missing, [], "operations without a case in audit_log_test.ts");
    for (const op of ops) {
      const call = await cases[op.operationId]!(t);
      const requestId = `req-${op.operationId}`;
      const res = await send(t, op.method.toUpperCase(), call, requestId);
      const what = `${op.method} ${op.path}`;
      assert.equal(res.status, call.status, `${what}: ${JSON.stringify(res.body)}`);
      const entries = await entriesOf(t, requestId);
      assert.equal(entries.length, 1, `${what}: ${entries.length} entries`);
      const [entry] = entries;
      assert.equal(entry!.action, op.operationId, what);
      assert.equal(entry!.status, call.status, what);
      assert.equal(entry!.actor_type, "env_key", what);
      assert.equal(entry!.actor_key_id, null, what);
      assert.equal(entry!.resource_type, call.resource.type, what);
      const id = op.operationId === "createApiKey" ? res.body.id : call.resource.id;
      assert.equal(entry!.resource_id, id, what);
    }
  } finally {
    await t.close();
  }
});

Deno.test("each state-changing operation refused (4xx) leaves exactly one entry with its status", async () => {
  const t = await testApp({ apiKeys: [admin] });
  try {
    for (const op of await changingOperations(t)) {
      // An unknown id, or a body with a field no operation takes: refused either way.
      const path = op.path.replaceAll(/\{\w+\}/g, "no_such_thing");
      const body = op.method === "delete" ? undefined : { no_such_field: 1 };
      const requestId = `refused-${op.operationId}`;
      const res = await send(t, op.method.toUpperCase(), { path, body }, requestId);
      const what = `${op.method} ${path}`;
      assert.ok(res.status >= 400 && res.status < 500, `${what}: ${res.status}`);
      const entries = await entriesOf(t, requestId);
      assert.equal(entries.length, 1, `${what}: ${entries.length} entries`);
      assert.equal(entries[0]!.status, res.status, what);
      assert.equal(entries[0]!.action, op.operationId, what);
    }
    assert.equal(await t.db.sql`SELECT 1 FROM subscriptions`.then((r) => r.length), 0);
  } finally {
    await t.close();
  }
});

Deno.test("a change whose entry cannot be written is rolled back with it", async () => {
  const t = await testApp({ apiKeys: [admin] });
  try {
    // The database refuses these entries, as it would refuse any write of the change.
    await t.db.sql`ALTER TABLE audit_log ADD CONSTRAINT refuse_test
      CHECK (action NOT IN ('createSubscription', 'createEvent', 'createApiKey'))`;
    const sub = await send(t, "POST", {
      path: "/subscriptions",
      body: { id: "sub_x", url: hook, event_types: ["*"] },
    }, "r1");
    assert.ok(sub.status >= 400, `POST /subscriptions: ${sub.status}`);
    const event = await send(t, "POST", {
      path: "/events",
      body: { id: "evt_x", type: "a", data: {} },
    }, "r2");
    assert.ok(event.status >= 400, `POST /events: ${event.status}`);
    const key = await send(t, "POST", { path: "/api-keys", body: { scope: "publish" } }, "r3");
    assert.ok(key.status >= 400, `POST /api-keys: ${key.status}`);
    assert.equal((await t.db.sql`SELECT 1 FROM subscriptions`).length, 0);
    assert.equal((await t.db.sql`SELECT 1 FROM events`).length, 0);
    assert.equal((await t.db.sql`SELECT 1 FROM api_keys`).length, 0);

    await t.db.sql`ALTER TABLE audit_log DROP CONSTRAINT refuse_test`;
    await setup(t, "POST", "/subscriptions", { id: "sub_x", url: hook, event_types: ["*"] });
    await setup(t, "POST", "/events", { id: "evt_x", type: "a", data: {} });
    assert.equal((await t.db.sql`SELECT 1 FROM audit_log`).length, 2);
  } finally {
    await t.close();
  }
});

Deno.test("an entry names a managed key by its id and tenant, an env key by type, an open API as open", async () => {
  const t = await testApp({ apiKeys: [admin] });
  const open = await testApp();
  try {
    const managed = await setup(t, "POST", "/api-keys", { scope: "admin" });
    const tenant = await setup(t, "POST", "/api-keys", { scope: "tenant", tenant_id: "acme" });
    const body = { url: hook, event_types: ["*"] };
    await send(t, "POST", { path: "/subscriptions", body }, "by-managed", managed.key);
    await send(t, "POST", { path: "/subscriptions", body }, "by-tenant", tenant.key);
    await send(t, "POST", { path: "/subscriptions", body }, "by-env");
    await send(open, "POST", { path: "/subscriptions", body }, "by-nobody", "");
    const actor = async (app: TestApp, requestId: string) => {
      const [row] = await app.db.sql`
        SELECT actor_type, actor_key_id, actor_tenant_id, tenant_id FROM audit_log
        WHERE request_id = ${requestId}`;
      return { ...row };
    };
    assert.deepEqual(await actor(t, "by-managed"), {
      actor_type: "api_key",
      actor_key_id: managed.id,
      actor_tenant_id: null,
      tenant_id: null,
    });
    assert.deepEqual(await actor(t, "by-tenant"), {
      actor_type: "api_key",
      actor_key_id: tenant.id,
      actor_tenant_id: "acme",
      tenant_id: "acme",
    });
    assert.deepEqual(await actor(t, "by-env"), {
      actor_type: "env_key",
      actor_key_id: null,
      actor_tenant_id: null,
      tenant_id: null,
    });
    assert.deepEqual(await actor(open, "by-nobody"), {
      actor_type: "open",
      actor_key_id: null,
      actor_tenant_id: null,
      tenant_id: null,
    });
    // Refused before anyone is known: no entry.
    const anonymous = await send(t, "POST", { path: "/subscriptions", body }, "by-no-key", "");
    assert.equal(anonymous.status, 401);
    assert.equal((await entriesOf(t, "by-no-key")).length, 0);
  } finally {
    await t.close();
    await open.close();
  }
});

Deno.test("a tenant key reads its own tenant's entries only; an admin key reads and filters all, newest first", async () => {
  const t = await testApp({ apiKeys: [admin] });
  try {
    const acme = await setup(t, "POST", "/api-keys", { scope: "tenant", tenant_id: "acme" });
    const other = await setup(t, "POST", "/api-keys", { scope: "tenant", tenant_id: "other" });
    const body = { url: hook, event_types: ["*"] };
    await send(t, "POST", { path: "/subscriptions", body: { id: "a1", ...body } }, "a1", acme.key);
    await send(t, "POST", { path: "/subscriptions", body: { id: "o1", ...body } }, "o1", other.key);
    // An admin's change of acme's resource is acme's too.
    await setup(t, "POST", "/subscriptions", { id: "a2", tenant_id: "acme", ...body });
    await send(t, "DELETE", { path: "/subscriptions/o1" }, "o1-by-acme", acme.key);
    // So is an admin's change of a subscription it names by id alone.
    await setup(t, "POST", "/subscriptions/a2/rotate-secret");

    const read = async (query: string, key = admin) => {
      const res = await t.call("GET", `/audit-log${query}`, undefined, bearer(key));
      assert.equal(res.status, 200, query);
      return await json(res);
    };
    const own = await read("", acme.key);
    // Its key, made by an admin, is acme's too.
    assert.deepEqual(
      own.data.map((e: { resource: { id: string } }) => e.resource.id),
      ["a2", "o1", "a2", "a1", acme.id],
    );
    assert.ok(own.data.every((e: { tenant_id: string }) => e.tenant_id === "acme"));
    assert.deepEqual(own.data[3].actor, { type: "api_key", key_id: acme.id, tenant_id: "acme" });
    assert.equal(own.data[1].status, 404);
    assert.equal(own.data[1].action, "deleteSubscription");
    const foreign = await t.call("GET", "/audit-log?tenant_id=other", undefined, bearer(acme.key));
    assert.equal(foreign.status, 404);
    await foreign.body?.cancel();

    const all = await read("?limit=2");
    assert.equal(all.data.length, 2);
    assert.ok(all.data[0].id > all.data[1].id);
    const rest = await read(`?limit=100&cursor=${all.next_cursor}`);
    assert.equal(rest.next_cursor, null);
    assert.equal(all.data.length + rest.data.length, 7);
    assert.deepEqual(
      (await read(`?actor_key_id=${other.id}`)).data.map((e: { request_id: string }) =>
        e.request_id
      ),
      ["o1"],
    );
    assert.equal((await read("?action=createApiKey")).data.length, 2);
    assert.equal((await read("?resource_id=a2")).data[0].request_id.length > 0, true);
    assert.equal((await read("?tenant_id=other")).data.length, 2);
    const entry = (await read("?resource_id=a2")).data.at(-1);
    assert.deepEqual(Object.keys(entry).sort(), [
      "action",
      "actor",
      "at",
      "id",
      "request_id",
      "resource",
      "status",
      "tenant_id",
    ]);
    assert.deepEqual(entry.actor, { type: "env_key" });
    assert.deepEqual(entry.resource, { type: "subscription", id: "a2" });
    assert.equal(entry.status, 201);
    assert.equal((await read("?until=2000-01-01T00:00:00Z")).data.length, 0);
    assert.equal((await read(`?since=${entry.at}&resource_id=a2`)).data.length, 2);
    const bad = await t.call("GET", "/audit-log?since=yesterday", undefined, bearer(admin));
    assert.equal(bad.status, 400);
    await bad.body?.cancel();
  } finally {
    await t.close();
  }
});

Deno.test("no secret, key or payload is in an entry", async () => {
  const t = await testApp({ apiKeys: [admin] });
  try {
    const secret = "audit-secret-1234567890";
    await setup(t, "POST", "/subscriptions", { id: "s", url: hook, event_types: ["*"], secret });
    const rotated = await setup(t, "POST", "/subscriptions/s/rotate-secret");
    const key = await setup(t, "POST", "/api-keys", { scope: "publish" });
    await send(
      t,
      "POST",
      {
        path: "/events",
        body: { type: "a", data: { card: "4242-payload" } },
      },
      "with-key",
      key.key,
    );
    const rows = JSON.stringify(await t.db.sql`SELECT * FROM audit_log`);
    assert.equal((await t.db.sql`SELECT 1 FROM audit_log`).length, 4);
    for (const needle of [secret, rotated.secret, key.key, admin, "4242-payload"]) {
      assert.ok(!rows.includes(needle), `${needle} is in the audit log`);
    }
  } finally {
    await t.close();
  }
});

Deno.test("an entry written with its change takes the answer's status when the answer turned out another", async () => {
  const t = await testApp({ apiKeys: [admin] });
  try {
    const entry = {
      actor: { type: "console" as const },
      action: "createSubscription",
      resource: { type: "subscription", id: null },
      tenantId: null,
      status: 201,
      requestId: "late-failure",
    };
    await withAudit(entry, () =>
      t.db.engine.createSubscription({
        id: "s",
        tenant_id: "acme",
        url: hook,
        event_types: ["*"],
        description: null,
        secret: "a-secret",
        active: true,
        max_attempts: null,
        rate_limit: null,
        max_in_flight: null,
        metadata: {},
      }));
    const written = async () => ({ ...(await entriesOf(t, "late-failure"))[0] });
    assert.deepEqual(
      [(await written()).status, (await written()).resource_id, (await written()).tenant_id],
      [201, "s", "acme"],
    );
    await t.db.engine.settleAudit(entry, 500);
    assert.equal((await entriesOf(t, "late-failure")).length, 1);
    assert.equal((await written()).status, 500);
    assert.equal((await written()).actor_type, "console");
  } finally {
    await t.close();
  }
});

Deno.test("a POST that changes nothing (POST /filters/test) leaves no entry", async () => {
  const t = await testApp({ apiKeys: [admin] });
  try {
    const res = await t.call("POST", "/filters/test", {
      filter: "$.data.n > 1",
      event: { type: "a", data: { n: 2 } },
    }, bearer(admin));
    assert.equal(res.status, 200);
    assert.deepEqual(await json(res), { matches: true });
    const [row] = await t.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM audit_log`;
    assert.equal(row?.n, 0);
  } finally {
    await t.close();
  }
});
