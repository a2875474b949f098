import assert from "node:assert/strict";
import { json, testApp } from "../helpers/app.ts";
import { bearer } from "../helpers/http.ts";

Deno.test("a malformed Authorization header answers 401 without quoting the header", async () => {
  const t = await testApp({ apiKeys: ["k1-secret"] });
  try {
    for (
      const header of [
        "",
        "Bearer",
        "Bearer ",
        "Basic azEtc2VjcmV0Og==",
        "Bearer k1-secret extra",
        "Token k1-secret",
        "k1-secret",
        "Bearer k1-secret\u00a0",
        "Bearer k1-séc",
      ]
    ) {
      const res = await t.call("GET", "/events", undefined, { authorization: header });
      assert.equal(res.status, 401, JSON.stringify(header));
      assert.equal(res.headers.get("www-authenticate"), 'Bearer realm="dispatch"');
      const { error } = await json(res);
      assert.equal(error.code, "unauthorized");
      assert.match(error.message, /^Malformed Authorization header: send "Authorization: Bearer/);
      assert.ok(!error.message.includes("k1-secret"));
    }
  } finally {
    await t.close();
  }
});

Deno.test("the Bearer scheme is case-insensitive and spaces around the key are ignored", async () => {
  const t = await testApp({ apiKeys: ["k1-secret"] });
  try {
    for (const header of ["bearer k1-secret", "BEARER   k1-secret  ", "Bearer\tk1-secret"]) {
      const res = await t.call("GET", "/subscriptions", undefined, { authorization: header });
      assert.equal(res.status, 200, JSON.stringify(header));
      await res.body?.cancel();
    }
  } finally {
    await t.close();
  }
});

Deno.test("a key that is a prefix, an extension or another case of a valid key is refused", async () => {
  const t = await testApp({ apiKeys: ["k1-secret"] });
  try {
    for (const key of ["k1-secre", "k1-secretx", "K1-SECRET"]) {
      const res = await t.call("GET", "/events", undefined, bearer(key));
      assert.equal(res.status, 401, key);
      assert.equal((await json(res)).error.message, "Invalid API key");
    }
  } finally {
    await t.close();
  }
});

Deno.test("every API route needs the key, whatever the method or body", async () => {
  const t = await testApp({ apiKeys: ["k1-secret"] });
  try {
    const routes = [
      ["POST", "/events"],
      ["GET", "/events/evt_1"],
      ["GET", "/events/evt_1/attempts"],
      ["GET", "/events/evt_1/deliveries"],
      ["POST", "/events/evt_1/retry"],
      ["POST", "/subscriptions"],
      ["GET", "/subscriptions/sub_1"],
      ["PATCH", "/subscriptions/sub_1"],
      ["DELETE", "/subscriptions/sub_1"],
      ["POST", "/subscriptions/sub_1/rotate-secret"],
    ];
    for (const [method, path] of routes) {
      const body = method === "POST" || method === "PATCH" ? "{not json" : undefined;
      const res = await t.call(method!, path!, body);
      assert.equal(res.status, 401, `${method} ${path}`);
      await res.body?.cancel();
    }
  } finally {
    await t.close();
  }
});

Deno.test("each of several API keys is accepted, not only the last", async () => {
  const keys = ["first-key-0123456789", "second-key-0123456789", "third-key-0123456789"];
  const t = await testApp({ apiKeys: keys });
  try {
    for (const key of keys) {
      const res = await t.call("GET", "/events", undefined, bearer(key));
      assert.equal(res.status, 200, key);
      await res.body?.cancel();
    }
  } finally {
    await t.close();
  }
});
