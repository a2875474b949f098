import assert from "node:assert/strict";
import { assertInvalidField, json, testApp } from "../helpers/app.ts";
import { countRows } from "../helpers/db.ts";
import { apiClient } from "../helpers/http.ts";

const hook = "http://127.0.0.1:9/hook";

/** Calls that must succeed; answers the parsed body. */
const api = (t: Awaited<ReturnType<typeof testApp>>) => apiClient(t.call);

Deno.test("an event with a tenant reaches only that tenant's subscriptions, one without a tenant only those without one", async () => {
  const t = await testApp();
  const call = api(t);
  try {
    await call("POST", "/subscriptions", { id: "a1", tenant_id: "acme", url: hook });
    await call("POST", "/subscriptions", { id: "a2", tenant_id: "acme", url: hook });
    await call("POST", "/subscriptions", { id: "b1", tenant_id: "globex", url: hook });
    await call("POST", "/subscriptions", { id: "n1", url: hook });
    const created = await call("POST", "/events", {
      id: "e_acme",
      tenant_id: "acme",
      type: "a",
      data: {},
    });
    assert.equal(created.deliveries.total, 2);
    await call("POST", "/events", { id: "e_none", type: "a", data: {} });
    const ids = async (event: string) =>
      (await call("GET", `/events/${event}/deliveries`)).data.map((
        d: { subscription_id: string },
      ) => d.subscription_id).sort();
    assert.deepEqual(await ids("e_acme"), ["a1", "a2"]);
    assert.deepEqual(await ids("e_none"), ["n1"]);
  } finally {
    await t.close();
  }
});

Deno.test("tenant_id is in every representation of events and subscriptions, null when there is none", async () => {
  const t = await testApp();
  const call = api(t);
  try {
    const withTenant = { tenant_id: "acme", url: hook };
    const subs = [
      await call("POST", "/subscriptions", { id: "s1", ...withTenant }),
      await call("POST", "/subscriptions", { id: "s2", url: hook }),
    ];
    assert.deepEqual(subs.map((s) => s.tenant_id), ["acme", null]);
    assert.equal((await call("GET", "/subscriptions/s1")).tenant_id, "acme");
    assert.equal((await call("GET", "/subscriptions/s2")).tenant_id, null);
    assert.equal((await call("PATCH", "/subscriptions/s1", { active: false })).tenant_id, "acme");
    assert.deepEqual(
      (await call("GET", "/subscriptions")).data.map((s: { tenant_id: unknown }) => s.tenant_id),
      ["acme", null],
    );

    const e = { type: "a", data: {} };
    assert.equal(
      (await call("POST", "/events", { id: "e1", tenant_id: "acme", ...e })).tenant_id,
      "acme",
    );
    assert.equal((await call("POST", "/events", { id: "e2", ...e })).tenant_id, null);
    const replay = await t.call("POST", "/events", { id: "e1", tenant_id: "acme", ...e });
    assert.equal(replay.status, 200);
    assert.equal((await json(replay)).tenant_id, "acme");
    assert.equal((await call("GET", "/events/e1")).tenant_id, "acme");
    assert.deepEqual(
      (await call("GET", "/events")).data.map((x: { tenant_id: unknown }) => x.tenant_id),
      [null, "acme"],
    );
  } finally {
    await t.close();
  }
});

Deno.test("idempotency compares tenant_id: the same id for another tenant, or none, conflicts", async () => {
  const t = await testApp();
  try {
    const e = { id: "evt_t", type: "a", data: { n: 1 } };
    assert.equal((await t.call("POST", "/events", { ...e, tenant_id: "acme" })).status, 201);
    assert.equal((await t.call("POST", "/events", { ...e, tenant_id: "acme" })).status, 200);
    assert.equal((await t.call("POST", "/events", { ...e, tenant_id: "globex" })).status, 409);
    assert.equal((await t.call("POST", "/events", e)).status, 409);
    const batch = await json(
      await t.call("POST", "/events/batch", {
        events: [
          { ...e, tenant_id: "acme" },
          { ...e, tenant_id: "globex" },
          { id: "evt_u", type: "a", data: {} },
          { id: "evt_u", type: "a", data: {}, tenant_id: "acme" },
        ],
      }),
    );
    assert.deepEqual(batch.results.map((r: { status: number }) => r.status), [200, 409, 201, 409]);
  } finally {
    await t.close();
  }
});

