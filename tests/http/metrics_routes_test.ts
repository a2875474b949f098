import assert from "node:assert/strict";
import { testApp } from "../helpers/app.ts";

async function scrape(t: Awaited<ReturnType<typeof testApp>>, headers?: HeadersInit) {
  const res = await t.call("GET", "/metrics", undefined, headers);
  return { status: res.status, type: res.headers.get("content-type"), text: await res.text() };
}

Deno.test("/metrics answers in Prometheus text format and counts ingested events", async () => {
  const t = await testApp();
  try {
    await (await t.call("POST", "/subscriptions", { url: "https://example.com/hook" })).text();
    for (const id of ["evt_1", "evt_2", "evt_2"]) {
      await (await t.call("POST", "/events", { id, type: "order.created", data: {} })).text();
    }
    await (await t.call("POST", "/events/batch", {
      events: [{ type: "order.paid", data: {} }, { id: "evt_1", type: "order.created", data: {} }],
    })).text();
    const { status, type, text } = await scrape(t);
    assert.equal(status, 200);
    assert.match(type ?? "", /^text\/plain; version=0\.0\.4/);
    assert.match(text, /^dispatch_events_ingested_total\{type="order\.created"\} 2$/m);
    assert.match(text, /^dispatch_events_ingested_total\{type="order\.paid"\} 1$/m);
    // Three deliveries wait; nothing is claimed without a worker.
    assert.match(text, /^dispatch_deliveries\{status="pending"\} 3$/m);
    assert.match(text, /^dispatch_deliveries\{status="processing"\} 0$/m);
    assert.match(text, /^dispatch_deliveries_in_flight 0$/m);
    assert.match(text, /^dispatch_subscriptions_disabled 0$/m);
    assert.match(text, /^# TYPE dispatch_delivery_attempt_duration_seconds histogram$/m);
  } finally {
    await t.close();
  }
});

Deno.test("/metrics is open with API keys set, unless METRICS_PUBLIC is false", async () => {
  const open = await testApp({ apiKeys: ["k"] });
  try {
    assert.equal((await scrape(open)).status, 200);
  } finally {
    await open.close();
  }
  const closed = await testApp({ apiKeys: ["k"], metricsPublic: false });
  try {
    assert.equal((await scrape(closed)).status, 401);
    assert.equal((await scrape(closed, { authorization: "Bearer k" })).status, 200);
    assert.equal((await closed.call("GET", "/healthz")).status, 200);
  } finally {
    await closed.close();
  }
});
