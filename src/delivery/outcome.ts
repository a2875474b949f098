import type { ClaimedDelivery, Completion } from "../db/queue.ts";
import { retryDelayMs } from "./retry_policy.ts";
import type { AttemptResult } from "./send.ts";

export interface RetrySettings {
  maxAttempts: number;
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
}

/** What an attempt's result means for its delivery: the lifecycle's transitions out of `processing`. */
export function decideOutcome(
  delivery: ClaimedDelivery,
  result: AttemptResult,
  settings: RetrySettings,
): Completion & { disable: string | null } {
  const base = {
    deliveryId: delivery.id,
    eventId: delivery.event_id,
    subscriptionId: delivery.subscription_id,
    attempt: delivery.attempt,
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
  if (result.ok) {
    return { ...base, status: "delivered", retryInMs: 0, lastError: null, disable: null };
  }
  if (result.statusCode === 410) {
    const reason = "Endpoint answered 410 Gone";
    return { ...base, status: "failed", retryInMs: 0, lastError: reason, disable: reason };
  }
  const max = delivery.max_attempts ?? settings.maxAttempts;
  // A refused target stays refused until the operator changes the settings: retrying cannot help.
  if (result.errorClass === "blocked" || delivery.attempt - delivery.attempt_base >= max) {
    return { ...base, status: "failed", retryInMs: 0, lastError: result.error, disable: null };
  }
  const retryInMs = retryDelayMs(delivery.attempt, {
    baseMs: settings.retryBaseDelayMs,
    maxMs: settings.retryMaxDelayMs,
    retryAfterMs: result.retryAfterMs,
  });
  return { ...base, status: "retrying", retryInMs, lastError: result.error, disable: null };
}

/** A claimed delivery whose subscription was deleted or disabled since fan-out: not sent. */
export function skippedOutcome(delivery: ClaimedDelivery): Completion & { disable: null } {
  const reason = delivery.url === null ? "Subscription deleted" : "Subscription disabled";
  return {
    deliveryId: delivery.id,
    eventId: delivery.event_id,
    subscriptionId: delivery.subscription_id,
    attempt: delivery.attempt,
    status: "failed",
    retryInMs: 0,
    record: null,
    lastError: reason,
    lastStatusCode: null,
    disable: null,
  };
}
