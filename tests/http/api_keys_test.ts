import assert from "node:assert/strict";
import { assertInvalidField, json, testApp } from "../helpers/app.ts";
import { bearer } from "../helpers/http.ts";

const admin = "admin-key-0123456789";
const hook = "http://127.0.0.1:9/hook";

type App = Awaited<ReturnType<typeof testApp>>;

/** A new tenant key of `tenant`, made with the admin key. */
async function tenantKey(t: App, tenant: string): Promise<string> {
  const body = { scope: "tenant", tenant_id: tenant };
  return (await json(await t.call("POST", "/api-keys", body, bearer(admin)))).key;
}

/** A call with the admin key whose answer is not looked at. */
async function asAdmin(t: App, method: string, path: string, body: unknown) {
  await (await t.call(method, path, body, bearer(admin))).body?.cancel();
}

Deno.test("POST /api-keys answers 201 with the key once; GET /api-keys lists it without the key", async () => {
  const t = await testApp({ apiKeys: [admin] });
  try {
    const res = await t.call(
      "POST",
      "/api-keys",
      {
        scope: "tenant",
        tenant_id: "acme",
        description: "portal",
        expires_at: "2099-01-01T00:00:00+01:00",
      },
      bearer(admin),
    );
    assert.equal(res.status, 201);
    assert.equal(res.headers.get("cache-control"), "no-store");
    const created = await json(res);
    assert.deepEqual(Object.keys(created).sort(), [
      "created_at",
      "description",
      "expires_at",
      "id",
      "key",
      "scope",
      "tenant_id",
    ]);
    assert.match(created.id, /^key_/);
    assert.match(created.key, /^dk_[A-Za-z0-9_-]{43}$/);
    assert.equal(created.scope, "tenant");
    assert.equal(created.tenant_id, "acme");
    assert.equal(created.expires_at, "2098-12-31T23:00:00.000Z");
    const publish = await json(
      await t.call("POST", "/api-keys", { scope: "publish" }, bearer(admin)),
    );
    assert.equal(publish.tenant_id, null);
    assert.equal(publish.description, null);
    assert.equal(publish.expires_at, null);

    const list = await t.call("GET", "/api-keys", undefined, bearer(admin));
    const text = await list.text();
    assert.ok(!text.includes(created.key) && !text.includes(publish.key));
    const { data } = JSON.parse(text);
    assert.deepEqual(data.map((k: { id: string }) => k.id), [created.id, publish.id]);
    assert.equal("key" in data[0], false);
    assert.equal(data[0].last_used_at, null);
  } finally {
    await t.close();
  }
});

Deno.test("POST /api-keys refuses a bad scope, tenant_id or expires_at with 400 naming the field", async () => {
  const t = await testApp({ apiKeys: [admin] });
  try {
    const cases: [Record<string, unknown>, string][] = [
      [{}, "scope"],
      [{ scope: "root" }, "scope"],
      [{ scope: "tenant" }, "tenant_id"],
      [{ scope: "tenant", tenant_id: "a b" }, "tenant_id"],
      [{ scope: "publish", tenant_id: "acme" }, "tenant_id"],
      [{ scope: "admin", expires_at: "tomorrow" }, "expires_at"],
      // A date alone is not a time, though Date.parse takes it.
      [{ scope: "admin", expires_at: "2099-01-01" }, "expires_at"],
      [{ scope: "admin", expires_at: "2020-01-01T00:00:00Z" }, "expires_at"],
      [{ scope: "admin", description: "x".repeat(1025) }, "description"],
      [{ scope: "admin", key: "chosen" }, "key"],
    ];
    for (const [body, field] of cases) {
      await assertInvalidField(
        await t.call("POST", "/api-keys", body, bearer(admin)),
        field,
        JSON.stringify(body),
      );
    }
    const { data } = await json(await t.call("GET", "/api-keys", undefined, bearer(admin)));
    assert.equal(data.length, 0);
  } finally {
    await t.close();
  }
});

