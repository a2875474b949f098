import assert from "node:assert/strict";
import { assertInvalidField, buildApp, json, testApp } from "../helpers/app.ts";
import { countRows, testDatabase } from "../helpers/db.ts";
import { bearer } from "../helpers/http.ts";
import { startReceiver } from "../helpers/receiver.ts";
import { startTestService } from "../helpers/service.ts";

const admin = "admin-key-0123456789";

/** A schema for `order.created`: an integer `order_id`, an `amount` and a `currency`. */
const orderSchema = {
  type: "object",
  required: ["order_id", "amount", "currency"],
  properties: {
    order_id: { type: "integer" },
    amount: { type: "number", minimum: 0 },
    currency: { enum: ["EUR", "USD"] },
    lines: { type: "array", items: { $ref: "#/$defs/line" } },
  },
  $defs: { line: { type: "object", properties: { sku: { type: "string" } } } },
};
const orderExample = { order_id: 42, amount: 9.5, currency: "EUR" };
const orderType = {
  name: "order.created",
  description: "An order was placed",
  schema: orderSchema,
  example: orderExample,
};

Deno.test("POST /event-types adds a type that GET, PATCH and DELETE /event-types/:name then manage", async () => {
  const t = await testApp();
  try {
    const res = await t.call("POST", "/event-types", orderType);
    assert.equal(res.status, 201);
    const created = await json(res);
    assert.deepEqual(Object.keys(created).sort(), [
      "created_at",
      "deprecated",
      "description",
      "example",
      "name",
      "schema",
      "updated_at",
    ]);
    assert.equal(created.deprecated, false);
    // The schema comes back as written, its keys in their order.
    assert.equal(JSON.stringify(created.schema), JSON.stringify(orderSchema));
    assert.deepEqual(created.example, orderExample);

    const bare = await json(await t.call("POST", "/event-types", { name: "order.paid" }));
    assert.equal(bare.description, null);
    assert.equal(bare.schema, null);
    assert.equal(bare.example, null);

    const got = await json(await t.call("GET", "/event-types/order.created"));
    assert.deepEqual(got, created);

    const page = await json(await t.call("GET", "/event-types?limit=1"));
    assert.deepEqual(page.data.map((e: { name: string }) => e.name), ["order.created"]);
    assert.equal(typeof page.next_cursor, "string");
    const next = await json(await t.call("GET", `/event-types?limit=1&cursor=${page.next_cursor}`));
    assert.deepEqual(next.data.map((e: { name: string }) => e.name), ["order.paid"]);
    assert.equal(next.next_cursor, null);

    const patched = await json(
      await t.call("PATCH", "/event-types/order.created", { deprecated: true, description: null }),
    );
    assert.equal(patched.deprecated, true);
    assert.equal(patched.description, null);
    assert.deepEqual(patched.example, orderExample);
    assert.ok(patched.updated_at > created.updated_at);

    const removed = await t.call("DELETE", "/event-types/order.created");
    assert.equal(removed.status, 204);
    await removed.body?.cancel();
    const gone = await t.call("GET", "/event-types/order.created");
    assert.equal(gone.status, 404);
    assert.equal((await json(gone)).error.message, 'Event type "order.created" does not exist');
    for (const method of ["PATCH", "DELETE"]) {
      const res = await t.call(
        method,
        "/event-types/order.created",
        method === "PATCH" ? {} : undefined,
      );
      assert.equal(res.status, 404, method);
      await res.body?.cancel();
    }
  } finally {
    await t.close();
  }
});

