import assert from "node:assert/strict";
import { assertInvalidField, json, testApp } from "../helpers/app.ts";
import { bearer } from "../helpers/http.ts";

const hook = "http://127.0.0.1:9/hook";

Deno.test("headers are stored lower-case and sensitive values read back as *** everywhere", async () => {
  const t = await testApp();
  try {
    const headers = {
      "X-Region": "eu-west-1",
      Authorization: "Bearer tok-plain-1",
      "X-Api-Key": "key-plain-2",
      Cookie: "session=plain-3",
      "X-Session-Token": "plain-4",
      "X-Client-Secret": "plain-5",
      "X-Db-Password": "plain-6",
      "X-Auth-User": "plain-7",
      "Proxy-Authorization": "Basic plain-8",
    };
    const shown = {
      "x-region": "eu-west-1",
      authorization: "***",
      "x-api-key": "***",
      cookie: "***",
      "x-session-token": "***",
      "x-client-secret": "***",
      "x-db-password": "***",
      "x-auth-user": "***",
      "proxy-authorization": "***",
    };
    const created = await json(await t.call("POST", "/subscriptions", { url: hook, headers }));
    assert.deepEqual(created.headers, shown);
    const got = await json(await t.call("GET", `/subscriptions/${created.id}`));
    assert.deepEqual(got.headers, shown);
    const list = await json(await t.call("GET", "/subscriptions"));
    assert.deepEqual(list.data[0].headers, shown);
    const patched = await json(
      await t.call("PATCH", `/subscriptions/${created.id}`, { headers: { ...headers, A: "b" } }),
    );
    assert.deepEqual(patched.headers, { ...shown, a: "b" });
    const [row] = await t.db.sql<{ headers: Record<string, string> }[]>`
      SELECT headers FROM subscriptions`;
    assert.equal(row!.headers["x-api-key"], "key-plain-2", "stored as given without a key");
  } finally {
    await t.close();
  }
});

