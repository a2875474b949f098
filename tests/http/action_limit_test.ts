import assert from "node:assert/strict";
import { Hono } from "hono";
import { DatabaseOutage } from "../../src/observability/outage.ts";
import { silentLogger } from "../../src/observability/log.ts";
import { actionLimit } from "../../src/http/action_limit.ts";
import { errorResponse } from "../../src/http/error_handler.ts";
import { json, testApp } from "../helpers/app.ts";

const keys = ["key-one-0123456789abcdef", "key-two-0123456789abcdef"];
const as = (key: string) => ({ authorization: `Bearer ${key}` });

Deno.test("test sends, recoveries and retries share a rate per API key: beyond it 429 rate_limited with Retry-After", async () => {
  const t = await testApp({ actionRateLimit: 2, apiKeys: keys });
  try {
    const created = await t.call("POST", "/subscriptions", {
      id: "sub_a",
      url: "https://example.com/hook",
      event_types: ["*"],
    }, as(keys[0]!));
    assert.equal(created.status, 201);
    const test = (key: string) => t.call("POST", "/subscriptions/sub_a/test", undefined, as(key));
    assert.deepEqual([(await test(keys[0]!)).status, (await test(keys[0]!)).status], [202, 202]);
    const refused = await test(keys[0]!);
    assert.equal(refused.status, 429);
    assert.equal(refused.headers.get("retry-after"), "30");
    const body = await json(refused);
    assert.equal(body.error.code, "rate_limited");
    assert.match(body.error.message, /ACTION_RATE_LIMIT is 2 a minute/);
    // The same bucket for every such route; another key has its own.
    const retry = await t.call("POST", "/events/evt_none/retry", undefined, as(keys[0]!));
    assert.equal(retry.status, 429);
    assert.equal((await test(keys[1]!)).status, 202);
    // Other routes are not counted.
    assert.equal(
      (await t.call("GET", "/subscriptions/sub_a", undefined, as(keys[0]!))).status,
      200,
    );
  } finally {
    await t.close();
  }
});

Deno.test("the rate refills evenly over the minute", async () => {
  let now = 0;
  const app = new Hono();
  // No database behind this app: nothing here is an outage.
  const outage = new DatabaseOutage(silentLogger, { probe: () => Promise.resolve() });
  app.onError((err, c) => errorResponse(err, c, { log: silentLogger, outage }));
  app.use(actionLimit({ perMinute: 6, now: () => now }));
  app.post("/x", (c) => c.text("ok"));
  const statuses = async (n: number) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push((await app.request("/x", { method: "POST" })).status);
    return out;
  };
  assert.deepEqual(await statuses(7), [200, 200, 200, 200, 200, 200, 429]);
  now += 9_999;
  assert.deepEqual(await statuses(1), [429]);
  now += 1;
  assert.deepEqual(await statuses(2), [200, 429]);
});
