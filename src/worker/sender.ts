import { type Pause, pause as realPause } from "../async.ts";
import type { ClaimedDelivery, Completion } from "../engine/shapes.ts";
import {
  abandonOutcome,
  decideOutcome,
  type RetrySettings,
  unreadableSecretResult,
} from "../delivery/outcome.ts";
import { type EndpointCredentials, sendAuthenticated } from "../delivery/endpoint_auth.ts";
import type { AttemptResult } from "../delivery/send.ts";
import { createTokenCache, type TokenCache } from "../delivery/token_cache.ts";
import { buildRequest } from "../delivery/webhook_request.ts";
import type { Logger } from "../observability/log.ts";
import type { Metrics } from "../observability/metrics.ts";
import { traceDelivery } from "../observability/tracing.ts";
import type { SecretCipher } from "../security/secret_cipher.ts";
import type { ProxySettings } from "../config.ts";
import { type Resolver, targetCheck, type TargetPolicy } from "../security/ssrf.ts";
import { deliveryClients } from "./delivery_clients.ts";
import { isSensitiveHeader } from "../views/custom_headers.ts";

export interface SenderOptions extends RetrySettings, TargetPolicy {
  deliveryTimeoutMs: number;
  /** Root certificates (PEM) trusted besides the system's (DELIVERY_CA_FILE). */
  caCerts?: string[];
  /** Every delivery goes through it (DELIVERY_PROXY_URL). */
  proxy?: ProxySettings | null;
}

/**
 * Sends one claimed delivery and decides its outcome. Resolves to null
 * when `signal` (shutdown) aborted before anything was sent: the claim is
 * handed back uncounted. Every attempt that was made is logged and counted.
 */
export type Sender =
  & ((delivery: ClaimedDelivery, signal: AbortSignal) => Promise<Completion | null>)
  & {
    /** Closes what the sender keeps between deliveries (its HTTP clients). */
    close?(): Promise<void>;
  };

export function createSender(
  deps: {
    log: Logger;
    metrics: Metrics;
    secrets: SecretCipher;
    resolve: Resolver;
    /** Waits for a rate-limit slot; default {@linkcode realPause}. */
    pause?: Pause;
    /** OAuth tokens of this process; default a new cache. */
    tokens?: TokenCache;
  },
  options: SenderOptions,
): Sender {
  const { pause = realPause, tokens = createTokenCache() } = deps;
  const checkTarget = targetCheck(options, deps.resolve);
  const clients = deliveryClients(deps, {
    caCerts: options.caCerts ?? [],
    proxy: options.proxy ?? null,
    pinned: checkTarget !== undefined,
  });

  async function attempt(d: ClaimedDelivery & { url: string }, signal: AbortSignal) {
    let secrets: string[];
    let credentials: EndpointCredentials | null = null;
    let headers: Record<string, string>;
    try {
      secrets = await Promise.all(d.secrets.map(deps.secrets.open));
      headers = await openHeaders(d.headers ?? {}, deps.secrets);
      if (d.auth !== null && d.auth_secret !== null) {
        credentials = {
          auth: d.auth,
          secret: await deps.secrets.open(d.auth_secret),
          cacheKey: String(d.subscription_seq ?? d.subscription_id),
          // A sealed secret differs each time it is written: any change of auth is a new version.
          version: `${JSON.stringify(d.auth)} ${d.auth_secret}`,
        };
      }
    } catch (err) {
      return unreadableSecretResult(err);
    }
    let client;
    try {
      client = await clients.lease(d);
    } catch (err) {
      return unreadableSecretResult(err);
    }
    try {
      const request = await buildRequest({ ...d, secrets, headers });
      return await sendAuthenticated(request, credentials, {
        timeoutMs: options.deliveryTimeoutMs,
        signal,
        checkTarget,
        tokens,
        client,
      });
    } finally {
      client?.release();
    }
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

  const sender: Sender = async (d, signal) => {
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
  sender.close = () => clients.close();
  return sender;
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
