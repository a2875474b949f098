import assert from "node:assert/strict";
import { Webhook } from "standardwebhooks";
import { testDatabase } from "../helpers/db.ts";
import { type Received, startReceiver } from "../helpers/receiver.ts";
import { eventually, startTestService } from "../helpers/service.ts";

type Responder = (req: Received, index: number) => Response | Promise<Response>;

/** One service, one schema and one receiver per test, all closed at the end. */
async function setup(respond?: Responder, env: Record<string, string> = {}) {
  const db = await testDatabase();
  const receiver = startReceiver(respond);
  const svc = await startTestService(db, { env });
  return {
    db,
    receiver,
    svc,
    api: svc.api,
    async close() {
      await svc.stop();
      await receiver.close();
      await db.close();
    },
  };
}

// deno-lint-ignore no-explicit-any -- JSON from the API
async function finalStatus(api: (m: string, p: string) => Promise<any>, id: string) {
  return await eventually(async () => {
    const e = await api("GET", `/events/${id}`);
    return ["delivered", "failed"].includes(e.status) ? e : undefined;
  }, { what: `event ${id} to finish` });
}

Deno.test("a delivery carries the envelope and headers, signed so standardwebhooks verifies it", async () => {
  const t = await setup();
  try {
    const sub = await t.api("POST", "/subscriptions", { url: t.receiver.url });
    await t.api("POST", "/events", {
      id: "evt_sig",
      type: "order.created",
      source: "billing",
      data: { n: 1 },
    });
    const [got] = await t.receiver.waitFor(1);
    const h = got!.headers;
    const body = JSON.parse(got!.body);
    assert.deepEqual(Object.keys(body), ["id", "type", "source", "timestamp", "data"]);
    assert.equal(body.id, "evt_sig");
    assert.deepEqual(body.data, { n: 1 });
    assert.equal(h.get("content-type"), "application/json");
    assert.equal(h.get("webhook-id"), "evt_sig");
    assert.equal(h.get("x-dispatch-event-id"), "evt_sig");
    assert.equal(h.get("x-dispatch-event-type"), "order.created");
    assert.equal(h.get("x-dispatch-attempt"), "1");
    assert.equal(h.get("x-dispatch-subscription-id"), sub.id);
    assert.match(h.get("user-agent") ?? "", /^Dispatch\/\d+\.\d+\.\d+$/);
    assert.equal(h.get("x-dispatch-timestamp"), h.get("webhook-timestamp"));
    assert.equal(h.get("x-dispatch-signature"), h.get("webhook-signature"));
    const headers = Object.fromEntries(h);
    const verified = new Webhook(sub.secret).verify(got!.body, headers);
    assert.deepEqual(verified, body);
    assert.throws(() => new Webhook(sub.secret).verify(got!.body.replace("1", "2"), headers));
    assert.throws(() =>
      new Webhook(sub.secret).verify(got!.body, { ...headers, "webhook-id": "evt_other" })
    );
    const event = await finalStatus(t.api, "evt_sig");
    assert.equal(event.status, "delivered");
  } finally {
    await t.close();
  }
});

Deno.test("a raw (non-whsec) secret signs with its UTF-8 bytes", async () => {
  const t = await setup();
  try {
    const secret = "a-raw-secret-of-enough-length";
    await t.api("POST", "/subscriptions", { url: t.receiver.url, secret });
    await t.api("POST", "/events", { type: "a", data: {} });
    const [got] = await t.receiver.waitFor(1);
    const wh = new Webhook(secret, { format: "raw" });
    assert.ok(wh.verify(got!.body, Object.fromEntries(got!.headers)));
  } finally {
    await t.close();
  }
});