Deno.test("POST and PATCH /event-types refuse a bad name, schema or example with 400 naming it, and a taken name with 409", async () => {
  const t = await testApp();
  try {
    for (const name of ["order.*", "*", "order created", ""]) {
      await assertInvalidField(await t.call("POST", "/event-types", { name }), "name", name);
    }
    for (const schema of [{ type: 5 }, { properties: [] }, { $ref: "https://example.com/s" }, 3]) {
      const res = await t.call("POST", "/event-types", { name: "a.b", schema });
      await assertInvalidField(res, "schema", JSON.stringify(schema));
    }
    const bad = await t.call("POST", "/event-types", {
      ...orderType,
      example: { order_id: "42", amount: 1 },
    });
    assert.equal(bad.status, 400);
    const { error } = await json(bad);
    assert.equal(
      error.message,
      `Invalid field "example": does not match the schema: /currency must have required property 'currency'; /order_id must be integer`,
    );
    await assertInvalidField(
      await t.call("POST", "/event-types", { name: "a.b", example: [1] }),
      "example",
    );
    assert.equal(await countRows(t.db.sql, "event_types"), 0);

    assert.equal((await t.call("POST", "/event-types", orderType)).status, 201);
    const taken = await t.call("POST", "/event-types", { name: "order.created" });
    assert.equal(taken.status, 409);
    assert.equal(
      (await json(taken)).error.message,
      'Event type "order.created" already exists: change it with PATCH',
    );
    // A new schema the stored example breaks is refused, naming the example.
    const stricter = { ...orderSchema, required: [...orderSchema.required, "customer"] };
    await assertInvalidField(
      await t.call("PATCH", "/event-types/order.created", { schema: stricter }),
      "example",
    );
    await assertInvalidField(
      await t.call("PATCH", "/event-types/order.created", { example: { order_id: 1 } }),
      "example",
    );
    await assertInvalidField(
      await t.call("PATCH", "/event-types/order.created", { schema: { type: "nope" } }),
      "schema",
    );
    const kept = await json(await t.call("GET", "/event-types/order.created"));
    assert.deepEqual(kept.schema, orderSchema);
    // Both at once is fine, and so is dropping the schema.
    const both = await t.call("PATCH", "/event-types/order.created", {
      schema: stricter,
      example: { ...orderExample, customer: "c1" },
    });
    assert.equal(both.status, 200);
    await both.body?.cancel();
    const loose = await json(await t.call("PATCH", "/event-types/order.created", { schema: null }));
    assert.equal(loose.schema, null);
  } finally {
    await t.close();
  }
});

Deno.test("POST /events refuses data its type's schema refuses, listing each violation with its path, and stores nothing", async () => {
  const t = await testApp();
  try {
    assert.equal((await t.call("POST", "/event-types", orderType)).status, 201);
    const res = await t.call("POST", "/events", {
      type: "order.created",
      data: { order_id: 1.5, amount: -1, lines: [{ sku: "a" }, { sku: 7 }] },
    });
    assert.equal(res.status, 400);
    const { error } = await json(res);
    assert.equal(error.code, "validation_failed");
    assert.equal(
      error.message,
      "Invalid field \"data.currency\": must have required property 'currency' (and 3 more)",
    );
    assert.deepEqual(
      error.details.map((d: { field: string; path: string }) => [d.field, d.path]).sort(),
      [
        ["data.amount", "/amount"],
        ["data.currency", "/currency"],
        ["data.lines[1].sku", "/lines/1/sku"],
        ["data.order_id", "/order_id"],
      ],
    );
    assert.equal(
      error.details.find((d: { path: string }) => d.path === "/amount").message,
      "must be >= 0",
    );
    assert.equal(await countRows(t.db.sql, "events"), 0);

    const ok = await t.call("POST", "/events", { type: "order.created", data: orderExample });
    assert.equal(ok.status, 201);
    await ok.body?.cancel();
    // A type outside the catalog is accepted unvalidated (EVENT_TYPES=open).
    const other = await t.call("POST", "/events", { type: "order.lost", data: { x: 1 } });
    assert.equal(other.status, 201);
    await other.body?.cancel();
    assert.equal(await countRows(t.db.sql, "events"), 2);
  } finally {
    await t.close();
  }
});

Deno.test("POST /events/batch refuses each item whose data breaks its schema with the same 400, storing none of them", async () => {
  const t = await testApp();
  try {
    assert.equal((await t.call("POST", "/event-types", orderType)).status, 201);
    const res = await t.call("POST", "/events/batch", {
      events: [
        { id: "evt_bad", type: "order.created", data: { ...orderExample, amount: "9" } },
        { id: "evt_good", type: "order.created", data: orderExample },
        { type: "order.created", data: {} },
      ],
    });
    assert.equal(res.status, 200);
    const { results } = await json(res);
    assert.deepEqual(results.map((r: { status: number }) => r.status), [400, 201, 400]);
    assert.equal(results[0].id, "evt_bad");
    assert.deepEqual(results[0].error.details, [
      { field: "data.amount", message: "must be number", path: "/amount" },
    ]);
    assert.equal(results[2].id, null);
    assert.equal(results[2].error.details.length, 3);
    assert.deepEqual(
      (await t.db.sql`SELECT id FROM events`).map((r) => r.id),
      ["evt_good"],
    );
  } finally {
    await t.close();
  }
});

