import assert from "node:assert/strict";
import { createLogger } from "../../src/observability/log.ts";
import { testDatabase } from "../helpers/db.ts";
import { startReceiver } from "../helpers/receiver.ts";
import { eventually, startTestService } from "../helpers/service.ts";

const apiKey = "test-api-key-do-not-print";
const secretsKey = btoa("0123456789abcdef0123456789abcdef");
const signingSecret = "whsec_" + btoa("signing-secret-bytes-0123456789");

Deno.test("log lines are JSON with the documented fields and never print a secret", async () => {
  const db = await testDatabase();
  const receiver = startReceiver((_r, i) => new Response("", { status: i === 0 ? 500 : 200 }));
  const lines: string[] = [];
  const svc = await startTestService(db, {
    env: { DISPATCH_API_KEYS: `${apiKey},second-key`, DISPATCH_SECRETS_KEY: secretsKey },
    log: createLogger({ level: "debug", write: (l) => lines.push(l) }),
  });
  try {
    const call = (method: string, path: string, body: unknown) =>
      fetch(`${svc.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      }).then((r) => r.text());
    await call("POST", "/subscriptions", {
      id: "sub_logs",
      url: receiver.url,
      secret: signingSecret,
    });
    await call("POST", "/events", { id: "evt_logs", type: "order.created", data: {} });
    await receiver.waitFor(2);
    await eventually(() =>
      Promise.resolve(
        lines.some((l) => l.includes('"outcome":"delivered"')) ? true : undefined,
      ), { what: "the second attempt to be logged" });
  } finally {
    await svc.stop();
    await receiver.close();
    await db.close();
  }

  const entries = lines.map((l) => JSON.parse(l));
  for (const e of entries) {
    assert.match(e.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(["debug", "info", "warn", "error"].includes(e.level), e.level);
    assert.equal(typeof e.msg, "string");
  }
  const text = lines.join("\n");
  for (const secret of [apiKey, "second-key", secretsKey, signingSecret, signingSecret.slice(6)]) {
    assert.ok(!text.includes(secret), `a log line contains "${secret}"`);
  }

  const started = entries.find((e) => e.msg === "Dispatch started");
  assert.equal(started.role, "serve");
  assert.equal(started.url, svc.url);
  assert.equal(started.database, "external");
  assert.equal(typeof started.database_url, "string");
  assert.equal(started.settings.api_keys_count, 2);
  assert.equal(started.settings.secrets_key_set, true);
  assert.equal(started.settings.worker_concurrency, 16);
  assert.equal(started.settings.retention_days, null);

  const requests = entries.filter((e) => e.msg === "Request");
  assert.deepEqual(requests.map((e) => [e.method, e.path, e.status]), [
    ["POST", "/subscriptions", 201],
    ["POST", "/events", 201],
  ]);
  for (const e of requests) {
    assert.equal(typeof e.duration_ms, "number");
    assert.match(e.request_id, /^[0-9a-f-]{36}$/);
  }

  const attempts = entries.filter((e) => e.msg === "Delivery attempt");
  assert.deepEqual(
    attempts.map((e) => [e.event_id, e.subscription_id, e.attempt, e.outcome, e.status_code]),
    [["evt_logs", "sub_logs", 1, "retrying", 500], ["evt_logs", "sub_logs", 2, "delivered", 200]],
  );
  assert.equal(attempts[0].error_class, "http_status");
  assert.equal(attempts[0].error, "Endpoint answered 500");
  assert.equal(typeof attempts[0].retry_in_ms, "number");
  assert.equal(attempts[1].retry_in_ms, null);
  for (const e of attempts) {
    assert.equal(typeof e.delivery_id, "number");
    assert.equal(typeof e.duration_ms, "number");
  }
});
