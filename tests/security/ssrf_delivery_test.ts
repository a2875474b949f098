import assert from "node:assert/strict";
import { insertUncheckedSubscription, testDatabase } from "../helpers/db.ts";
import { startReceiver } from "../helpers/receiver.ts";
import { eventually, startTestService } from "../helpers/service.ts";
import { apiClient, overHttp } from "../helpers/http.ts";

const apiKey = "test-production-key";

/** A service with the given settings, a receiver on 127.0.0.1, and a subscription to it. */
async function setup(env: Record<string, string>, url: (receiver: string) => string) {
  const db = await testDatabase();
  const receiver = startReceiver();
  const svc = await startTestService(db, { env: { DISPATCH_API_KEYS: apiKey, ...env } });
  await insertUncheckedSubscription(db.sql, { id: "sub_local", url: url(receiver.url) });
  const api = apiClient(overHttp(svc.url), { key: apiKey });
  return {
    db,
    receiver,
    api,
    async finished(id: string) {
      return await eventually(async () => {
        const e = await api("GET", `/events/${id}`);
        return ["delivered", "failed"].includes(e.status) ? e : undefined;
      }, { what: `event ${id} to finish` });
    },
    async close() {
      await svc.stop();
      await receiver.close();
      await db.close();
    },
  };
}

Deno.test("in production a url that resolves to 127.0.0.1 is refused at delivery: one blocked attempt, nothing sent", async () => {
  const t = await setup(
    { DISPATCH_ENV: "production", DISPATCH_API_KEYS: apiKey, MAX_ATTEMPTS: "5" },
    (url) => url.replace("127.0.0.1", "localhost"),
  );
  try {
    await t.api("POST", "/events", { id: "evt_ssrf", type: "a", data: {} });
    const event = await t.finished("evt_ssrf");
    assert.equal(event.status, "failed");
    const [delivery] = (await t.api("GET", "/events/evt_ssrf/deliveries")).data;
    assert.equal(delivery.attempts, 1, "a blocked delivery is not retried");
    assert.match(delivery.last_error, /^Refused to deliver to "localhost" \(127\.0\.0\.1\)/);
    const attempts = (await t.api("GET", "/events/evt_ssrf/attempts")).data;
    assert.equal(attempts.length, 1);
    assert.equal(attempts[0].error_class, "blocked");
    assert.equal(attempts[0].status_code, null);
    assert.equal(
      attempts[0].error,
      'Refused to deliver to "localhost" (127.0.0.1): loopback targets are not allowed ' +
        "(set ALLOW_PRIVATE_TARGETS=true or ALLOWED_TARGET_CIDRS)",
    );
    // A request that slipped through would have arrived by now.
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(t.receiver.received.length, 0);
  } finally {
    await t.close();
  }
});

Deno.test("ALLOWED_TARGET_CIDRS lifts the refusal for its range only", async () => {
  const t = await setup(
    { ALLOW_PRIVATE_TARGETS: "false", ALLOWED_TARGET_CIDRS: "127.0.0.0/8" },
    (url) => url,
  );
  try {
    await t.api("POST", "/events", { id: "evt_ok", type: "a", data: {} });
    assert.equal((await t.finished("evt_ok")).status, "delivered");
    assert.equal(t.receiver.received.length, 1);
    // ::1 is loopback too, but outside the allowed range.
    await t.db.sql`UPDATE subscriptions SET url = 'http://[::1]:9/hook'`;
    await t.api("POST", "/events", { id: "evt_v6", type: "a", data: {} });
    assert.equal((await t.finished("evt_v6")).status, "failed");
    const [attempt] = (await t.api("GET", "/events/evt_v6/attempts")).data;
    assert.equal(attempt.error_class, "blocked");
  } finally {
    await t.close();
  }
});