Deno.test("with EVENT_TYPES=strict a type outside the catalog is refused naming type, and operational events still go", async () => {
  const t = await testApp({ eventTypes: "strict" });
  try {
    await assertInvalidField(
      await t.call("POST", "/events", { type: "order.lost", data: {} }),
      "type",
    );
    const batch = await json(
      await t.call("POST", "/events/batch", { events: [{ type: "order.lost", data: {} }] }),
    );
    assert.equal(batch.results[0].status, 400);
    assert.equal(batch.results[0].error.details[0].field, "type");
    assert.equal(await countRows(t.db.sql, "events"), 0);

    assert.equal((await t.call("POST", "/event-types", { name: "order.lost" })).status, 201);
    const known = await t.call("POST", "/events", { type: "order.lost", data: {} });
    assert.equal(known.status, 201);
    await known.body?.cancel();

    // Dispatch's own events are not the catalog's to refuse.
    const sub = await json(
      await t.call("POST", "/subscriptions", { url: "http://127.0.0.1:9/hook" }),
    );
    const test = await t.call("POST", `/subscriptions/${sub.id}/test`);
    assert.equal(test.status, 202);
    await test.body?.cancel();
    assert.equal(await countRows(t.db.sql, "events", "type = 'dispatch.test'"), 1);
  } finally {
    await t.close();
  }
});

Deno.test("a catalog change made through one app is seen by another on the same database once a second has passed", async () => {
  const db = await testDatabase();
  let now = Date.now();
  try {
    const a = buildApp(db);
    const b = buildApp(db, {}, { now: () => now });
    const send = (app: typeof a) =>
      app.request("/events", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ type: "order.created", data: { order_id: "x" } }),
      });
    // Both have read the catalog (empty) before the change.
    assert.equal((await send(a)).status, 201);
    assert.equal((await send(b)).status, 201);
    const added = await a.request("/event-types", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(orderType),
    });
    assert.equal(added.status, 201);
    // The app that made the change sees it at once.
    assert.equal((await send(a)).status, 400);
    // The other one still uses the catalog it read, until that is a second old.
    now += 999;
    assert.equal((await send(b)).status, 201);
    now += 1;
    assert.equal((await send(b)).status, 400);
  } finally {
    await db.close();
  }
});

Deno.test("GET /openapi.json lists every catalog type under webhooks with its schema and example", async () => {
  const t = await testApp();
  try {
    assert.equal((await t.call("POST", "/event-types", orderType)).status, 201);
    assert.equal(
      (await t.call("POST", "/event-types", { name: "order.old", deprecated: true })).status,
      201,
    );
    const doc = await json(await t.call("GET", "/openapi.json"));
    assert.ok(doc.webhooks.event, "the generic webhook stays");
    const hook = doc.webhooks["order.created"].post;
    assert.equal(hook.summary, "An order was placed");
    assert.equal(hook.operationId, "receive:order.created");
    assert.deepEqual(hook.responses, doc.webhooks.event.post.responses);
    const body = hook.requestBody.content["application/json"];
    assert.deepEqual(body.schema.allOf, [{ $ref: "#/components/schemas/WebhookEvent" }]);
    assert.deepEqual(body.schema.properties.type, { const: "order.created" });
    const data = body.schema.properties.data;
    assert.deepEqual(data.required, orderSchema.required);
    // The schema's own references point to where it is in the document.
    assert.equal(
      data.properties.lines.items.$ref,
      "#/webhooks/order.created/post/requestBody/content/application~1json/schema/properties/data/$defs/line",
    );
    assert.deepEqual(body.example.data, orderExample);
    assert.equal(body.example.type, "order.created");
    const old = doc.webhooks["order.old"].post;
    assert.equal(old.deprecated, true);
    assert.equal(old.requestBody.content["application/json"].example, undefined);
    assert.equal(old.requestBody.content["application/json"].schema.properties.data, undefined);

    const removed = await t.call("DELETE", "/event-types/order.old");
    await removed.body?.cancel();
    const after = await json(await t.call("GET", "/openapi.json"));
    assert.deepEqual(Object.keys(after.webhooks).sort(), ["event", "order.created"]);
  } finally {
    await t.close();
  }
});