Deno.test("a PATCH that sends *** back keeps the stored value; {} and null clear the headers", async () => {
  const t = await testApp();
  try {
    const stored = async () =>
      (await t.db.sql<{ headers: Record<string, string> }[]>`SELECT headers FROM subscriptions`)[0]!
        .headers;
    const sub = await json(
      await t.call("POST", "/subscriptions", {
        url: hook,
        headers: { "X-Api-Key": "keep-me", "x-plain": "1" },
      }),
    );
    const read = await json(await t.call("GET", `/subscriptions/${sub.id}`));
    // What was read, sent back with one change: the masked value is kept, the rest replaced.
    const res = await t.call("PATCH", `/subscriptions/${sub.id}`, {
      headers: { ...read.headers, "x-plain": "2" },
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await stored(), { "x-api-key": "keep-me", "x-plain": "2" });
    // A PATCH replaces the whole object: a header left out is gone.
    await json(
      await t.call("PATCH", `/subscriptions/${sub.id}`, { headers: { "x-api-key": "***" } }),
    );
    assert.deepEqual(await stored(), { "x-api-key": "keep-me" });
    await json(await t.call("PATCH", `/subscriptions/${sub.id}`, { description: "other" }));
    assert.deepEqual(await stored(), { "x-api-key": "keep-me" }, "a PATCH without headers");
    await json(await t.call("PATCH", `/subscriptions/${sub.id}`, { headers: {} }));
    assert.deepEqual(await stored(), {});
    await json(
      await t.call("PATCH", `/subscriptions/${sub.id}`, { headers: { "x-api-key": "again" } }),
    );
    const cleared = await json(
      await t.call("PATCH", `/subscriptions/${sub.id}`, { headers: null }),
    );
    assert.deepEqual(cleared.headers, {});
    assert.deepEqual(await stored(), {});
    // *** keeps a stored value only: with none there is nothing to keep.
    await assertInvalidField(
      await t.call("PATCH", `/subscriptions/${sub.id}`, { headers: { "x-api-key": "***" } }),
      "headers",
    );
    await assertInvalidField(
      await t.call("POST", "/subscriptions", { url: hook, headers: { "x-token": "***" } }),
      "headers",
    );
  } finally {
    await t.close();
  }
});

Deno.test("bad headers are refused with 400 naming headers", async () => {
  const t = await testApp();
  try {
    const many = Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`x-h${i}`, "v"]));
    const cases: [string, unknown][] = [
      ["21 headers", many],
      ["a name that is no token", { "x bad": "v" }],
      ["an empty name", { "": "v" }],
      ["Host", { Host: "example.com" }],
      ["content-type", { "Content-Type": "text/plain" }],
      ["content-length", { "content-length": "3" }],
      ["transfer-encoding", { "transfer-encoding": "chunked" }],
      ["connection", { connection: "close" }],
      ["user-agent", { "User-Agent": "me" }],
      ["webhook-*", { "Webhook-Id": "x" }],
      ["x-dispatch-*", { "X-Dispatch-Attempt": "1" }],
      ["a value of 1,025 characters", { "x-a": "v".repeat(1025) }],
      ["CR", { "x-a": "a\rb" }],
      ["LF", { "x-a": "a\nb" }],
      ["NUL", { "x-a": "a\0b" }],
      ["a number", { "x-a": 1 }],
      ["a value that looks sealed", { "x-a": "enc:v1:abc" }],
      ["the same name twice", { "X-A": "1", "x-a": "2" }],
      ["an array", ["x-a"]],
      ["a string", "x-a: 1"],
    ];
    for (const [what, headers] of cases) {
      await assertInvalidField(
        await t.call("POST", "/subscriptions", { url: hook, headers }),
        "headers",
        `create: ${what}`,
      );
    }
    const sub = await json(await t.call("POST", "/subscriptions", { url: hook }));
    for (const [what, headers] of cases) {
      await assertInvalidField(
        await t.call("PATCH", `/subscriptions/${sub.id}`, { headers }),
        "headers",
        `patch: ${what}`,
      );
    }
    // The message says what is wrong, naming the header but never quoting its value.
    const messages: [Record<string, string>, string][] = [
      [{ "x-a": "secret\r\nx-b: 1" }, 'the value of "x-a" must not contain CR, LF or NUL'],
      [{ "x-a": "secret\u20ac" }, 'the value of "x-a" must use only printable ASCII or Latin-1'],
      [{ "Webhook-Id": "x" }, '"Webhook-Id" is a header Dispatch sets: it cannot be configured'],
    ];
    for (const [headers, message] of messages) {
      const res = await t.call("POST", "/subscriptions", { url: hook, headers });
      const { error } = await json(res);
      assert.ok(error.message.startsWith(`Invalid field "headers": ${message}`), error.message);
      assert.ok(!JSON.stringify(error).includes("secret"), "the value is not quoted");
    }
    // The limits themselves are accepted.
    const twenty = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`x-h${i}`, "v"]));
    assert.equal(
      (await t.call("POST", "/subscriptions", { url: hook, headers: twenty })).status,
      201,
    );
    const long = { "x-a": "v".repeat(1024) };
    assert.equal(
      (await t.call("POST", "/subscriptions", { url: hook, headers: long })).status,
      201,
    );
  } finally {
    await t.close();
  }
});

Deno.test("a filter that does not parse or is over 1,000 characters is refused naming filter", async () => {
  const t = await testApp();
  try {
    const res = await t.call("POST", "/subscriptions", { url: hook, filter: "$.data.a ==== 1" });
    assert.equal(res.status, 400);
    const { error } = await json(res);
    assert.equal(
      error.message,
      'Invalid field "filter": is not a valid SQL/JSON path: syntax error at or near "==" of jsonpath input',
    );
    assert.deepEqual(error.details.map((d: { field: string }) => d.field), ["filter"]);
    const long = `$.data.a == "${"x".repeat(990)}"`;
    assert.equal(long.length, 1004);
    const bad = ["", '$ ? (@ like_regex "(")', long, 42, "a\0b"];
    for (const filter of bad) {
      await assertInvalidField(
        await t.call("POST", "/subscriptions", { url: hook, filter }),
        "filter",
        `create: ${JSON.stringify(filter).slice(0, 40)}`,
      );
    }
    const sub = await json(await t.call("POST", "/subscriptions", { url: hook }));
    assert.equal(sub.filter, null);
    for (const filter of [...bad, "$.data.a ==== 1"]) {
      await assertInvalidField(
        await t.call("PATCH", `/subscriptions/${sub.id}`, { filter }),
        "filter",
        `patch: ${JSON.stringify(filter).slice(0, 40)}`,
      );
    }
    const filter = '$.data.amount >= 100 && $.data.currency == "EUR"';
    const set = await json(await t.call("PATCH", `/subscriptions/${sub.id}`, { filter }));
    assert.equal(set.filter, filter, "shown as written");
    const cleared = await json(await t.call("PATCH", `/subscriptions/${sub.id}`, { filter: null }));
    assert.equal(cleared.filter, null);
  } finally {
    await t.close();
  }
});

