import assert from "node:assert/strict";
import { assertInvalidField, testApp } from "../helpers/app.ts";
import { countRows } from "../helpers/db.ts";

const url = "http://127.0.0.1:9/hook";

Deno.test("every date parameter refuses an instant PostgreSQL cannot store with 400 naming the field", async () => {
  const t = await testApp();
  try {
    await (await t.call("POST", "/subscriptions", { id: "s", url })).body?.cancel();
    for (const bad of ["0000-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59"]) {
      const q = encodeURIComponent(bad);
      await assertInvalidField(
        await t.call("POST", "/subscriptions/s/recover", { since: bad }),
        "since",
        bad,
      );
      await assertInvalidField(
        await t.call("POST", "/subscriptions/s/recover", {
          since: "2026-01-01T00:00:00Z",
          until: bad,
        }),
        "until",
        bad,
      );
      await assertInvalidField(await t.call("GET", `/deliveries?since=${q}`), "since", bad);
      await assertInvalidField(await t.call("GET", `/deliveries?until=${q}`), "until", bad);
      await assertInvalidField(
        await t.call("POST", "/api-keys", { scope: "publish", expires_at: bad }),
        "expires_at",
        bad,
      );
    }
    // The first and last instants of the range are taken.
    const first = await t.call("POST", "/subscriptions/s/recover", {
      since: "0001-01-01T00:00:00Z",
      until: "9999-12-31T23:59:59Z",
    });
    assert.equal(first.status, 202);
    await first.body?.cancel();
  } finally {
    await t.close();
  }
});

Deno.test("integer query parameters take decimal digits only", async () => {
  const t = await testApp();
  try {
    for (const path of ["/events", "/subscriptions", "/deliveries", "/api-keys"]) {
      for (const bad of ["0x10", "1e1", "%2016", "16.0"]) {
        await assertInvalidField(await t.call("GET", `${path}?limit=${bad}`), "limit", path + bad);
      }
      const ok = await t.call("GET", `${path}?limit=16`);
      assert.equal(ok.status, 200, path);
      await ok.body?.cancel();
    }
  } finally {
    await t.close();
  }
});

Deno.test("a metadata key __proto__ is refused with 400 naming metadata, not dropped", async () => {
  const t = await testApp();
  try {
    const created = await t.call(
      "POST",
      "/subscriptions",
      `{"id":"s","url":"${url}","metadata":{"__proto__":"x","team":"a"}}`,
    );
    await assertInvalidField(created, "metadata");
    assert.equal(await countRows(t.db.sql, "subscriptions"), 0);
    await (await t.call("POST", "/subscriptions", { id: "s", url })).body?.cancel();
    await assertInvalidField(
      await t.call("PATCH", "/subscriptions/s", `{"metadata":{"__proto__":"x"}}`),
      "metadata",
    );
  } finally {
    await t.close();
  }
});

Deno.test("a chosen secret must be printable ASCII, which every Standard Webhooks library keys alike", async () => {
  const t = await testApp();
  try {
    for (const secret of ["sécret-sécret-sécret", "tab\there-and-more", "emoji-🔑-secret-key"]) {
      await assertInvalidField(await t.call("POST", "/subscriptions", { url, secret }), "secret");
    }
    const ok = await t.call("POST", "/subscriptions", { url, secret: "plain ~ASCII! secret" });
    assert.equal(ok.status, 201);
    await ok.body?.cancel();
  } finally {
    await t.close();
  }
});

Deno.test("every answer says X-Content-Type-Options: nosniff, errors and pages included", async () => {
  const t = await testApp();
  try {
    const answers = [
      await t.call("POST", "/events", { type: "a", data: {} }),
      await t.call("POST", "/events", { type: "a" }),
      await t.call("GET", "/events/nope"),
      await t.call("GET", "/no/such/route"),
      await t.call("DELETE", "/events"),
      await t.call("GET", "/healthz"),
      await t.call("GET", "/metrics"),
      await t.call("GET", "/openapi.json"),
      await t.call("GET", "/docs"),
    ];
    for (const res of answers) {
      assert.equal(res.headers.get("x-content-type-options"), "nosniff", res.url);
      await res.body?.cancel();
    }
  } finally {
    await t.close();
  }
});
