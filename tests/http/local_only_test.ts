import assert from "node:assert/strict";
import { json, testApp } from "../helpers/app.ts";

Deno.test("an open API serves only loopback names and the listening address; the probes answer any", async () => {
  const t = await testApp({ hostname: "192.168.1.5" });
  try {
    for (
      const host of ["localhost:8080", "127.0.0.1:1", "[::1]:8080", "localhost", "192.168.1.5:8080"]
    ) {
      const res = await t.call("GET", `http://${host}/subscriptions`);
      assert.equal(res.status, 200, host);
      await res.body?.cancel();
    }
    // A rebound name, or any other, is refused before any route runs.
    for (const host of ["rebind.example:8080", "127.0.0.2:8080", "localhost.example"]) {
      const res = await t.call("GET", `http://${host}/events`);
      assert.equal(res.status, 403, host);
      const { error } = await json(res);
      assert.equal(error.code, "forbidden");
      assert.equal(
        error.message,
        `Host "${host}" is not served while the API is open: call it as localhost, 127.0.0.1, [::1], 192.168.1.5, or set DISPATCH_API_KEYS`,
      );
    }
    const probe = await t.call("GET", "http://10.0.0.7:8080/healthz");
    assert.equal(probe.status, 200);
    await probe.body?.cancel();
  } finally {
    await t.close();
  }
});

Deno.test("an open API refuses a cross-origin request that changes state, and a body that is not JSON", async () => {
  const t = await testApp();
  try {
    await (await t.call("POST", "/subscriptions", { id: "sub_1", url: "https://example.com/" }))
      .body?.cancel();
    const rotate = "http://localhost:8080/subscriptions/sub_1/rotate-secret";
    // A form another site posts, with a body or without one.
    const form = await t.call("POST", rotate, "a=b", {
      "content-type": "application/x-www-form-urlencoded",
      // What a real request says; one built in the test says nothing of its length.
      "content-length": "3",
    });
    assert.equal(form.status, 415);
    assert.match(
      (await json(form)).error.message,
      /^Unsupported Content-Type "application\/x-www-form-urlencoded"/,
    );
    const crossSite: Record<string, string>[] = [
      { origin: "https://evil.example" },
      { origin: "null" },
      { origin: "http://localhost:3000" },
      { "sec-fetch-site": "cross-site" },
      { "sec-fetch-site": "same-site" },
    ];
    for (const headers of crossSite) {
      for (const method of ["POST", "DELETE"]) {
        const path = method === "POST" ? rotate : "http://localhost:8080/subscriptions/sub_1";
        const res = await t.call(method, path, undefined, headers);
        assert.equal(res.status, 403, `${method} ${JSON.stringify(headers)}`);
        const { error } = await json(res);
        assert.match(
          error.message,
          new RegExp(`^Cross-origin ${method} refused while the API is open`),
        );
      }
    }
    // Reads from any page are the browser's to withhold; a page of the API's own origin, curl
    // (no Origin) and a typed-in request may change state.
    const read = await t.call("GET", "http://localhost:8080/subscriptions/sub_1", undefined, {
      origin: "https://evil.example",
    });
    assert.equal(read.status, 200);
    await read.body?.cancel();
    const own = await t.call("POST", rotate, undefined, {
      origin: "http://localhost:8080",
      "sec-fetch-site": "same-origin",
    });
    assert.equal(own.status, 200);
    await own.body?.cancel();
    const curl = await t.call("DELETE", "http://localhost:8080/subscriptions/sub_1");
    assert.equal(curl.status, 204);
  } finally {
    await t.close();
  }
});

Deno.test("with API keys any Host is served and a key's request from a web page is its own business", async () => {
  const t = await testApp({ apiKeys: ["admin-key"] });
  try {
    const res = await t.call("GET", "http://dispatch.internal:8080/subscriptions", undefined, {
      authorization: "Bearer admin-key",
      origin: "https://console.example",
    });
    assert.equal(res.status, 200);
    await res.body?.cancel();
    // JSON-only bodies hold whatever the key.
    const form = await t.call(
      "POST",
      "http://dispatch.internal/subscriptions/x/rotate-secret",
      "a",
      {
        authorization: "Bearer admin-key",
        "content-type": "text/plain",
        "content-length": "1",
      },
    );
    assert.equal(form.status, 415);
    await form.body?.cancel();
  } finally {
    await t.close();
  }
});
