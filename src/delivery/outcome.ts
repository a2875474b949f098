/**
 * What an attempt's result means for its delivery: which transition out of
 * `processing` it takes (see `lifecycle.ts`). Pure functions of the claim
 * and the result; the completer writes what they decide.
 *
 * @module
 */
import type { ClaimedDelivery, Completion } from "../engine/shapes.ts";
import type { Verdict } from "../engine/states.ts";
import { retryDelayMs } from "./retry_policy.ts";
import type { AttemptResult } from "./send.ts";

export interface RetrySettings {
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
}

function identity(delivery: ClaimedDelivery) {
  return {
    deliveryId: delivery.id,
    eventId: delivery.event_id,
    subscriptionId: delivery.subscription_id,
    subscriptionSeq: delivery.subscription_seq,
    attempt: delivery.attempt,
    healthy: delivery.healthy,
  };
}

// The endpoint could not be reached, or answered that it cannot cope.
const unreachable = new Set(["timeout", "connection_refused", "connection", "dns", "tls"]);

/** What an attempt's result says about the endpoint, for the circuit breaker. */
export function verdictOf(result: AttemptResult): Verdict | null {
  if (result.ok) return "success";
  // Its status is the token endpoint's: it says nothing about the endpoint.
  if (result.errorClass === "auth_failed") return null;
  const status = result.statusCode;
  if (status === 410) return "gone";
  if (status !== null) return status >= 500 || status === 429 ? "failure" : "answer";
  return unreachable.has(result.errorClass ?? "") ? "failure" : null;
}

/** **deliver** on 2xx; otherwise **fail** or **retry**, as the budget and the failure decide. */
export function decideOutcome(
  delivery: ClaimedDelivery,
  result: AttemptResult,
  settings: RetrySettings,
): Completion {
  const base = {
    ...identity(delivery),
    verdict: verdictOf(result),
    lastStatusCode: result.statusCode,
    record: {
      startedAt: result.startedAt,
      durationMs: result.durationMs,
      statusCode: result.statusCode,
      errorClass: result.errorClass,
      error: result.error,
      responseBody: result.responseBody,
      responseHeaders: result.responseHeaders,
    },
  };
  if (result.ok) return { ...base, status: "delivered", retryInMs: 0, lastError: null };
  if (base.verdict === "gone") {
    // The subscription is disabled with it (reason gone), by the health write.
    return { ...base, status: "failed", retryInMs: 0, lastError: "Endpoint answered 410 Gone" };
  }
  // A refused target or an unreadable secret stays so until the operator acts: retrying cannot help.
  const final = result.errorClass === "blocked" || result.errorClass === "secret_unreadable";
  if (final || delivery.last_attempt) {
    return { ...base, status: "failed", retryInMs: 0, lastError: result.error };
  }
  const retryInMs = retryDelayMs(delivery.attempt, {
    baseMs: settings.retryBaseDelayMs,
    maxMs: settings.retryMaxDelayMs,
    retryAfterMs: result.retryAfterMs,
  });
  return { ...base, status: "retrying", retryInMs, lastError: result.error };
}

/** **abandon**: the subscription was deleted or disabled since fan-out, so nothing is sent. */
export function abandonOutcome(delivery: ClaimedDelivery): Completion {
  const reason = delivery.url === null ? "Subscription deleted" : "Subscription disabled";
  return {
    ...identity(delivery),
    status: "failed",
    retryInMs: 0,
    record: null,
    lastError: reason,
    lastStatusCode: null,
    verdict: null,
  };
}

/** The attempt that could not be signed: recorded, not sent, not retried. */
export function unreadableSecretResult(error: unknown, now = new Date()): AttemptResult {
  return {
    startedAt: now,
    durationMs: 0,
    statusCode: null,
    ok: false,
    errorClass: "secret_unreadable",
    error: `Not sent: ${(error as Error).message}`,
    responseBody: null,
    responseHeaders: {},
    retryAfterMs: null,
  };
}
