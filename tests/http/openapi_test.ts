import assert from "node:assert/strict";
import { WebhookEvent } from "../../src/http/webhook_docs.ts";
import { json, testApp } from "../helpers/app.ts";
import { testDatabase } from "../helpers/db.ts";
import { startReceiver } from "../helpers/receiver.ts";
import { startTestService } from "../helpers/service.ts";
import { bearer } from "../helpers/http.ts";

// deno-lint-ignore no-explicit-any -- the document is arbitrary JSON
type Doc = any;

const methods = ["get", "post", "put", "patch", "delete"];
const key = "openapi-test-key";
const keyed = { apiKeys: [key], metricsPublic: false, maxPayloadBytes: 1024 };

async function documentOf(config: Parameters<typeof testApp>[0] = {}): Promise<Doc> {
  const t = await testApp(config);
  try {
    return await json(await t.call("GET", "/openapi.json"));
  } finally {
    await t.close();
  }
}

function operations(doc: Doc) {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item as Doc).filter(([m]) => methods.includes(m)).map(([method, op]) => ({
      method,
      path,
      op: op as Doc,
      statuses: Object.keys((op as Doc).responses),
    }))
  );
}

function headerNames(response: Doc): string[] {
  return Object.keys(response.headers ?? {});
}

Deno.test("every operation and the webhook have a unique operationId", async () => {
  const doc = await documentOf(keyed);
  const ids = [
    ...operations(doc).map((o) => o.op.operationId),
    doc.webhooks.event.post.operationId,
  ];
  assert.equal(ids.length, 36);
  for (const id of ids) assert.match(id ?? "", /^[a-z][A-Za-z]+$/);
  assert.equal(new Set(ids).size, ids.length);
});

Deno.test("no GET lists 413 or 415, and only operations that take a body do", async () => {
  for (const config of [{}, keyed]) {
    for (const { method, path, op, statuses } of operations(await documentOf(config))) {
      const takesBody = op.requestBody !== undefined;
      assert.equal(method !== "get" || !takesBody, true, `${method} ${path}`);
      assert.equal(statuses.includes("413"), takesBody, `${method} ${path}: 413`);
      assert.equal(statuses.includes("415"), takesBody, `${method} ${path}: 415`);
    }
  }
});

Deno.test("the document lists 401, 404, 413 and 415 exactly where the API answers them", async () => {
  const t = await testApp(keyed);
  try {
    const doc = await json(await t.call("GET", "/openapi.json"));
    const authed = bearer(key);
    const tenantKey = (await json(
      await t.call("POST", "/api-keys", { scope: "tenant", tenant_id: "mine" }, authed),
    )).key;
    for (const { method, path, op, statuses } of operations(doc)) {
      const what = `${method.toUpperCase()} ${path}`;
      const url = path.replace("{id}", "nope");
      const answers = async (body?: string, headers: HeadersInit = {}, target = url) => {
        const res = await t.call(method.toUpperCase(), target, body, { ...authed, ...headers });
        await res.body?.cancel();
        return res.status;
      };
      const unauthenticated = await t.call(method.toUpperCase(), url);
      await unauthenticated.body?.cancel();
      assert.equal(unauthenticated.status === 401, statuses.includes("401"), `${what}: 401`);
      const example = op.requestBody?.content["application/json"].example;
      const asJson = { "content-type": "application/json" };
      const missing = await answers(
        example === undefined ? undefined : JSON.stringify(example),
        asJson,
      );
      // A tenant key naming another tenant is answered as for a tenant that does not exist.
      const otherTenant = await answers(
        example === undefined ? undefined : JSON.stringify({ ...example, tenant_id: "theirs" }),
        { ...asJson, ...bearer(tenantKey) },
        `${url}?tenant_id=theirs`,
      );
      const notFound = missing === 404 || otherTenant === 404;
      assert.equal(notFound, statuses.includes("404"), `${what}: 404 (${missing}, ${otherTenant})`);
      if (method === "get") continue;
      const notJson = await answers("x", { "content-type": "text/plain" });
      assert.equal(notJson === 415, statuses.includes("415"), `${what}: 415 (${notJson})`);
      const large = await answers(JSON.stringify({ pad: "x".repeat(2048) }));
      assert.equal(large === 413, statuses.includes("413"), `${what}: 413 (${large})`);
    }
  } finally {
    await t.close();
  }
});

Deno.test("409 is listed only where an id can be taken already or a state refuses the action, 503 wherever the database is used", async () => {
  const ops = operations(await documentOf(keyed));
  const conflicts = ops.filter((o) => o.statuses.includes("409")).map((o) => o.op.operationId);
  assert.deepEqual(conflicts.sort(), [
    "createEvent",
    "createEventType",
    "createSubscription",
    "recoverSubscription",
    "retryDelivery",
    "testSubscription",
  ]);
  const unavailable = ops.filter((o) => o.statuses.includes("503")).map((o) => o.op.operationId);
  const withoutDatabase = ["getHealth", "getMetrics"];
  assert.deepEqual(
    unavailable.sort(),
    ops.map((o) => o.op.operationId).filter((id) => !withoutDatabase.includes(id)).sort(),
  );
});

