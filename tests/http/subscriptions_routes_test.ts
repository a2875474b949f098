import assert from "node:assert/strict";
import { assertInvalidField, json, testApp } from "../helpers/app.ts";
import { countRows } from "../helpers/db.ts";

Deno.test("POST /subscriptions returns a generated whsec_ secret once; reads never show it", async () => {
  const t = await testApp();
  try {
    const res = await t.call("POST", "/subscriptions", {
      url: "https://example.com/hook",
      event_types: ["order.*"],
      description: "orders",
    });
    assert.equal(res.status, 201);
    const sub = await json(res);
    assert.match(sub.id, /^sub_/);
    assert.match(sub.secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
    assert.equal(sub.active, true);
    const got = await json(await t.call("GET", `/subscriptions/${sub.id}`));
    assert.equal(got.url, "https://example.com/hook");
    assert.equal("secret" in got, false);
    const list = await json(await t.call("GET", "/subscriptions"));
    assert.equal(list.data.length, 1);
    assert.ok(!JSON.stringify(list).includes(sub.secret));
  } finally {
    await t.close();
  }
});

Deno.test("POST /subscriptions rejects bad urls, patterns and secrets with 400 naming the field", async () => {
  const t = await testApp();
  try {
    const cases: [Record<string, unknown>, string][] = [
      [{}, "url"],
      [{ url: "ftp://example.com" }, "url"],
      [{ url: "not a url" }, "url"],
      [{ url: "https://user:pw@example.com/" }, "url"],
      [{ url: `https://example.com/${"a".repeat(2048)}` }, "url"],
      [{ url: "https://example.com", event_types: [] }, "event_types"],
      [{ url: "https://example.com", event_types: ["order.**"] }, "event_types[0]"],
      [{ url: "https://example.com", event_types: ["*.created"] }, "event_types[0]"],
      [{ url: "https://example.com", secret: "" }, "secret"],
      [{ url: "https://example.com", secret: "whsec_!!!!!!!!!!!!!!!!" }, "secret"],
      [{ url: "https://example.com", max_attempts: 0 }, "max_attempts"],
      [{ url: "https://example.com", active: "yes" }, "active"],
      [{ url: "https://example.com", id: "a/b" }, "id"],
    ];
    for (const [body, field] of cases) {
      const res = await t.call("POST", "/subscriptions", body);
      await assertInvalidField(res, field, JSON.stringify(body).slice(0, 80));
    }
    assert.equal(await countRows(t.db.sql, "subscriptions"), 0);
  } finally {
    await t.close();
  }
});

Deno.test("POST /subscriptions/:id/recover refuses a since or until that is not an ISO 8601 time with 400 naming the field", async () => {
  const t = await testApp();
  try {
    await json(await t.call("POST", "/subscriptions", { id: "sub_r", url: "https://example.com" }));
    const cases: [Record<string, unknown>, string][] = [
      [{}, "since"],
      [{ since: "yesterday" }, "since"],
      [{ since: "2026-11-26" }, "since"],
      [{ since: "2026-11-26T00:00:00Z", until: "2026-11-27 00:00" }, "until"],
      [{ since: "2026-11-26T00:00:00Z", limit: 10 }, "limit"],
    ];
    for (const [body, field] of cases) {
      const res = await t.call("POST", "/subscriptions/sub_r/recover", body);
      await assertInvalidField(res, field, JSON.stringify(body));
    }
  } finally {
    await t.close();
  }
});

Deno.test("POST /subscriptions with a taken id answers 409", async () => {
  const t = await testApp();
  try {
    const body = { id: "sub_same", url: "https://example.com/a" };
    assert.equal((await t.call("POST", "/subscriptions", body)).status, 201);
    const res = await t.call("POST", "/subscriptions", { ...body, url: "https://example.com/b" });
    assert.equal(res.status, 409);
    assert.equal((await json(res)).error.code, "conflict");
    const got = await json(await t.call("GET", "/subscriptions/sub_same"));
    assert.equal(got.url, "https://example.com/a");
  } finally {
    await t.close();
  }
});

Deno.test("PATCH /subscriptions/:id changes only the fields given", async () => {
  const t = await testApp();
  try {
    const sub = await json(
      await t.call("POST", "/subscriptions", {
        url: "https://example.com/a",
        event_types: ["a"],
        max_attempts: 3,
        metadata: { team: "x" },
      }),
    );
    const res = await t.call("PATCH", `/subscriptions/${sub.id}`, {
      url: "https://example.com/b",
      active: false,
    });
    assert.equal(res.status, 200);
    const got = await json(res);
    assert.equal(got.url, "https://example.com/b");
    assert.equal(got.active, false);
    assert.deepEqual(got.event_types, ["a"]);
    assert.equal(got.max_attempts, 3);
    assert.deepEqual(got.metadata, { team: "x" });
    const reset = await json(
      await t.call("PATCH", `/subscriptions/${sub.id}`, { max_attempts: null }),
    );
    assert.equal(reset.max_attempts, null);

    const bad = await t.call("PATCH", `/subscriptions/${sub.id}`, { url: "gopher://x" });
    assert.equal(bad.status, 400);
    await bad.body?.cancel();
    const missing = await t.call("PATCH", "/subscriptions/nope", { active: true });
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  } finally {
    await t.close();
  }
});

Deno.test("DELETE /subscriptions/:id removes it and fails its waiting deliveries", async () => {
  const t = await testApp();
  try {
    const sub = await json(await t.call("POST", "/subscriptions", { url: "https://e.com/a" }));
    const evt = await json(await t.call("POST", "/events", { type: "a", data: {} }));
    assert.equal(evt.status, "pending");
    // No body and no Content-Type, as `curl -X DELETE` sends it.
    const del = await t.call("DELETE", `/subscriptions/${sub.id}`);
    assert.equal(del.status, 204);
    assert.equal((await t.call("GET", `/subscriptions/${sub.id}`)).status, 404);
    const again = await t.call("DELETE", `/subscriptions/${sub.id}`);
    assert.equal(again.status, 404);
    await again.body?.cancel();
    const { data } = await json(await t.call("GET", `/events/${evt.id}/deliveries`));
    assert.equal(data[0].status, "failed");
    assert.equal(data[0].last_error, "Subscription deleted");
    assert.equal((await json(await t.call("GET", `/events/${evt.id}`))).status, "failed");
  } finally {
    await t.close();
  }
});

Deno.test("GET /subscriptions pages with a cursor", async () => {
  const t = await testApp();
  try {
    for (let i = 0; i < 3; i++) {
      await (await t.call("POST", "/subscriptions", { id: `s${i}`, url: "https://e.com" })).body
        ?.cancel();
    }
    const p1 = await json(await t.call("GET", "/subscriptions?limit=2"));
    assert.deepEqual(p1.data.map((s: { id: string }) => s.id), ["s0", "s1"]);
    const p2 = await json(await t.call("GET", `/subscriptions?limit=2&cursor=${p1.next_cursor}`));
    assert.deepEqual(p2.data.map((s: { id: string }) => s.id), ["s2"]);
    assert.equal(p2.next_cursor, null);
  } finally {
    await t.close();
  }
});

Deno.test("POST /subscriptions/:id/rotate-secret returns a new secret and keeps the old one for the grace period", async () => {
  const t = await testApp({ rotationGraceMs: 60_000 });
  try {
    const sub = await json(await t.call("POST", "/subscriptions", { url: "https://e.com" }));
    const res = await t.call("POST", `/subscriptions/${sub.id}/rotate-secret`);
    assert.equal(res.status, 200);
    const rotated = await json(res);
    assert.notEqual(rotated.secret, sub.secret);
    const expires = Date.parse(rotated.previous_secret_expires_at) - Date.now();
    assert.ok(expires > 50_000 && expires <= 60_000, String(expires));
    const [row] = await t.db.sql`SELECT secret, previous_secret FROM subscriptions`;
    assert.equal(row!.secret, rotated.secret);
    assert.equal(row!.previous_secret, sub.secret);
    const missing = await t.call("POST", "/subscriptions/nope/rotate-secret");
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  } finally {
    await t.close();
  }
});

Deno.test("a chosen secret of any length from 1 to 256 works outside production", async () => {
  const t = await testApp();
  try {
    for (const secret of ["k", "my-secret-key", "x".repeat(256)]) {
      const res = await t.call("POST", "/subscriptions", { url: "https://example.com", secret });
      assert.equal(res.status, 201, secret);
      assert.equal((await json(res)).secret, secret);
    }
  } finally {
    await t.close();
  }
});

Deno.test("with DISPATCH_ENV=production a chosen secret needs 16 characters, and the answer says to leave it out", async () => {
  const t = await testApp({ env: "production" });
  try {
    const short = await t.call("POST", "/subscriptions", {
      url: "https://example.com",
      secret: "my-secret-key",
    });
    const body = await json(short.clone());
    await assertInvalidField(short, "secret");
    assert.match(body.error.message, /16 characters with DISPATCH_ENV=production/);
    assert.match(body.error.message, /leave it out to get a generated whsec_ secret/);
    assert.ok(!body.error.message.includes("my-secret-key"), "the secret is never quoted back");
    const long = await t.call("POST", "/subscriptions", {
      url: "https://example.com",
      secret: "a-secret-of-16-chars",
    });
    assert.equal(long.status, 201);
    await long.body?.cancel();
    assert.equal(await countRows(t.db.sql, "subscriptions"), 1);
  } finally {
    await t.close();
  }
});