Deno.test("POST /events/batch takes a tenant_id per item and fans each out within its tenant", async () => {
  const t = await testApp();
  const call = api(t);
  try {
    await call("POST", "/subscriptions", { id: "a", tenant_id: "acme", url: hook });
    await call("POST", "/subscriptions", { id: "g", tenant_id: "globex", url: hook });
    const { results } = await call("POST", "/events/batch", {
      events: [
        { id: "b_acme", tenant_id: "acme", type: "x", data: {} },
        { id: "b_globex", tenant_id: "globex", type: "x", data: {} },
        { id: "b_none", type: "x", data: {} },
        { id: "b_bad", tenant_id: "not a tenant", type: "x", data: {} },
      ],
    });
    assert.deepEqual(results.map((r: { status: number }) => r.status), [201, 201, 201, 400]);
    assert.match(results[3].error.message, /^Invalid field "tenant_id": /);
    for (
      const [event, tenant, subs] of [["b_acme", "acme", 1], ["b_globex", "globex", 1], [
        "b_none",
        null,
        0,
      ]] as const
    ) {
      const got = await call("GET", `/events/${event}`);
      assert.equal(got.tenant_id, tenant, event);
      assert.equal(got.deliveries.total, subs, event);
    }
    assert.deepEqual(
      (await call("GET", "/events/b_acme/deliveries")).data.map((d: { subscription_id: string }) =>
        d.subscription_id
      ),
      ["a"],
    );
  } finally {
    await t.close();
  }
});

Deno.test("a subscription's tenant_id cannot change: PATCH answers 400 naming tenant_id, repeating it is fine", async () => {
  const t = await testApp();
  const call = api(t);
  try {
    await call("POST", "/subscriptions", { id: "s_t", tenant_id: "acme", url: hook });
    await call("POST", "/subscriptions", { id: "s_n", url: hook });
    for (const [id, tenant] of [["s_t", "globex"], ["s_t", null], ["s_n", "acme"]] as const) {
      const res = await t.call("PATCH", `/subscriptions/${id}`, {
        tenant_id: tenant,
        url: "http://127.0.0.1:9/new",
      });
      await assertInvalidField(res, "tenant_id", `${id} -> ${tenant}`);
    }
    assert.equal(
      (await call("GET", "/subscriptions/s_t")).url,
      hook,
      "nothing else changed either",
    );
    const same = await call("PATCH", "/subscriptions/s_t", {
      tenant_id: "acme",
      description: "kept",
    });
    assert.equal(same.description, "kept");
    assert.equal((await call("PATCH", "/subscriptions/s_n", { tenant_id: null })).tenant_id, null);
    const missing = await t.call("PATCH", "/subscriptions/nope", { tenant_id: "acme" });
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  } finally {
    await t.close();
  }
});

Deno.test("tenant_id follows the id rule: a bad one answers 400 naming tenant_id everywhere", async () => {
  const t = await testApp();
  try {
    for (const bad of ["", "a b", "-x", "x".repeat(256), 5]) {
      const what = JSON.stringify(bad);
      await assertInvalidField(
        await t.call("POST", "/subscriptions", { url: hook, tenant_id: bad }),
        "tenant_id",
        what,
      );
      await assertInvalidField(
        await t.call("POST", "/events", { type: "a", data: {}, tenant_id: bad }),
        "tenant_id",
        what,
      );
    }
    for (const path of ["/events?tenant_id=a%20b", "/subscriptions?tenant_id=a%20b"]) {
      await assertInvalidField(await t.call("GET", path), "tenant_id", path);
    }
    await assertInvalidField(await t.call("GET", "/tenants/a%20b"), "id");
    assert.equal(await countRows(t.db.sql, "subscriptions"), 0);
  } finally {
    await t.close();
  }
});

Deno.test("GET /events and GET /subscriptions take ?tenant_id= and page within it", async () => {
  const t = await testApp();
  const call = api(t);
  try {
    for (let i = 0; i < 3; i++) {
      await call("POST", "/subscriptions", { id: `a${i}`, tenant_id: "acme", url: hook });
      await call("POST", "/subscriptions", { id: `g${i}`, tenant_id: "globex", url: hook });
      await call("POST", "/events", { id: `ea${i}`, tenant_id: "acme", type: "t", data: {} });
      await call("POST", "/events", { id: `eg${i}`, tenant_id: "globex", type: "t", data: {} });
    }
    await call("POST", "/events", { id: "en", type: "t", data: {} });
    const ids = (page: { data: { id: string }[] }) => page.data.map((x) => x.id);
    const first = await call("GET", "/subscriptions?tenant_id=acme&limit=2");
    assert.deepEqual(ids(first), ["a0", "a1"]);
    const rest = await call(
      "GET",
      `/subscriptions?tenant_id=acme&limit=2&cursor=${first.next_cursor}`,
    );
    assert.deepEqual(ids(rest), ["a2"]);
    assert.equal(rest.next_cursor, null);
    const events = await call("GET", "/events?tenant_id=globex&limit=2");
    assert.deepEqual(ids(events), ["eg2", "eg1"]);
    const more = await call("GET", `/events?tenant_id=globex&limit=2&cursor=${events.next_cursor}`);
    assert.deepEqual(ids(more), ["eg0"]);
    assert.deepEqual(ids(await call("GET", "/events?tenant_id=acme&status=pending")), [
      "ea2",
      "ea1",
      "ea0",
    ]);
    assert.deepEqual(ids(await call("GET", "/events?tenant_id=nobody")), []);
    assert.equal((await call("GET", "/events")).data.length, 7);
  } finally {
    await t.close();
  }
});

