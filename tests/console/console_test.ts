import assert from "node:assert/strict";
import { json, testApp } from "../helpers/app.ts";
import { consoleClient } from "../helpers/console.ts";
import { bearer } from "../helpers/http.ts";

const admin = "console-admin-key-0123456789";

Deno.test("without API keys the console opens directly, says the API is open, and sends its security headers", async () => {
  const t = await testApp();
  try {
    const browser = consoleClient(t);
    const res = await browser.get("/console");
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.match(html, /The API is open/);
    assert.match(res.headers.get("set-cookie") ?? "", /HttpOnly; SameSite=Strict/);
    const csp = res.headers.get("content-security-policy") ?? "";
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline/);
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    assert.equal(res.headers.get("referrer-policy"), "same-origin");
    assert.doesNotMatch(html, /<script>|<script [^>]*>[^<]/, "no inline script");
  } finally {
    await t.close();
  }
});

Deno.test("CONSOLE_FRAME_ANCESTORS names who may frame the console", async () => {
  const t = await testApp({ consoleFrameAncestors: ["https://app.example.com"] });
  try {
    const res = await consoleClient(t).get("/console");
    await res.body?.cancel();
    assert.match(
      res.headers.get("content-security-policy") ?? "",
      /frame-ancestors https:\/\/app\.example\.com(;|$)/,
    );
  } finally {
    await t.close();
  }
});

Deno.test("with API keys a page sends to the sign-in form, and a key opens a session cookie that is signed", async () => {
  const t = await testApp({ apiKeys: [admin] });
  try {
    const browser = consoleClient(t);
    const first = await browser.get("/console/events");
    await first.body?.cancel();
    assert.equal(first.status, 303);
    assert.equal(first.headers.get("location"), "/console/sign-in");

    const wrong = await browser.post("/console/sign-in", { key: "not-a-key" });
    assert.equal(wrong.status, 401);
    assert.match(await wrong.text(), /Invalid API key/);

    const signed = await browser.post("/console/sign-in", { key: admin });
    await signed.body?.cancel();
    assert.equal(signed.status, 303);
    const cookie = signed.headers.get("set-cookie") ?? "";
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    assert.match(cookie, /Path=\/console/);
    assert.ok(!cookie.includes(admin), "the key is not in the cookie");
    const page = await browser.get("/console/events");
    assert.equal(page.status, 200);
    assert.ok(!(await page.text()).includes(admin), "the key is not in the page");

    // With API keys the open API's own origin check is off: the console's refuses another site.
    await (await browser.get("/console/subscriptions/new")).body?.cancel();
    const elsewhere = await browser.post("/console/subscriptions", {
      url: "http://127.0.0.1:9/hook",
    }, { origin: "https://evil.example" });
    assert.equal(elsewhere.status, 403);
    assert.match(await elsewhere.text(), /Cross-origin request refused/);

    // A cookie changed by one character is not a session.
    browser.cookie = browser.cookie!.replace(/.$/, (c) => c === "A" ? "B" : "A");
    const forged = await browser.get("/console/events");
    await forged.body?.cancel();
    assert.equal(forged.status, 303);
  } finally {
    await t.close();
  }
});

Deno.test("a publish key cannot sign in, and a session ends when its key is revoked", async () => {
  // The key table is read again when older than a second: the clock moves on past each new key.
  let clock = Date.now();
  const t = await testApp({ apiKeys: [admin] }, { now: () => clock });
  try {
    const publish = await json(
      await t.call("POST", "/api-keys", { scope: "publish" }, bearer(admin)),
    );
    const browser = consoleClient(t);
    const refused = await browser.post("/console/sign-in", { key: publish.key });
    assert.equal(refused.status, 403);
    assert.match(await refused.text(), /A publish key cannot sign in/);

    const tenant = await json(
      await t.call("POST", "/api-keys", { scope: "tenant", tenant_id: "acme" }, bearer(admin)),
    );
    clock += 2000;
    const signed = await browser.post("/console/sign-in", { key: tenant.key });
    await signed.body?.cancel();
    assert.equal(signed.status, 303);
    const before = await browser.get("/console");
    assert.equal(before.status, 200);
    assert.match(await before.text(), /tenant acme/);

    const revoked = await t.call("DELETE", `/api-keys/${tenant.id}`, undefined, bearer(admin));
    assert.equal(revoked.status, 204);
    const after = await browser.get("/console");
    await after.body?.cancel();
    assert.equal(after.status, 303);
    assert.equal(after.headers.get("location"), "/console/sign-in");
  } finally {
    await t.close();
  }
});

Deno.test("a POST without the CSRF token, with another's, or from another origin is refused", async () => {
  const t = await testApp();
  try {
    const browser = consoleClient(t);
    await (await browser.get("/console/subscriptions/new")).body?.cancel();
    const fields = { url: "http://127.0.0.1:9/hook", event_types: "*", active: "true" };

    const none = await browser.post("/console/subscriptions", fields, { csrf: false });
    assert.equal(none.status, 403);
    assert.match(await none.text(), /CSRF token/);
    const forged = await browser.post("/console/subscriptions", fields, { csrf: "AAAA" });
    await forged.body?.cancel();
    assert.equal(forged.status, 403);
    const elsewhere = await browser.post("/console/subscriptions", fields, {
      origin: "https://evil.example",
    });
    await elsewhere.body?.cancel();
    assert.equal(elsewhere.status, 403);
    const other = consoleClient(t);
    await (await other.get("/console/subscriptions/new")).body?.cancel();
    const theirs = await browser.post("/console/subscriptions", fields, { csrf: other.csrf! });
    await theirs.body?.cancel();
    assert.equal(theirs.status, 403, "another session's token");
    assert.equal((await json(await t.call("GET", "/subscriptions"))).data.length, 0);

    const created = await browser.post("/console/subscriptions", fields);
    assert.equal(created.status, 201);
    assert.match(await created.text(), /whsec_/, "the new secret, shown once");
    assert.equal(created.headers.get("cache-control"), "no-store");
    assert.equal((await json(await t.call("GET", "/subscriptions"))).data.length, 1);
  } finally {
    await t.close();
  }
});

Deno.test("a subscription form's bad field answers 400 naming it, as the API does", async () => {
  const t = await testApp();
  try {
    const browser = consoleClient(t);
    await (await browser.get("/console/subscriptions/new")).body?.cancel();
    const res = await browser.post("/console/subscriptions", {
      url: "not a url",
      max_attempts: "many",
      active: "true",
    });
    assert.equal(res.status, 400);
    assert.match(await res.text(), /Invalid field &quot;url&quot;|Invalid field "url"/);
    const filter = await browser.get("/console/events?since=yesterday");
    assert.equal(filter.status, 400);
    assert.match(await filter.text(), /since/);
  } finally {
    await t.close();
  }
});