Deno.test("answers declare X-Request-Id, Idempotent-Replayed, Retry-After and WWW-Authenticate", async () => {
  const doc = await documentOf(keyed);
  for (const name of ["X-Request-Id", "Idempotent-Replayed", "Retry-After", "WWW-Authenticate"]) {
    assert.equal(typeof doc.components.headers[name].schema.type, "string", name);
  }
  for (const { method, path, op, statuses } of operations(doc)) {
    for (const status of statuses) {
      const names = headerNames(op.responses[status]);
      const what = `${method} ${path} ${status}`;
      assert.ok(names.includes("X-Request-Id"), what);
      const retryAfter = (status === "503" && path !== "/readyz") || status === "429";
      assert.equal(names.includes("Retry-After"), retryAfter, what);
      assert.equal(names.includes("WWW-Authenticate"), status === "401", what);
    }
  }
  assert.deepEqual(headerNames(doc.paths["/events"].post.responses["200"]), [
    "X-Request-Id",
    "Idempotent-Replayed",
  ]);
});

Deno.test("the probes and /metrics are documented, open unless METRICS_PUBLIC=false", async () => {
  const open = await documentOf({ apiKeys: [key] });
  const closed = await documentOf(keyed);
  for (const path of ["/healthz", "/readyz"]) {
    assert.deepEqual(closed.paths[path].get.security, [], path);
  }
  assert.deepEqual(open.paths["/metrics"].get.security, []);
  assert.deepEqual(closed.paths["/metrics"].get.security, [{ bearer: [] }]);
  assert.ok(open.paths["/metrics"].get.responses["200"].content["text/plain"]);
  assert.deepEqual(Object.keys(open.paths["/readyz"].get.responses), ["200", "503"]);
  assert.deepEqual(closed.paths["/events"].get.security, [{ bearer: [] }]);
  assert.deepEqual((await documentOf()).paths["/events"].get.security, []);
});

Deno.test("every JSON body and answer has an example, and the document names its server", async () => {
  const doc = await documentOf(keyed);
  assert.deepEqual(doc.servers.map((s: { url: string }) => s.url), ["/"]);
  const bodies = [
    ...operations(doc).map(({ method, path, op }) => ({ what: `${method} ${path}`, op })),
    { what: "webhook", op: doc.webhooks.event.post },
  ];
  for (const { what, op } of bodies) {
    const media = [
      op.requestBody?.content?.["application/json"],
      ...Object.values(op.responses).map((r) => (r as Doc).content?.["application/json"]),
    ].filter(Boolean);
    for (const m of media) assert.notEqual(m.example, undefined, what);
  }
});

Deno.test("request bodies are in their input form: a field with a default is optional", async () => {
  const doc = await documentOf();
  const schema = doc.paths["/subscriptions"].post.requestBody.content["application/json"].schema;
  assert.deepEqual(schema.required, ["url"]);
  assert.deepEqual(schema.properties.event_types.default, ["*"]);
  assert.equal(schema.properties.active.default, true);
});

Deno.test("the webhook documents every header and the body a delivery carries", async () => {
  const db = await testDatabase();
  const receiver = startReceiver();
  const svc = await startTestService(db);
  try {
    const doc = await svc.api("GET", "/openapi.json");
    await svc.api("POST", "/subscriptions", { url: receiver.url });
    await svc.api("POST", "/events", { type: "order.created", data: { order_id: 42 } });
    const [got] = await receiver.waitFor(1);
    const hook = doc.webhooks.event.post;
    const documented = new Map<string, boolean>(
      hook.parameters.map((p: Doc) => [p.name.toLowerCase(), p.required]),
    );
    // What HTTP itself or fetch adds; the body's media type is the requestBody's.
    const transport = ["host", "content-length", "accept", "accept-encoding", "accept-language"];
    const sent = [...got!.headers.keys()].filter((h) => !transport.includes(h));
    assert.deepEqual(sent.filter((h) => h !== "content-type" && !documented.has(h)), []);
    const missing = [...documented].filter(([h, required]) => required && !sent.includes(h));
    assert.deepEqual(missing, []);
    assert.equal(got!.headers.get("content-type"), "application/json");
    assert.deepEqual(Object.keys(hook.requestBody.content), ["application/json"]);
    assert.equal(
      hook.requestBody.content["application/json"].schema.$ref,
      "#/components/schemas/WebhookEvent",
    );
    WebhookEvent.strict().parse(JSON.parse(got!.body));
    WebhookEvent.strict().parse(hook.requestBody.content["application/json"].example);
  } finally {
    await svc.stop();
    await receiver.close();
    await db.close();
  }
});
