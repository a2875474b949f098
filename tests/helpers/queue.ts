/**
 * Fixtures for tests of the queue itself: a subscription with deliveries in
 * the database, claims made the way a worker makes them, and outcomes as the
 * sender decides them.
 *
 * @module
 */
import type { Sql } from "../../src/db/pool.ts";
import { claimDeliveries, type ClaimOptions } from "../../src/engine/claim.ts";
import { completeDeliveries } from "../../src/engine/complete.ts";
import type { ClaimedDelivery, Completion } from "../../src/engine/shapes.ts";
import type { AttemptResult } from "../../src/delivery/send.ts";

export interface SeedOptions {
  /** Subscription id; default `s`. */
  id?: string;
  url?: string;
  secret?: string;
  maxAttempts?: number;
  rateLimit?: number;
  maxInFlight?: number;
  tenant?: string;
  /** Event ids are `${prefix}1` … `${prefix}n`; default `e`. */
  prefix?: string;
}

/** A subscription with `n` pending deliveries; answers the subscription's seq. */
export async function seedDeliveries(sql: Sql, n: number, options: SeedOptions = {}) {
  const { id = "s", prefix = "e" } = options;
  const [sub] = await sql<{ seq: number }[]>`
    INSERT INTO subscriptions (id, url, event_types, secret, max_attempts, rate_limit,
      max_in_flight, tenant_id)
    VALUES (${id}, ${options.url ?? "http://127.0.0.1:9/"}, '{*}',
      ${options.secret ?? "a-secret"}, ${options.maxAttempts ?? null},
      ${options.rateLimit ?? null}, ${options.maxInFlight ?? null}, ${options.tenant ?? null})
    RETURNING seq`;
  await sql`INSERT INTO events (id, type, data, fanned_out)
    SELECT ${prefix} || g, 'a', '{}', 1 FROM generate_series(1, ${n}) g`;
  await sql`INSERT INTO deliveries (event_id, subscription_id, subscription_seq)
    SELECT ${prefix} || g, ${id}, ${sub!.seq} FROM generate_series(1, ${n}) g`;
  return sub!.seq;
}

/**
 * A claim's options as a worker sets them, with a 60 s lease, MAX_ATTEMPTS 3
 * and a quarter of the claim for retries unless told otherwise.
 */
export function claimOptions(options: Partial<ClaimOptions> = {}): ClaimOptions {
  const limit = options.limit ?? 10;
  return {
    workerId: "w",
    limit,
    retryReserve: Math.ceil(limit / 4),
    leaseMs: 60_000,
    maxAttempts: 3,
    horizonMs: 1000,
    recheckMs: 5000,
    ...options,
  };
}

/** The deliveries a claim with {@linkcode claimOptions} takes. */
export async function claim(
  sql: Sql,
  options: Partial<ClaimOptions> = {},
): Promise<ClaimedDelivery[]> {
  return (await claimDeliveries(sql, claimOptions(options))).deliveries;
}

/** A delivery as a claim returns it, without a database: attempt 2 of several, due at once. */
export function claimedDelivery(extra: Partial<ClaimedDelivery> = {}): ClaimedDelivery {
  return {
    id: 7,
    event_id: "evt_1",
    subscription_id: "sub_1",
    subscription_seq: 3,
    attempt: 2,
    last_attempt: false,
    tenant_id: null,
    send_in_ms: null,
    healthy: true,
    type: "order.created",
    source: "shop",
    created_at: new Date("2026-01-02T03:04:05.000Z"),
    data: '{"n":1}',
    url: "http://127.0.0.1:9/hook",
    active: true,
    secrets: ["a-secret"],
    auth: null,
    auth_secret: null,
    tls_client_certificate: null,
    headers: {},
    format: "standard",
    ...extra,
  };
}

/** What one attempt of the sender came to: nothing answered, unless `extra` says so. */
export function attemptResult(extra: Partial<AttemptResult> = {}): AttemptResult {
  return {
    startedAt: new Date(),
    durationMs: 1,
    statusCode: null,
    ok: false,
    errorClass: null,
    error: null,
    responseBody: null,
    responseHeaders: {},
    retryAfterMs: null,
    ...extra,
  };
}

/** The outcome the sender would decide for `d` after a 2xx (`delivered`) or a 500. */
export function outcome(
  d: Pick<ClaimedDelivery, "id" | "event_id" | "attempt" | "subscription_seq" | "subscription_id">,
  status: Completion["status"],
  extra: Partial<Completion> & { responseBody?: string } = {},
): Completion {
  const ok = status === "delivered";
  const { responseBody = "ok", ...rest } = extra;
  return {
    deliveryId: d.id,
    eventId: d.event_id,
    subscriptionId: d.subscription_id,
    subscriptionSeq: d.subscription_seq,
    attempt: d.attempt,
    status,
    retryInMs: 0,
    record: {
      startedAt: new Date(),
      durationMs: 3,
      statusCode: ok ? 200 : 500,
      errorClass: ok ? null : "http_status",
      error: ok ? null : "Endpoint answered 500",
      responseBody,
      responseHeaders: { "content-type": "text/plain" },
    },
    lastError: ok ? null : "Endpoint answered 500",
    lastStatusCode: ok ? 200 : 500,
    verdict: ok ? "success" : "failure",
    healthy: true,
    ...rest,
  };
}

/** Writes outcomes as the completer does, answering per outcome whether its lease was still the claim's. */
export async function complete(
  sql: Sql,
  workerId: string,
  batch: readonly Completion[],
): Promise<boolean[]> {
  return (await completeDeliveries(sql, workerId, batch))!.applied;
}