Deno.test("fan-out delivers to each subscription; one failing does not affect the others", async () => {
  const t = await setup();
  const failing = startReceiver(() => new Response("down", { status: 500 }));
  try {
    const ok1 = await t.api("POST", "/subscriptions", { url: t.receiver.url });
    const ok2 = await t.api("POST", "/subscriptions", { url: t.receiver.url + "?b" });
    const bad = await t.api("POST", "/subscriptions", { url: failing.url, max_attempts: 2 });
    await t.api("POST", "/events", { id: "evt_fan", type: "a", data: {} });
    const event = await finalStatus(t.api, "evt_fan");
    assert.equal(event.status, "failed");
    assert.deepEqual(event.deliveries, {
      total: 3,
      pending: 0,
      processing: 0,
      retrying: 0,
      delivered: 2,
      failed: 1,
    });
    assert.equal(t.receiver.received.length, 2);
    assert.equal(failing.received.length, 2);
    const { data } = await t.api("GET", "/events/evt_fan/deliveries");
    const by = Object.fromEntries(
      data.map((d: { subscription_id: string }) => [d.subscription_id, d]),
    );
    assert.equal(by[ok1.id].status, "delivered");
    assert.equal(by[ok2.id].status, "delivered");
    assert.equal(by[bad.id].status, "failed");
    assert.equal(by[bad.id].attempts, 2);
    assert.equal(by[bad.id].last_status_code, 500);
    const attempts = (await t.api("GET", "/events/evt_fan/attempts")).data;
    const failed = attempts.filter((a: { subscription_id: string }) =>
      a.subscription_id === bad.id
    );
    assert.deepEqual(
      failed.map((a: Record<string, unknown>) => [a.attempt, a.status_code, a.error_class]),
      [
        [1, 500, "http_status"],
        [2, 500, "http_status"],
      ],
    );
    assert.equal(failed[0].response_body, "down");
    assert.deepEqual(failed[0].response_headers, { "content-type": "text/plain;charset=UTF-8" });
  } finally {
    await failing.close();
    await t.close();
  }
});

Deno.test("a failing endpoint is retried until it succeeds, and others are not sent again", async () => {
  const flaky = startReceiver((_r, i) => new Response(null, { status: i < 2 ? 503 : 204 }));
  const t = await setup();
  try {
    await t.api("POST", "/subscriptions", { url: t.receiver.url });
    await t.api("POST", "/subscriptions", { url: flaky.url, max_attempts: 5 });
    await t.api("POST", "/events", { id: "evt_retry", type: "a", data: {} });
    const event = await finalStatus(t.api, "evt_retry");
    assert.equal(event.status, "delivered");
    assert.equal(flaky.received.length, 3);
    assert.deepEqual(flaky.received.map((r) => r.headers.get("x-dispatch-attempt")), [
      "1",
      "2",
      "3",
    ]);
    // Same event id on every retry: the receiver's dedupe key.
    assert.ok(flaky.received.every((r) => r.headers.get("webhook-id") === "evt_retry"));
    assert.equal(t.receiver.received.length, 1);
  } finally {
    await flaky.close();
    await t.close();
  }
});

Deno.test("an endpoint that always fails exhausts MAX_ATTEMPTS and the delivery fails", async () => {
  const t = await setup(() => new Response("no", { status: 400 }), { MAX_ATTEMPTS: "4" });
  try {
    await t.api("POST", "/subscriptions", { url: t.receiver.url });
    await t.api("POST", "/events", { id: "evt_exhaust", type: "a", data: {} });
    const event = await finalStatus(t.api, "evt_exhaust");
    assert.equal(event.status, "failed");
    assert.equal(t.receiver.received.length, 4);
    const [d] = (await t.api("GET", "/events/evt_exhaust/deliveries")).data;
    assert.equal(d.attempts, 4);
    assert.equal(d.next_attempt_at, null);
    assert.match(d.last_error, /400/);
  } finally {
    await t.close();
  }
});

Deno.test("a slow endpoint times out and the attempt says so", async () => {
  const release = Promise.withResolvers<void>();
  const t = await setup(async () => {
    await release.promise;
    return new Response("late");
  }, { DELIVERY_TIMEOUT_MS: "200", MAX_ATTEMPTS: "1" });
  try {
    await t.api("POST", "/subscriptions", { url: t.receiver.url });
    await t.api("POST", "/events", { id: "evt_slow", type: "a", data: {} });
    assert.equal((await finalStatus(t.api, "evt_slow")).status, "failed");
    const [a] = (await t.api("GET", "/events/evt_slow/attempts")).data;
    assert.equal(a.error_class, "timeout");
    assert.equal(a.status_code, null);
    assert.ok(a.duration_ms >= 200, String(a.duration_ms));
  } finally {
    release.resolve();
    await t.close();
  }
});

