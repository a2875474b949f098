/**
 * A subscription's `auth` through the API: shown without its secret part,
 * replaced whole by a PATCH, removed by null, and every bad value a 400
 * naming the field.
 */
import assert from "node:assert/strict";
import { assertInvalidField, json, testApp } from "../helpers/app.ts";

const url = "https://example.com/hooks";
const oauth = {
  type: "oauth2_client_credentials",
  token_url: "https://auth.example.com/oauth/token",
  client_id: "dispatch",
  client_secret: "client-secret-value",
};

/** Each type as given, and as every representation shows it. */
const shown: [Record<string, string>, Record<string, unknown>][] = [
  [{ type: "basic", username: "alice", password: "basic-password-value" }, {
    type: "basic",
    username: "alice",
  }],
  [{ type: "bearer", token: "bearer-token-value" }, { type: "bearer" }],
  [oauth, {
    type: "oauth2_client_credentials",
    token_url: oauth.token_url,
    client_id: "dispatch",
    scope: null,
    audience: null,
    client_auth: "basic",
  }],
  [{ ...oauth, scope: "hooks", audience: "api", client_auth: "post" }, {
    type: "oauth2_client_credentials",
    token_url: oauth.token_url,
    client_id: "dispatch",
    scope: "hooks",
    audience: "api",
    client_auth: "post",
  }],
];

const secretParts = ["basic-password-value", "bearer-token-value", "client-secret-value"];

Deno.test("auth of each type is shown without its secret part when created, read and listed", async () => {
  const app = await testApp();
  try {
    for (const [auth, expected] of shown) {
      const created = await app.call("POST", "/subscriptions", { url, auth });
      assert.equal(created.status, 201);
      const body = await json(created);
      assert.deepEqual(body.auth, expected);
      assert.deepEqual(
        (await json(await app.call("GET", `/subscriptions/${body.id}`))).auth,
        expected,
      );
    }
    const listed = await app.call("GET", "/subscriptions");
    const text = await listed.text();
    assert.deepEqual(
      JSON.parse(text).data.map((s: { auth: unknown }) => s.auth),
      shown.map((s) => s[1]),
    );
    for (const secret of secretParts) assert.ok(!text.includes(secret), `the list shows ${secret}`);
    const none = await json(await app.call("POST", "/subscriptions", { url }));
    assert.equal(none.auth, null);
  } finally {
    await app.close();
  }
});

Deno.test("a PATCH of auth replaces it whole, null removes it, and leaving it out keeps it", async () => {
  const app = await testApp();
  try {
    const sub = await json(
      await app.call("POST", "/subscriptions", { url, auth: { ...oauth, scope: "hooks" } }),
    );
    const path = `/subscriptions/${sub.id}`;
    const patched = await json(
      await app.call("PATCH", path, { auth: { type: "basic", username: "bob", password: "pw" } }),
    );
    assert.deepEqual(patched.auth, { type: "basic", username: "bob" });
    const [basic] = await app.db.sql`SELECT auth, auth_secret FROM subscriptions`;
    assert.deepEqual(basic, { auth: { type: "basic", username: "bob" }, auth_secret: "pw" });

    const kept = await json(await app.call("PATCH", path, { description: "d" }));
    assert.deepEqual(kept.auth, { type: "basic", username: "bob" });

    const removed = await json(await app.call("PATCH", path, { auth: null }));
    assert.equal(removed.auth, null);
    const [row] = await app.db.sql`SELECT auth, auth_secret FROM subscriptions`;
    assert.deepEqual(row, { auth: null, auth_secret: null });
  } finally {
    await app.close();
  }
});

Deno.test("bad auth is a 400 that names auth or its field", async () => {
  const app = await testApp({ allowPrivateTargets: false });
  const cases: [unknown, string][] = [
    ["basic", "auth"],
    [{ type: "digest" }, "auth.type"],
    [{ username: "a", password: "b" }, "auth.type"],
    [{ type: "basic", username: "a" }, "auth.password"],
    [{ type: "basic", username: "a:b", password: "c" }, "auth.username"],
    [{ type: "basic", username: "a", password: "enc:v1:x" }, "auth.password"],
    [{ type: "basic", username: "a", password: "" }, "auth.password"],
    [{ type: "bearer", token: "two words" }, "auth.token"],
    [{ type: "bearer", token: "t", password: "p" }, "auth.password"],
    [{ ...oauth, token_url: "ftp://auth.example.com/t" }, "auth.token_url"],
    [{ ...oauth, token_url: "https://user:pw@auth.example.com/t" }, "auth.token_url"],
    [{ ...oauth, token_url: "http://10.1.2.3/token" }, "auth.token_url"],
    [{ ...oauth, token_url: "http://localhost:8080/token" }, "auth.token_url"],
    [{ ...oauth, client_id: undefined }, "auth.client_id"],
    [{ ...oauth, client_secret: 7 }, "auth.client_secret"],
    [{ ...oauth, client_auth: "header" }, "auth.client_auth"],
    [{ ...oauth, scope: "" }, "auth.scope"],
  ];
  try {
    const sub = await json(await app.call("POST", "/subscriptions", { url }));
    for (const [auth, field] of cases) {
      const what = JSON.stringify(auth);
      await assertInvalidField(
        await app.call("POST", "/subscriptions", { url, auth }),
        field,
        what,
      );
      await assertInvalidField(
        await app.call("PATCH", `/subscriptions/${sub.id}`, { auth }),
        field,
        `PATCH ${what}`,
      );
    }
    const res = await app.call("POST", "/subscriptions", { url, auth: { type: "digest" } });
    assert.match((await json(res)).error.message, /must be one of "basic", "bearer"/);
    const [row] = await app.db.sql`SELECT count(*)::int AS n FROM subscriptions`;
    assert.equal(row?.n, 1, "no bad request wrote a subscription");
  } finally {
    await app.close();
  }
});

Deno.test("auth and a custom authorization header cannot both be set, on create or by a PATCH of either", async () => {
  const app = await testApp();
  try {
    const bearer = { type: "bearer", token: "bearer-token-value" };
    const both = await app.call("POST", "/subscriptions", {
      url,
      auth: bearer,
      headers: { Authorization: "Bearer other" },
    });
    await assertInvalidField(both, "auth");
    const withAuth = await json(await app.call("POST", "/subscriptions", { url, auth: bearer }));
    const withHeader = await json(
      await app.call("POST", "/subscriptions", { url, headers: { authorization: "Bearer x" } }),
    );
    await assertInvalidField(
      await app.call("PATCH", `/subscriptions/${withAuth.id}`, {
        headers: { authorization: "Bearer x" },
      }),
      "auth",
    );
    await assertInvalidField(
      await app.call("PATCH", `/subscriptions/${withHeader.id}`, { auth: bearer }),
      "auth",
    );
    // Replacing one by the other in one PATCH is fine.
    const swapped = await app.call("PATCH", `/subscriptions/${withHeader.id}`, {
      auth: bearer,
      headers: {},
    });
    assert.equal(swapped.status, 200);
    const other = await app.call("PATCH", `/subscriptions/${withAuth.id}`, {
      headers: { "x-other": "1" },
    });
    assert.equal(other.status, 200);
  } finally {
    await app.close();
  }
});