Deno.test("a tenant key and a publish key can read the catalog but not change it", async () => {
  const t = await testApp({ apiKeys: [admin] });
  try {
    assert.equal((await t.call("POST", "/event-types", orderType, bearer(admin))).status, 201);
    // Both made before either is used: a new key is seen within a second, not at once.
    const keys = [];
    for (const body of [{ scope: "tenant", tenant_id: "acme" }, { scope: "publish" }]) {
      keys.push([
        body.scope,
        (await json(await t.call("POST", "/api-keys", body, bearer(admin)))).key,
      ]);
    }
    for (const [scope, key] of keys) {
      const list = await json(await t.call("GET", "/event-types", undefined, bearer(key)));
      assert.deepEqual(list.data.map((e: { name: string }) => e.name), ["order.created"], scope);
      const one = await t.call("GET", "/event-types/order.created", undefined, bearer(key));
      assert.equal(one.status, 200, scope);
      await one.body?.cancel();
      for (
        const [method, path, body] of [
          ["POST", "/event-types", { name: "x.y" }],
          ["PATCH", "/event-types/order.created", { deprecated: true }],
          ["DELETE", "/event-types/order.created", undefined],
        ] as const
      ) {
        const res = await t.call(method, path, body, bearer(key));
        assert.equal(res.status, 403, `${scope} ${method}`);
        await res.body?.cancel();
      }
    }
    const kept = await json(
      await t.call("GET", "/event-types/order.created", undefined, bearer(admin)),
    );
    assert.equal(kept.deprecated, false);
  } finally {
    await t.close();
  }
});

Deno.test("POST /subscriptions/:id/test with an event_type sends that type's example to the endpoint", async () => {
  const db = await testDatabase();
  const receiver = startReceiver();
  const svc = await startTestService(db);
  try {
    await svc.api("POST", "/event-types", orderType);
    await svc.api("POST", "/event-types", { name: "order.paid" });
    const sub = await svc.api("POST", "/subscriptions", { url: receiver.url, event_types: ["x"] });
    const res = await fetch(`${svc.url}/subscriptions/${sub.id}/test`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ event_type: "order.created" }),
    });
    assert.equal(res.status, 202);
    const { event_id } = await res.json();
    const [got] = await receiver.waitFor(1);
    assert.equal(got!.headers.get("webhook-id"), event_id);
    assert.equal(got!.headers.get("x-dispatch-event-type"), "order.created");
    const sent = JSON.parse(got!.body);
    assert.equal(sent.type, "order.created");
    assert.deepEqual(sent.data, orderExample);

    for (
      const [event_type, message] of [
        ["order.lost", 'Invalid field "event_type": "order.lost" is not in the event-type catalog'],
        ["order.paid", 'Invalid field "event_type": "order.paid" has no example'],
      ]
    ) {
      const bad = await fetch(`${svc.url}/subscriptions/${sub.id}/test`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ event_type }),
      });
      assert.equal(bad.status, 400, event_type);
      assert.equal((await bad.json()).error.message, message);
    }
  } finally {
    await svc.stop();
    await receiver.close();
    await db.close();
  }
});

Deno.test("a schema written in SQL that does not compile refuses the events of its type only, naming type", async () => {
  const t = await testApp();
  try {
    await t.db.sql`INSERT INTO event_types (name, schema) VALUES ('order.broken', '{"type": 5}')`;
    const res = await t.call("POST", "/events", { type: "order.broken", data: {} });
    await assertInvalidField(res, "type");
    const other = await t.call("POST", "/events", { type: "order.created", data: {} });
    assert.equal(other.status, 201);
    await other.body?.cancel();
  } finally {
    await t.close();
  }
});

Deno.test("dispatch_known_type says whether a type is in the catalog, for ingest in SQL", async () => {
  const db = await testDatabase();
  try {
    await db.sql`INSERT INTO event_types (name) VALUES ('order.created')`;
    const [row] = await db.sql`
      SELECT dispatch_known_type('order.created') AS known, dispatch_known_type('order') AS other`;
    assert.deepEqual({ ...row }, { known: true, other: false });
  } finally {
    await db.close();
  }
});