Deno.test("a managed admin key may do everything, keys included; a revoked one answers 401", async () => {
  const t = await testApp({ apiKeys: [admin] });
  try {
    const { id, key } = await json(
      await t.call("POST", "/api-keys", { scope: "admin" }, bearer(admin)),
    );
    for (
      const [method, path, body] of [
        ["POST", "/subscriptions", { url: hook }],
        ["POST", "/events", { type: "a", data: {} }],
        ["GET", "/api-keys", undefined],
      ] as const
    ) {
      const res = await t.call(method, path, body, bearer(key));
      assert.ok(res.ok, `${method} ${path}: ${res.status}`);
      await res.body?.cancel();
    }
    assert.equal((await t.call("DELETE", `/api-keys/${id}`, undefined, bearer(admin))).status, 204);
    const refused = await t.call("GET", "/events", undefined, bearer(key));
    assert.equal(refused.status, 401);
    assert.equal((await json(refused)).error.message, "Invalid API key");
    const again = await t.call("DELETE", `/api-keys/${id}`, undefined, bearer(admin));
    assert.equal(again.status, 404);
    assert.equal((await json(again)).error.message, `API key "${id}" does not exist`);
  } finally {
    await t.close();
  }
});

Deno.test("an expired key answers 401 from the moment it expires", async () => {
  let now = Date.now();
  const t = await testApp({ apiKeys: [admin] }, { now: () => now });
  try {
    const expires = new Date(Date.now() + 60_000);
    const { key } = await json(
      await t.call(
        "POST",
        "/api-keys",
        { scope: "admin", expires_at: expires.toISOString() },
        bearer(admin),
      ),
    );
    // The clock stands a millisecond before the expiry, then at it.
    now = expires.getTime() - 1;
    const before = await t.call("GET", "/events", undefined, bearer(key));
    assert.equal(before.status, 200);
    await before.body?.cancel();
    now = expires.getTime();
    const after = await t.call("GET", "/events", undefined, bearer(key));
    assert.equal(after.status, 401);
    await after.body?.cancel();
  } finally {
    await t.close();
  }
});

Deno.test("last_used_at is set when a key is used, without a write per request", async () => {
  let now = Date.now();
  const t = await testApp({ apiKeys: [admin] }, { now: () => now });
  try {
    const { id, key } = await json(
      await t.call("POST", "/api-keys", { scope: "admin" }, bearer(admin)),
    );
    const before = Date.now();
    for (let i = 0; i < 20; i++) {
      await (await t.call("GET", "/events", undefined, bearer(key))).body?.cancel();
    }
    const lastUsed = async () => {
      const { data } = await json(await t.call("GET", "/api-keys", undefined, bearer(admin)));
      return data.find((k: { id: string }) => k.id === id).last_used_at;
    };
    let at: string | null = null;
    for (let i = 0; i < 100 && at === null; i++) {
      at = await lastUsed();
      if (at === null) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(at !== null, "last_used_at was written");
    assert.ok(Math.abs(Date.parse(at) - before) < 5000, at);
    // Within the minute, more use does not write it again.
    now += 59_000;
    for (let i = 0; i < 5; i++) {
      await (await t.call("GET", "/events", undefined, bearer(key))).body?.cancel();
    }
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await lastUsed(), at);
  } finally {
    await t.close();
  }
});