Deno.test("connection refused and DNS failures are recorded with their class", async () => {
  const t = await setup(undefined, { MAX_ATTEMPTS: "1" });
  try {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const closedPort = (l.addr as Deno.NetAddr).port;
    l.close();
    await t.api("POST", "/subscriptions", {
      id: "refused",
      url: `http://127.0.0.1:${closedPort}/`,
      event_types: ["refused"],
    });
    await t.api("POST", "/subscriptions", {
      id: "dns",
      url: "http://dispatch-test.invalid/",
      event_types: ["dns"],
    });
    await t.api("POST", "/events", { id: "evt_refused", type: "refused", data: {} });
    await t.api("POST", "/events", { id: "evt_dns", type: "dns", data: {} });
    await finalStatus(t.api, "evt_refused");
    await finalStatus(t.api, "evt_dns");
    const [refused] = (await t.api("GET", "/events/evt_refused/attempts")).data;
    assert.equal(refused.error_class, "connection_refused");
    assert.match(refused.error, /refused/i);
    const [dns] = (await t.api("GET", "/events/evt_dns/attempts")).data;
    assert.equal(dns.error_class, "dns");
    assert.match(dns.error, /dispatch-test\.invalid/);
  } finally {
    await t.close();
  }
});

Deno.test("410 Gone fails the delivery at once and disables the subscription", async () => {
  const t = await setup(() => new Response("gone", { status: 410 }));
  try {
    const sub = await t.api("POST", "/subscriptions", { url: t.receiver.url });
    await t.api("POST", "/events", { id: "evt_gone", type: "a", data: {} });
    assert.equal((await finalStatus(t.api, "evt_gone")).status, "failed");
    assert.equal(t.receiver.received.length, 1);
    const got = await t.api("GET", `/subscriptions/${sub.id}`);
    assert.equal(got.active, false);
    assert.equal(got.disabled_reason, "gone");
    const next = await t.api("POST", "/events", { type: "a", data: {} });
    assert.equal(next.status, "no_subscribers");
  } finally {
    await t.close();
  }
});

Deno.test("3xx is a failure and the redirect is not followed", async () => {
  const target = startReceiver();
  const t = await setup(() => Response.redirect(target.url, 302), { MAX_ATTEMPTS: "1" });
  try {
    await t.api("POST", "/subscriptions", { url: t.receiver.url });
    await t.api("POST", "/events", { id: "evt_302", type: "a", data: {} });
    assert.equal((await finalStatus(t.api, "evt_302")).status, "failed");
    const [a] = (await t.api("GET", "/events/evt_302/attempts")).data;
    assert.equal(a.error_class, "redirect");
    assert.equal(a.status_code, 302);
    assert.equal(target.received.length, 0);
  } finally {
    await target.close();
    await t.close();
  }
});

Deno.test("Retry-After on 429 delays the next attempt by at least that long", async () => {
  const t = await setup(
    (_r, i) =>
      i === 0
        ? new Response(null, { status: 429, headers: { "retry-after": "1" } })
        : new Response("ok"),
    { RETRY_MAX_DELAY_MS: "5000" },
  );
  try {
    await t.api("POST", "/subscriptions", { url: t.receiver.url });
    await t.api("POST", "/events", { id: "evt_429", type: "a", data: {} });
    assert.equal((await finalStatus(t.api, "evt_429")).status, "delivered");
    const [first, second] = t.receiver.received;
    assert.ok(second!.at - first!.at >= 950, `retried after ${second!.at - first!.at} ms`);
  } finally {
    await t.close();
  }
});

