import assert from "node:assert/strict";
import { createLogger } from "../../src/observability/log.ts";
import { testDatabase } from "../helpers/db.ts";
import { hostileBehaviours, startHostileReceiver } from "../helpers/hostile_receiver.ts";
import { startReceiver } from "../helpers/receiver.ts";
import { eventually, startTestService } from "../helpers/service.ts";

const events = 5;
const timeoutMs = 1500;

Deno.test("a hostile receiver costs only its own deliveries: each attempt is recorded with its class, and a healthy one is served promptly", async () => {
  const db = await testDatabase();
  const hostile = startHostileReceiver();
  const sent = new Map<string, number>();
  const healthy = startReceiver();
  const logLines: string[] = [];
  const svc = await startTestService(db, {
    env: { MAX_ATTEMPTS: "1", DELIVERY_TIMEOUT_MS: String(timeoutMs), WORKER_CONCURRENCY: "16" },
    log: createLogger({ level: "info", write: (line) => logLines.push(line) }),
  });
  try {
    await svc.api("POST", "/subscriptions", { id: "healthy", url: healthy.url });
    for (const behaviour of hostileBehaviours) {
      await svc.api("POST", "/subscriptions", { id: behaviour, url: hostile.url(behaviour) });
    }
    for (let i = 0; i < events; i++) {
      sent.set(`evt_${i}`, performance.now());
      await svc.api("POST", "/events", { id: `evt_${i}`, type: "a", data: { i } });
    }
    await healthy.waitFor(events);
    const latencies = healthy.received.map((r) =>
      Math.round(r.at - sent.get(r.headers.get("webhook-id")!)!)
    );
    const rows = await eventually(async () => {
      const r = await db.sql`
        SELECT d.subscription_id, d.status, a.attempt, a.error_class, a.status_code,
          a.response_body, a.duration_ms, octet_length(a.error) AS error_bytes,
          octet_length(d.last_error) AS last_error_bytes,
          octet_length(a.response_headers::text) AS header_bytes
        FROM deliveries d LEFT JOIN delivery_attempts a ON a.delivery_id = d.id
        ORDER BY d.subscription_id, d.event_id`;
      return r.every((x) => x.status === "delivered" || x.status === "failed") ? r : undefined;
    }, { what: "every delivery to finish", timeoutMs: 20_000 });
    console.log(JSON.stringify({ healthy_latency_ms: latencies.sort((a, b) => a - b) }));

    const by = (sub: string) => rows.filter((r) => r.subscription_id === sub);
    const classes = (sub: string) => [...new Set(by(sub).map((r) => r.error_class))];
    // Exactly one attempt per delivery: nothing rescued, nothing sent twice.
    assert.equal(rows.length, events * (hostileBehaviours.length + 1));
    assert.ok(rows.every((r) => r.attempt === 1));
    assert.ok(rows.every((r) => r.error_class !== "lease_expired"));
    assert.equal(healthy.received.length, events);
    assert.deepEqual(classes("healthy"), [null]);

    assert.deepEqual(classes("nul"), ["http_status"]);
    assert.ok(by("nul").every((r) => r.response_body === "o\\u0000k\\u0000"));
    assert.deepEqual(classes("invalid_utf8"), ["http_status"]);
    assert.ok(by("invalid_utf8").every((r) => r.response_body === "\ufffd\ufffd\ufffd(\ufffd"));
    assert.deepEqual(classes("huge_body"), [null]);
    assert.ok(by("huge_body").every((r) => r.response_body.length === 4096));
    assert.deepEqual(classes("trickle_head"), ["timeout"]);
    // The status came at once; the body is read for at most the timeout.
    assert.deepEqual(classes("trickle_body"), [null]);
    assert.ok(by("trickle_body").every((r) => r.duration_ms < timeoutMs + 1000));
    assert.deepEqual(classes("huge_headers"), ["connection"]);
    assert.deepEqual(classes("reset_mid_body"), ["http_status"]);
    assert.ok(by("reset_mid_body").every((r) => r.response_body === "partial"));
    // A 300 KB Location and a 60 KB Content-Type: 1 KiB of error, 4 KiB of headers at most.
    assert.deepEqual(classes("huge_redirect"), ["redirect"]);
    for (const r of rows) {
      assert.ok(r.error_bytes === null || r.error_bytes <= 1024, `${r.subscription_id} error`);
      assert.ok(r.last_error_bytes === null || r.last_error_bytes <= 1024, r.subscription_id);
      // The JSON's quotes, colons and commas come on top of the 4 KiB of names and values.
      assert.ok(r.header_bytes === null || r.header_bytes <= 4096 + 32, r.subscription_id);
    }
    assert.ok(by("huge_redirect").every((r) => r.header_bytes > 4000 && r.error_bytes > 1000));
    const longest = Math.max(...logLines.map((l) => new TextEncoder().encode(l).length));
    assert.ok(longest < 4096, `a log line of ${longest} bytes`);
    for (const behaviour of hostileBehaviours) {
      assert.equal(hostile.requests.get(behaviour), events, behaviour);
    }
  } finally {
    await svc.stop();
    await healthy.close();
    await hostile.close();
    await db.close();
  }
});