Deno.test("a tenant key manages its own subscriptions: tenant_id defaults to its own, another answers 404", async () => {
  const t = await testApp({ apiKeys: [admin] });
  try {
    const key = await tenantKey(t, "acme");
    await asAdmin(t, "POST", "/subscriptions", { id: "theirs", tenant_id: "globex", url: hook });
    const created = await json(
      await t.call("POST", "/subscriptions", { id: "mine", url: hook }, bearer(key)),
    );
    assert.equal(created.tenant_id, "acme");
    const explicit = await t.call("POST", "/subscriptions", {
      id: "mine2",
      tenant_id: "acme",
      url: hook,
    }, bearer(key));
    assert.equal(explicit.status, 201);
    await explicit.body?.cancel();
    const other = await t.call("POST", "/subscriptions", {
      id: "x",
      tenant_id: "globex",
      url: hook,
    }, bearer(key));
    assert.equal(other.status, 404);
    assert.deepEqual((await json(other)).error, {
      code: "not_found",
      message: 'Tenant "globex" does not exist',
    });
    const { data } = await json(await t.call("GET", "/subscriptions", undefined, bearer(key)));
    assert.deepEqual(data.map((s: { id: string }) => s.id), ["mine", "mine2"]);
    for (const path of ["/subscriptions/mine", "/tenants/acme"]) {
      const res = await t.call("GET", path, undefined, bearer(key));
      assert.equal(res.status, 200, path);
      await res.body?.cancel();
    }
    assert.equal(
      (await t.call("PATCH", "/subscriptions/mine", { active: false }, bearer(key))).status,
      200,
    );
    assert.equal(
      (await t.call("POST", "/subscriptions/mine/rotate-secret", undefined, bearer(key))).status,
      200,
    );
    assert.equal(
      (await t.call("DELETE", "/subscriptions/mine", undefined, bearer(key))).status,
      204,
    );
  } finally {
    await t.close();
  }
});

Deno.test("a tenant key reads its events, deliveries and attempts and retries them; publishing and keys answer 403", async () => {
  const t = await testApp({ apiKeys: [admin] });
  try {
    const key = await tenantKey(t, "acme");
    await asAdmin(t, "POST", "/subscriptions", { id: "s", tenant_id: "acme", url: hook });
    await asAdmin(t, "POST", "/events", { id: "e", tenant_id: "acme", type: "a", data: {} });
    await t.db.sql`UPDATE deliveries SET status = 'failed'`;
    for (
      const [method, path, status] of [
        ["GET", "/events", 200],
        ["GET", "/events?tenant_id=acme", 200],
        ["GET", "/events/e", 200],
        ["GET", "/events/e/deliveries", 200],
        ["GET", "/events/e/attempts", 200],
        ["POST", "/events/e/retry", 202],
      ] as const
    ) {
      const res = await t.call(method, path, undefined, bearer(key));
      assert.equal(res.status, status, `${method} ${path}`);
      await res.body?.cancel();
    }
    for (
      const [method, path, body] of [
        ["POST", "/events", { tenant_id: "acme", type: "a", data: {} }],
        ["POST", "/events/batch", { events: [] }],
        ["POST", "/api-keys", { scope: "admin" }],
        ["GET", "/api-keys", undefined],
        ["DELETE", "/api-keys/key_1", undefined],
        ["DELETE", "/tenants/acme", undefined],
      ] as const
    ) {
      const res = await t.call(method, path, body, bearer(key));
      assert.equal(res.status, 403, `${method} ${path}`);
      const { error } = await json(res);
      assert.equal(error.code, "forbidden");
      assert.match(error.message, /^A "tenant" key cannot call /);
    }
    assert.equal(await t.db.sql`SELECT 1 FROM subscriptions`.then((r) => r.length), 1);
  } finally {
    await t.close();
  }
});

Deno.test("without DISPATCH_API_KEYS a request without a key is admin, and one with a key is held to it", async () => {
  const t = await testApp();
  try {
    const { id, key } = await json(await t.call("POST", "/api-keys", { scope: "publish" }));
    const published = await t.call("POST", "/events", { type: "a", data: {} }, bearer(key));
    assert.equal(published.status, 201);
    await published.body?.cancel();
    const read = await t.call("GET", "/events", undefined, bearer(key));
    assert.equal(read.status, 403);
    await read.body?.cancel();
    assert.equal((await t.call("DELETE", `/api-keys/${id}`)).status, 204);
    // A revoked key is refused, never taken for the open API's admin.
    const revoked = await t.call("GET", "/events", undefined, bearer(key));
    assert.equal(revoked.status, 401);
    await revoked.body?.cancel();
  } finally {
    await t.close();
  }
});