Deno.test("POST /events/:id/retry re-queues failed deliveries but not those of a disabled subscription", async () => {
  let up = false;
  const t = await setup(() => new Response(null, { status: up ? 200 : 500 }), {
    MAX_ATTEMPTS: "1",
  });
  try {
    const a = await t.api("POST", "/subscriptions", { url: t.receiver.url });
    const b = await t.api("POST", "/subscriptions", { url: t.receiver.url + "?b" });
    await t.api("POST", "/events", { id: "evt_replay", type: "a", data: {} });
    assert.equal((await finalStatus(t.api, "evt_replay")).status, "failed");
    await t.api("PATCH", `/subscriptions/${b.id}`, { active: false });
    up = true;
    const result = await t.api("POST", "/events/evt_replay/retry");
    assert.deepEqual(result, {
      requeued: [a.id],
      skipped: [{ subscription_id: b.id, reason: "subscription disabled" }],
    });
    const event = await eventually(async () => {
      const e = await t.api("GET", "/events/evt_replay");
      return e.deliveries.delivered === 1 && e.deliveries.processing === 0 ? e : undefined;
    });
    assert.equal(event.deliveries.failed, 1);
    assert.equal((await t.api("GET", `/subscriptions/${b.id}`)).active, false);
    assert.equal(t.receiver.received.length, 3);
  } finally {
    await t.close();
  }
});

Deno.test("after rotate-secret both the new and the previous secret sign", async () => {
  const t = await setup();
  try {
    const sub = await t.api("POST", "/subscriptions", { url: t.receiver.url });
    const { secret } = await t.api("POST", `/subscriptions/${sub.id}/rotate-secret`);
    await t.api("POST", "/events", { type: "a", data: {} });
    const [got] = await t.receiver.waitFor(1);
    const headers = Object.fromEntries(got!.headers);
    assert.equal(headers["webhook-signature"]!.split(" ").length, 2);
    assert.ok(new Webhook(secret).verify(got!.body, headers));
    assert.ok(new Webhook(sub.secret).verify(got!.body, headers));
  } finally {
    await t.close();
  }
});

Deno.test("a per-subscription max_attempts overrides MAX_ATTEMPTS", async () => {
  const t = await setup(() => new Response(null, { status: 500 }), { MAX_ATTEMPTS: "5" });
  try {
    await t.api("POST", "/subscriptions", { url: t.receiver.url, max_attempts: 1 });
    await t.api("POST", "/events", { id: "evt_once", type: "a", data: {} });
    assert.equal((await finalStatus(t.api, "evt_once")).status, "failed");
    assert.equal(t.receiver.received.length, 1);
  } finally {
    await t.close();
  }
});

Deno.test("POST /events/:id/retry gives failed deliveries a fresh attempt budget", async () => {
  const t = await setup(() => new Response(null, { status: 500 }), { MAX_ATTEMPTS: "2" });
  try {
    await t.api("POST", "/subscriptions", { url: t.receiver.url });
    await t.api("POST", "/events", { id: "evt_budget", type: "a", data: {} });
    assert.equal((await finalStatus(t.api, "evt_budget")).status, "failed");
    await t.api("POST", "/events/evt_budget/retry");
    await eventually(async () => {
      const e = await t.api("GET", "/events/evt_budget");
      return e.status === "failed" && t.receiver.received.length >= 4 ? e : undefined;
    }, { what: "the second budget to be spent" });
    const attempts = await t.api("GET", "/events/evt_budget/attempts");
    // deno-lint-ignore no-explicit-any -- JSON from the API
    assert.deepEqual(attempts.data.map((a: any) => a.attempt), [1, 2, 3, 4]);
    assert.deepEqual(
      t.receiver.received.map((r) => r.headers.get("x-dispatch-attempt")),
      ["1", "2", "3", "4"],
    );
  } finally {
    await t.close();
  }
});

