/**
 * The sender alone: one claimed delivery in, one outcome out, against a real
 * receiver on 127.0.0.1, with real metrics and a real log.
 */
import assert from "node:assert/strict";
import { Webhook } from "standardwebhooks";
import type { ClaimedDelivery } from "../../src/engine/shapes.ts";
import { createLogger } from "../../src/observability/log.ts";
import { createMetrics, type Metrics } from "../../src/observability/metrics.ts";
import { createSecretCipher, type SecretCipher } from "../../src/security/secret_cipher.ts";
import type { Resolver } from "../../src/security/ssrf.ts";
import { createSender } from "../../src/worker/sender.ts";
import { withTestDatabase } from "../helpers/db.ts";
import { claim, claimedDelivery, seedDeliveries } from "../helpers/queue.ts";
import { startReceiver } from "../helpers/receiver.ts";
import { ManualTimer } from "../helpers/timer.ts";

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

const claimed = (url: string | null, extra: Partial<ClaimedDelivery> = {}) =>
  claimedDelivery({ url, secrets: [secret], ...extra });

const noDns: Resolver = () => Promise.reject(new Error("No DNS in this test"));

/** A sender with real metrics and a log the test reads. */
function sender(
  options: { secrets?: SecretCipher; allowPrivateTargets?: boolean; timer?: ManualTimer } = {},
) {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ write: (l) => lines.push(JSON.parse(l)) });
  const metrics = createMetrics({
    inFlight: () => 0,
    queueStats: () => Promise.reject(new Error("Not read in this test")),
    log,
  });
  const send = createSender({
    log,
    metrics,
    secrets: options.secrets ?? createSecretCipher(null),
    resolve: noDns,
    ...(options.timer ? { pause: options.timer.pause } : {}),
  }, {
    deliveryTimeoutMs: 5000,
    retryBaseDelayMs: 0,
    retryMaxDelayMs: 60_000,
    allowPrivateTargets: options.allowPrivateTargets ?? true,
    allowedTargetCidrs: [],
  });
  return { send, lines, metrics };
}

/** A counter's values by its one label. */
async function counts(metrics: Metrics, name: string): Promise<Record<string, number>> {
  const metric = await metrics.registry.getSingleMetric(name)!.get();
  return Object.fromEntries(metric.values.map((v) => [Object.values(v.labels)[0], v.value]));
}

const live = () => new AbortController().signal;

Deno.test("sender: a 2xx is sent signed with the opened secret, delivered, counted and logged with its ids", async () => {
  const receiver = startReceiver(() => new Response("thanks", { status: 202 }));
  const key = crypto.getRandomValues(new Uint8Array(32));
  const cipher = createSecretCipher(key);
  const { send, lines, metrics } = sender({ secrets: cipher });
  try {
    const sealed = await cipher.seal(secret);
    const outcome = await send(claimed(receiver.url, { secrets: [sealed] }), live());
    assert.equal(outcome?.status, "delivered");
    assert.equal(outcome.verdict, "success");
    assert.equal(outcome.record?.statusCode, 202);
    assert.equal(outcome.record?.responseBody, "thanks");
    const [got] = receiver.received;
    assert.equal(receiver.received.length, 1);
    const body = '{"id":"evt_1","type":"order.created","source":"shop",' +
      '"timestamp":"2026-01-02T03:04:05.000Z","data":{"n":1}}';
    assert.equal(got!.body, body);
    assert.equal(got!.headers.get("x-dispatch-attempt"), "2");
    // Signed with the secret itself, not its sealed form.
    new Webhook(secret).verify(got!.body, Object.fromEntries(got!.headers));
    assert.deepEqual(await counts(metrics, "dispatch_delivery_attempts_total"), { success: 1 });
    assert.deepEqual(await counts(metrics, "dispatch_deliveries_finished_total"), {
      delivered: 1,
    });
    const line = lines.find((l) => l.msg === "Delivery attempt")!;
    assert.equal(line.level, "info");
    assert.deepEqual(
      [line.delivery_id, line.event_id, line.subscription_id, line.attempt, line.outcome],
      [7, "evt_1", "sub_1", 2, "delivered"],
    );
    assert.deepEqual([line.status_code, line.error_class, line.retry_in_ms], [202, null, null]);
  } finally {
    await receiver.close();
  }
});

Deno.test("sender: a 500 is a retry, counted as an attempt but not as a finished delivery", async () => {
  const receiver = startReceiver(() => new Response("down", { status: 500 }));
  const { send, lines, metrics } = sender();
  try {
    const outcome = await send(claimed(receiver.url), live());
    assert.deepEqual([outcome?.status, outcome?.retryInMs, outcome?.lastStatusCode], [
      "retrying",
      0,
      500,
    ]);
    assert.deepEqual(await counts(metrics, "dispatch_delivery_attempts_total"), {
      http_status: 1,
    });
    assert.deepEqual(await counts(metrics, "dispatch_deliveries_finished_total"), {});
    const line = lines.find((l) => l.msg === "Delivery attempt")!;
    assert.deepEqual([line.outcome, line.retry_in_ms, line.status_code], ["retrying", 0, 500]);
  } finally {
    await receiver.close();
  }
});

Deno.test("sender: the last attempt's failure is a finished, failed delivery", async () => {
  const receiver = startReceiver(() => new Response("down", { status: 503 }));
  const { send, metrics } = sender();
  try {
    const outcome = await send(claimed(receiver.url, { last_attempt: true }), live());
    assert.equal(outcome?.status, "failed");
    assert.deepEqual(await counts(metrics, "dispatch_deliveries_finished_total"), { failed: 1 });
  } finally {
    await receiver.close();
  }
});

