import assert from "node:assert/strict";
import {
  abandonOutcome,
  decideOutcome,
  unreadableSecretResult,
} from "../../src/delivery/outcome.ts";
import type { AttemptResult } from "../../src/delivery/send.ts";
import { attemptResult, claimedDelivery } from "../helpers/queue.ts";

const startedAt = new Date("2026-01-02T03:04:05.000Z");

const claimed = claimedDelivery;

const result = (extra: Partial<AttemptResult>) =>
  attemptResult({ startedAt, durationMs: 12, ...extra });

const answered = (status: number, extra: Partial<AttemptResult> = {}) =>
  result({
    statusCode: status,
    ok: status >= 200 && status < 300,
    errorClass: status >= 200 && status < 300 ? null : "http_status",
    error: status >= 200 && status < 300 ? null : `Endpoint answered ${status}`,
    responseBody: "body",
    responseHeaders: { "content-type": "text/plain" },
    ...extra,
  });

// No jitter below the base: a retry is due at once unless the endpoint asked for a wait.
const noBackoff = { retryBaseDelayMs: 0, retryMaxDelayMs: 60_000 };

const identity = {
  deliveryId: 7,
  eventId: "evt_1",
  subscriptionId: "sub_1",
  subscriptionSeq: 3,
  attempt: 2,
  healthy: true,
};

Deno.test("decideOutcome: a 2xx delivers, with the attempt recorded as it was made", () => {
  const r = answered(204);
  assert.deepEqual(decideOutcome(claimed(), r, noBackoff), {
    ...identity,
    verdict: "success",
    lastStatusCode: 204,
    record: {
      startedAt,
      durationMs: 12,
      statusCode: 204,
      errorClass: null,
      error: null,
      responseBody: "body",
      responseHeaders: { "content-type": "text/plain" },
    },
    status: "delivered",
    retryInMs: 0,
    lastError: null,
  });
});

Deno.test("decideOutcome: a 2xx on the last attempt delivers", () => {
  const o = decideOutcome(claimed({ last_attempt: true }), answered(200), noBackoff);
  assert.deepEqual([o.status, o.retryInMs, o.lastError, o.verdict], [
    "delivered",
    0,
    null,
    "success",
  ]);
});

Deno.test("decideOutcome: 5xx, 429, 4xx and connection failures retry while attempts are left", () => {
  const cases: [AttemptResult, string][] = [
    [answered(500), "failure"],
    [answered(503), "failure"],
    [answered(429), "failure"],
    [answered(400), "answer"],
    [answered(404), "answer"],
    [result({ errorClass: "timeout", error: "Timed out after 2000 ms" }), "failure"],
    [result({ errorClass: "connection_refused", error: "Connection refused" }), "failure"],
    [result({ errorClass: "dns", error: "No such host" }), "failure"],
    [result({ errorClass: "aborted", error: "Aborted during shutdown" }), "null"],
  ];
  for (const [r, verdict] of cases) {
    const o = decideOutcome(claimed(), r, noBackoff);
    const what = `${r.statusCode ?? r.errorClass}`;
    assert.equal(o.status, "retrying", what);
    assert.equal(o.retryInMs, 0, what);
    assert.equal(o.lastError, r.error, what);
    assert.equal(o.lastStatusCode, r.statusCode, what);
    assert.equal(String(o.verdict), verdict, what);
    assert.notEqual(o.record, null, what);
  }
});

Deno.test("decideOutcome: the same failures on the last attempt fail, with their error", () => {
  for (
    const r of [
      answered(500),
      answered(429),
      answered(400),
      result({ errorClass: "timeout", error: "Timed out" }),
    ]
  ) {
    const o = decideOutcome(claimed({ last_attempt: true }), r, noBackoff);
    assert.deepEqual([o.status, o.retryInMs, o.lastError], ["failed", 0, r.error]);
  }
});

Deno.test("decideOutcome: 410 Gone fails at once, whatever the attempts left", () => {
  for (const last_attempt of [false, true]) {
    const o = decideOutcome(claimed({ attempt: 1, last_attempt }), answered(410), noBackoff);
    assert.deepEqual([o.status, o.retryInMs, o.lastError, o.verdict, o.lastStatusCode], [
      "failed",
      0,
      "Endpoint answered 410 Gone",
      "gone",
      410,
    ]);
  }
});

Deno.test("decideOutcome: a blocked target or an unreadable secret fails at once, and says nothing of the endpoint", () => {
  const cases = [
    result({ errorClass: "blocked", error: "Target 10.0.0.1 is not allowed" }),
    unreadableSecretResult(new Error("Secret is sealed with another key"), startedAt),
  ];
  for (const r of cases) {
    const o = decideOutcome(claimed({ attempt: 1 }), r, noBackoff);
    assert.deepEqual([o.status, o.retryInMs, o.lastError, o.verdict], ["failed", 0, r.error, null]);
  }
  assert.equal(cases[1]!.error, "Not sent: Secret is sealed with another key");
});

Deno.test("decideOutcome: Retry-After sets the delay when above the backoff, capped by the maximum", () => {
  const settings = { retryBaseDelayMs: 1000, retryMaxDelayMs: 60_000 };
  // Attempt 1's backoff is below 1,000 ms, so the endpoint's ask decides.
  const at = (retryAfterMs: number) =>
    decideOutcome(claimed({ attempt: 1 }), answered(503, { retryAfterMs }), settings).retryInMs;
  assert.equal(at(30_000), 30_000);
  assert.equal(at(60_000), 60_000);
  assert.equal(at(3_600_000), 60_000);
  // On the last attempt Retry-After does not buy another one.
  const last = decideOutcome(
    claimed({ last_attempt: true }),
    answered(429, { retryAfterMs: 5000 }),
    settings,
  );
  assert.deepEqual([last.status, last.retryInMs], ["failed", 0]);
});

Deno.test("decideOutcome: without Retry-After the delay is jittered below base × 2^(attempt - 1), and the maximum", () => {
  const settings = { retryBaseDelayMs: 100, retryMaxDelayMs: 300 };
  for (let i = 0; i < 50; i++) {
    const first = decideOutcome(claimed({ attempt: 1 }), answered(500), settings).retryInMs;
    assert.ok(Number.isInteger(first) && first >= 0 && first < 100, `attempt 1: ${first}`);
    const third = decideOutcome(claimed({ attempt: 3 }), answered(500), settings).retryInMs;
    assert.ok(Number.isInteger(third) && third >= 0 && third < 300, `attempt 3: ${third}`);
  }
});

Deno.test("abandonOutcome: a deleted subscription's delivery fails unsent, with no verdict", () => {
  assert.deepEqual(abandonOutcome(claimed({ url: null, active: null, healthy: false })), {
    ...identity,
    healthy: false,
    status: "failed",
    retryInMs: 0,
    record: null,
    lastError: "Subscription deleted",
    lastStatusCode: null,
    verdict: null,
  });
});

Deno.test("abandonOutcome: a disabled subscription's delivery fails unsent, on any attempt", () => {
  for (const attempt of [1, 5]) {
    assert.deepEqual(
      abandonOutcome(claimed({ active: false, attempt, last_attempt: attempt === 5 })),
      {
        ...identity,
        attempt,
        status: "failed",
        retryInMs: 0,
        record: null,
        lastError: "Subscription disabled",
        lastStatusCode: null,
        verdict: null,
      },
    );
  }
});