Deno.test("a subscription disabled while its delivery waits to be retried is not sent to again", async () => {
  // Retry-After pins the wait at 2 s, where full jitter alone could retry at once.
  const t = await setup(
    () => new Response(null, { status: 503, headers: { "retry-after": "2" } }),
    { MAX_ATTEMPTS: "5", RETRY_BASE_DELAY_MS: "400", RETRY_MAX_DELAY_MS: "2000" },
  );
  try {
    const sub = await t.api("POST", "/subscriptions", { url: t.receiver.url });
    await t.api("POST", "/events", { id: "evt_paused", type: "a", data: {} });
    await eventually(async () => {
      const [d] = await t.api("GET", "/events/evt_paused/deliveries").then((r) => r.data);
      return d?.status === "retrying" ? d : undefined;
    }, { what: "the first attempt to fail" });
    await t.api("PATCH", `/subscriptions/${sub.id}`, { active: false });
    const [d] = await eventually(async () => {
      const r = await t.api("GET", "/events/evt_paused/deliveries");
      return r.data[0].status === "failed" ? r.data : undefined;
    }, { what: "the delivery to be abandoned" });
    assert.equal(d.last_error, "Subscription disabled");
    assert.equal(t.receiver.received.length, 1);
  } finally {
    await t.close();
  }
});

Deno.test("a rotated-out secret stops signing once its grace period is over", async () => {
  const t = await setup();
  try {
    const sub = await t.api("POST", "/subscriptions", { url: t.receiver.url });
    const { secret } = await t.api("POST", `/subscriptions/${sub.id}/rotate-secret`);
    await t.db
      .sql`UPDATE subscriptions SET previous_secret_expires_at = now() - interval '1 second'`;
    await t.api("POST", "/events", { type: "a", data: {} });
    const [got] = await t.receiver.waitFor(1);
    const headers = Object.fromEntries(got!.headers);
    assert.equal(headers["webhook-signature"]!.split(" ").length, 1);
    assert.ok(new Webhook(secret).verify(got!.body, headers));
    assert.throws(() => new Webhook(sub.secret).verify(got!.body, headers));
  } finally {
    await t.close();
  }
});

Deno.test("a subscription created with a deleted one's id inherits none of its deliveries", async () => {
  const old = startReceiver(() => new Response(null, { status: 500 }));
  const t = await setup(undefined, { MAX_ATTEMPTS: "1" });
  try {
    await t.api("POST", "/subscriptions", { id: "sub_r", url: old.url, event_types: ["order.*"] });
    await t.api("POST", "/events", { id: "evt_old", type: "order.created", data: {} });
    assert.equal((await finalStatus(t.api, "evt_old")).status, "failed");
    await t.api("DELETE", "/subscriptions/sub_r");
    // The same id again, for other event types and another endpoint.
    await t.api("POST", "/subscriptions", {
      id: "sub_r",
      url: t.receiver.url,
      event_types: ["invoice.*"],
    });
    const result = await t.api("POST", "/events/evt_old/retry");
    assert.deepEqual(result, {
      requeued: [],
      skipped: [{ subscription_id: "sub_r", reason: "subscription deleted" }],
    });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(t.receiver.received.length, 0);
    assert.equal(old.received.length, 1);
  } finally {
    await old.close();
    await t.close();
  }
});

Deno.test("a delivery whose subscription is deleted while it is in flight is abandoned, not left to its lease", async () => {
  const release = Promise.withResolvers<void>();
  const t = await setup(async () => {
    await release.promise;
    return new Response(null, { status: 500 });
  }, { MAX_ATTEMPTS: "3" });
  try {
    const sub = await t.api("POST", "/subscriptions", { url: t.receiver.url });
    await t.api("POST", "/events", { id: "evt_orphan", type: "a", data: {} });
    await t.receiver.waitFor(1);
    await t.api("DELETE", `/subscriptions/${sub.id}`);
    // The attempt fails after the delete: the delivery goes back to retrying, then is claimed
    // with no subscription to join (DELIVERY_TIMEOUT_MS 2000 makes its lease 9 s).
    release.resolve();
    const d = await eventually(async () => {
      const r = await t.api("GET", "/events/evt_orphan/deliveries");
      return r.data[0].status === "failed" ? r.data[0] : undefined;
    }, { what: "the delivery to be abandoned", timeoutMs: 5_000 });
    assert.equal(d.last_error, "Subscription deleted");
    assert.equal(t.receiver.received.length, 1);
  } finally {
    release.resolve();
    await t.close();
  }
});