Deno.test("format is standard by default, or cloudevents; anything else is refused naming format", async () => {
  const t = await testApp();
  try {
    const sub = await json(await t.call("POST", "/subscriptions", { url: hook }));
    assert.equal(sub.format, "standard");
    const ce = await json(
      await t.call("PATCH", `/subscriptions/${sub.id}`, { format: "cloudevents" }),
    );
    assert.equal(ce.format, "cloudevents");
    for (const format of ["binary", "", null, 1]) {
      await assertInvalidField(
        await t.call("POST", "/subscriptions", { url: hook, format }),
        "format",
      );
      await assertInvalidField(
        await t.call("PATCH", `/subscriptions/${sub.id}`, { format }),
        "format",
      );
    }
  } finally {
    await t.close();
  }
});

Deno.test("POST /filters/test answers whether an event passes, as fan-out decides", async () => {
  const t = await testApp();
  try {
    const matches = async (filter: string, event: Record<string, unknown>) => {
      const res = await t.call("POST", "/filters/test", { filter, event });
      assert.equal(res.status, 200, filter);
      return (await json(res)).matches;
    };
    const order = { type: "order.created", data: { amount: 120, currency: "EUR" } };
    const eur = '$.data.amount >= 100 && $.data.currency == "EUR"';
    assert.equal(await matches(eur, order), true);
    assert.equal(await matches(eur, { ...order, data: { amount: 99, currency: "EUR" } }), false);
    // Unknown (a missing field, a type mismatch) is no match.
    assert.equal(await matches(eur, { ...order, data: { currency: "EUR" } }), false);
    assert.equal(
      await matches(eur, { ...order, data: { amount: "lots", currency: "EUR" } }),
      false,
    );
    // A path that is not a predicate is unknown too.
    assert.equal(await matches("$.data.amount", order), false);
    const vip = "exists($.data.customer.vip ? (@ == true))";
    assert.equal(await matches(vip, { type: "a", data: { customer: { vip: true } } }), true);
    assert.equal(await matches(vip, { type: "a", data: { customer: {} } }), false);
    assert.equal(await matches('$.type == "order.created"', order), true);
    assert.equal(await matches('$.source == "shop"', { ...order, source: "shop" }), true);
    assert.equal(await matches("$.source == null", order), true, "no source is null");
    assert.equal(await matches('$.id == "evt_1"', { ...order, id: "evt_1" }), true);
    assert.equal(await matches('$.tenant_id == "acme"', { ...order, tenant_id: "acme" }), true);
    assert.equal(await matches('$.tenant_id == "acme"', order), false);

    const bad = await t.call("POST", "/filters/test", { filter: "$.a ==== 1", event: order });
    assert.equal(bad.status, 400);
    const { error } = await json(bad);
    assert.match(error.message, /^Invalid field "filter": .*syntax error/);
    await assertInvalidField(
      await t.call("POST", "/filters/test", { filter: "x".repeat(1001), event: order }),
      "filter",
    );
    await assertInvalidField(
      await t.call("POST", "/filters/test", { event: order }),
      "filter",
    );
    await assertInvalidField(
      await t.call("POST", "/filters/test", { filter: eur, event: { type: "a" } }),
      "event.data",
    );
  } finally {
    await t.close();
  }
});

Deno.test("every key may test a filter", async () => {
  const admin = "admin-key-0123456789";
  const t = await testApp({ apiKeys: [admin] });
  try {
    const body = { filter: "$.data.n == 1", event: { type: "a", data: { n: 1 } } };
    const scopes = [{ scope: "publish" }, { scope: "tenant", tenant_id: "acme" }];
    // Both made before either is used: the key table is read once and then every second.
    const keys = [];
    for (const scope of scopes) {
      keys.push((await json(await t.call("POST", "/api-keys", scope, bearer(admin)))).key);
    }
    for (const [i, key] of keys.entries()) {
      const res = await t.call("POST", "/filters/test", body, bearer(key));
      assert.equal(res.status, 200, scopes[i]!.scope);
      assert.deepEqual(await json(res), { matches: true });
    }
  } finally {
    await t.close();
  }
});