Deno.test("sender: a deleted or disabled subscription's delivery is abandoned without a request or an attempt", async () => {
  const receiver = startReceiver();
  const { send, lines, metrics } = sender();
  try {
    const deleted = await send(claimed(null, { active: null }), live());
    const disabled = await send(claimed(receiver.url, { active: false }), live());
    assert.deepEqual([deleted?.status, deleted?.record, deleted?.lastError], [
      "failed",
      null,
      "Subscription deleted",
    ]);
    assert.deepEqual([disabled?.status, disabled?.record, disabled?.lastError], [
      "failed",
      null,
      "Subscription disabled",
    ]);
    assert.equal(receiver.received.length, 0);
    assert.deepEqual(await counts(metrics, "dispatch_delivery_attempts_total"), {});
    assert.deepEqual(await counts(metrics, "dispatch_deliveries_finished_total"), { failed: 2 });
    assert.equal(lines.filter((l) => l.msg === "Delivery attempt").length, 0);
  } finally {
    await receiver.close();
  }
});

Deno.test("sender: a secret it cannot open is recorded as an attempt not sent, logged as an error, and not retried", async () => {
  const receiver = startReceiver();
  const key = crypto.getRandomValues(new Uint8Array(32));
  const sealed = await createSecretCipher(key).seal(secret);
  // This process has no key: the stored secret cannot be opened.
  const { send, lines, metrics } = sender();
  try {
    const outcome = await send(claimed(receiver.url, { secrets: [sealed] }), live());
    assert.equal(outcome?.status, "failed");
    assert.equal(outcome.verdict, null);
    assert.equal(outcome.record?.errorClass, "secret_unreadable");
    assert.match(outcome.lastError!, /^Not sent: /);
    assert.equal(receiver.received.length, 0);
    assert.deepEqual(await counts(metrics, "dispatch_delivery_attempts_total"), {
      secret_unreadable: 1,
    });
    const line = lines.find((l) => l.msg === "Delivery attempt")!;
    assert.equal(line.level, "error");
  } finally {
    await receiver.close();
  }
});

Deno.test("sender: a private target refused by the policy is never sent to and not retried", async () => {
  const receiver = startReceiver();
  const { send } = sender({ allowPrivateTargets: false });
  try {
    const outcome = await send(claimed(receiver.url, { attempt: 1 }), live());
    assert.deepEqual([outcome?.status, outcome?.record?.errorClass], ["failed", "blocked"]);
    assert.equal(receiver.received.length, 0);
  } finally {
    await receiver.close();
  }
});

Deno.test("sender: a rate-limited delivery waits for its slot, then is sent", async () => {
  const receiver = startReceiver();
  const timer = new ManualTimer();
  const { send } = sender({ timer });
  try {
    const sending = send(claimed(receiver.url, { send_in_ms: 60_000 }), live());
    await timer.waited();
    const [ms] = timer.asked;
    assert.equal(ms, 60_000);
    assert.equal(receiver.received.length, 0);
    timer.elapse();
    assert.equal((await sending)?.status, "delivered");
    assert.equal(receiver.received.length, 1);
    assert.deepEqual(timer.asked, [ms]);
  } finally {
    await receiver.close();
  }
});

Deno.test("sender: stopped while waiting for its rate-limit slot, it sends nothing and hands the claim back (null)", async () => {
  const receiver = startReceiver();
  const { send, metrics } = sender();
  try {
    const stop = new AbortController();
    const sending = send(
      claimed(receiver.url, { send_in_ms: 3_600_000 }),
      stop.signal,
    );
    stop.abort();
    assert.equal(await sending, null);
    assert.equal(receiver.received.length, 0);
    assert.deepEqual(await counts(metrics, "dispatch_delivery_attempts_total"), {});
  } finally {
    await receiver.close();
  }
});

Deno.test("sender: stopped while the endpoint holds its answer, the attempt is recorded as aborted and retried, with no verdict", async () => {
  const arrived = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const receiver = startReceiver(async () => {
    arrived.resolve();
    await release.promise;
    return new Response("late");
  });
  const { send, metrics } = sender();
  try {
    const stop = new AbortController();
    const sending = send(claimed(receiver.url), stop.signal);
    await arrived.promise;
    stop.abort();
    const outcome = await sending;
    assert.deepEqual([outcome?.status, outcome?.verdict, outcome?.record?.errorClass], [
      "retrying",
      null,
      "aborted",
    ]);
    assert.deepEqual(await counts(metrics, "dispatch_delivery_attempts_total"), { aborted: 1 });
  } finally {
    release.resolve();
    await receiver.close();
  }
});

Deno.test("sender: a paced delivery waits for its slot by the database's clock, whatever the worker's clock says", () =>
  withTestDatabase(async (db) => {
    const abort = new AbortController();
    const receiver = startReceiver(() => (abort.abort(), new Response("ok")));
    const realNow = Date.now;
    try {
      await seedDeliveries(db.sql, 2, { rateLimit: 1, url: receiver.url });
      // The first goes at once, the second a second later.
      const [first, second] = await claim(db.sql, { limit: 2, horizonMs: 5_000 });
      assert.equal(first!.send_in_ms, null);
      assert.ok(second!.send_in_ms! > 900);
      const { send } = sender();
      // This worker's clock runs an hour ahead of the database's.
      Date.now = () => realNow() + 3_600_000;
      // The first one's arrival stops the worker: the second was still waiting for its slot.
      const outcomes = await Promise.all([send(first!, abort.signal), send(second!, abort.signal)]);
      assert.equal(receiver.received.length, 1);
      assert.deepEqual(outcomes.map((o) => o === null ? "not sent" : "sent"), ["sent", "not sent"]);
    } finally {
      Date.now = realNow;
      await receiver.close();
    }
  }));