Deno.test("GET /tenants/:id counts the tenant's subscriptions, events and deliveries by status", async () => {
  const t = await testApp();
  const call = api(t);
  try {
    await call("POST", "/subscriptions", { id: "a1", tenant_id: "acme", url: hook });
    await call("POST", "/subscriptions", {
      id: "a2",
      tenant_id: "acme",
      url: hook,
      event_types: ["order.*"],
    });
    await call("POST", "/subscriptions", { id: "g1", tenant_id: "globex", url: hook });
    await call("POST", "/events", { id: "e1", tenant_id: "acme", type: "order.created", data: {} });
    await call("POST", "/events", { id: "e2", tenant_id: "acme", type: "user.created", data: {} });
    await call("POST", "/events", {
      id: "e3",
      tenant_id: "globex",
      type: "order.created",
      data: {},
    });
    await t.db.sql`UPDATE deliveries SET status = 'failed' WHERE event_id = 'e2'`;
    await t.db.sql`
      UPDATE deliveries SET status = 'delivered', delivered_at = now()
      WHERE event_id = 'e1' AND subscription_id = 'a2'`;
    assert.deepEqual(await call("GET", "/tenants/acme"), {
      id: "acme",
      subscriptions: 2,
      events: 2,
      deliveries: { pending: 1, processing: 0, retrying: 0, delivered: 1, failed: 1 },
    });
    assert.deepEqual((await call("GET", "/tenants/globex")).deliveries.pending, 1);
    const unknown = await t.call("GET", "/tenants/nobody");
    assert.equal(unknown.status, 404);
    assert.deepEqual((await json(unknown)).error, {
      code: "not_found",
      message: 'Tenant "nobody" does not exist',
    });
  } finally {
    await t.close();
  }
});

Deno.test("DELETE /tenants/:id removes the tenant's subscriptions, fails their waiting deliveries, and keeps its events", async () => {
  const t = await testApp();
  const call = api(t);
  try {
    await call("POST", "/subscriptions", { id: "a1", tenant_id: "acme", url: hook });
    await call("POST", "/subscriptions", { id: "a2", tenant_id: "acme", url: hook });
    await call("POST", "/subscriptions", { id: "g1", tenant_id: "globex", url: hook });
    await call("POST", "/events", { id: "e1", tenant_id: "acme", type: "a", data: {} });
    await call("POST", "/events", { id: "e2", tenant_id: "globex", type: "a", data: {} });
    await t.db.sql`
      UPDATE deliveries SET status = 'delivered', delivered_at = now()
      WHERE event_id = 'e1' AND subscription_id = 'a2'`;
    const res = await t.call("DELETE", "/tenants/acme");
    assert.equal(res.status, 204);
    assert.deepEqual(await call("GET", "/tenants/acme"), {
      id: "acme",
      subscriptions: 0,
      events: 1,
      deliveries: { pending: 0, processing: 0, retrying: 0, delivered: 1, failed: 1 },
    });
    const [failed] = (await call("GET", "/events/e1/deliveries")).data.filter((
      d: { status: string },
    ) => d.status === "failed");
    assert.equal(failed.last_error, "Subscription deleted");
    assert.deepEqual((await call("GET", "/subscriptions")).data.map((s: { id: string }) => s.id), [
      "g1",
    ]);
    assert.equal(
      (await call("GET", "/tenants/globex")).deliveries.pending,
      1,
      "other tenants keep theirs",
    );
    // A tenant with events only can be deleted again; one with nothing is unknown.
    assert.equal((await t.call("DELETE", "/tenants/acme")).status, 204);
    const unknown = await t.call("DELETE", "/tenants/nobody");
    assert.equal(unknown.status, 404);
    assert.equal((await json(unknown)).error.message, 'Tenant "nobody" does not exist');
  } finally {
    await t.close();
  }
});
