import { type Pause, pause as realPause } from "../async.ts";
import type { ClaimedDelivery, Completion } from "../engine/shapes.ts";
import {
  abandonOutcome,
  decideOutcome,
  type RetrySettings,
  unreadableSecretResult,
} from "../delivery/outcome.ts";
import { type AttemptResult, send } from "../delivery/send.ts";
import { buildRequest } from "../delivery/webhook_request.ts";
import type { Logger } from "../observability/log.ts";
import type { Metrics } from "../observability/metrics.ts";
import { traceDelivery } from "../observability/tracing.ts";
import type { SecretCipher } from "../security/secret_cipher.ts";
import { type Resolver, targetCheck, type TargetPolicy } from "../security/ssrf.ts";
import { isSensitiveHeader } from "../views/custom_headers.ts";

export interface SenderOptions extends RetrySettings, TargetPolicy {
  deliveryTimeoutMs: number;
}

/**
 * Sends one claimed delivery and decides its outcome. Resolves to null
 * when `signal` (shutdown) aborted before anything was sent: the claim is
 * handed back uncounted. Every attempt that was made is logged and counted.
 */
export type Sender = (delivery: ClaimedDelivery, signal: AbortSignal) => Promise<Completion | null>;

export function createSender(
  deps: {
    log: Logger;
    metrics: Metrics;
    secrets: SecretCipher;
    resolve: Resolver;
    /** Waits for a rate-limit slot; default {@linkcode realPause}. */
    pause?: Pause;
  },
  options: SenderOptions,
): Sender {
  const { pause = realPause } = deps;
  const checkTarget = targetCheck(options, deps.resolve);

  async function attempt(d: ClaimedDelivery & { url: string }, signal: AbortSignal) {
    let secrets: string[];
    let headers: Record<string, string>;
    try {
      secrets = await Promise.all(d.secrets.map(deps.secrets.open));
      headers = await openHeaders(d.headers ?? {}, deps.secrets);
    } catch (err) {
      return unreadableSecretResult(err);
    }
    const request = await buildRequest({ ...d, secrets, headers });
    return await send(request, { timeoutMs: options.deliveryTimeoutMs, signal, checkTarget });
  }

  /** Counts and logs an attempt that was made, inside its span so the line carries its ids. */
  function record(d: ClaimedDelivery, result: AttemptResult, outcome: Completion): void {
    deps.metrics.attemptFinished(result);
    if (outcome.status !== "retrying") deps.metrics.deliveryFinished(outcome.status);
    deps.log[result.errorClass === "secret_unreadable" ? "error" : "info"]("Delivery attempt", {
      delivery_id: d.id,
      event_id: d.event_id,
      subscription_id: d.subscription_id,
      attempt: d.attempt,
      outcome: outcome.status,
      status_code: result.statusCode,
      error_class: result.errorClass,
      duration_ms: result.durationMs,
      error: result.error,
      retry_in_ms: outcome.status === "retrying" ? outcome.retryInMs : null,
    });
  }

  return async (d, signal) => {
    if (d.url === null || d.active === false) {
      deps.metrics.deliveryFinished("failed");
      return abandonOutcome(d);
    }
    // Its slot of the subscription's rate limit.
    if (d.send_in_ms !== null) await pause(d.send_in_ms, signal);
    if (signal.aborted) return null;
    const url = d.url;
    let outcome: Completion | null = null;
    await traceDelivery(d, async () => {
      const result = await attempt({ ...d, url }, signal);
      if (result !== null) {
        outcome = decideOutcome(d, result, options);
        record(d, result, outcome);
      }
      return result;
    });
    return outcome;
  };
}

/** Custom headers as sent: the sensitive values, sealed at rest, opened. */
async function openHeaders(
  stored: Record<string, string>,
  cipher: SecretCipher,
): Promise<Record<string, string>> {
  const entries = await Promise.all(
    Object.entries(stored).map(async ([name, value]) =>
      [name, isSensitiveHeader(name) ? await cipher.open(value) : value] as const
    ),
  );
  return Object.fromEntries(entries);
}
