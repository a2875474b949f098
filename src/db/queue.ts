import type { Sql } from "./pool.ts";

/** A delivery claimed by a worker, with everything needed to send it. */
export interface ClaimedDelivery {
  id: number;
  event_id: string;
  subscription_id: string;
  /** Number of this attempt, 1-based, counted over the delivery's life. */
  attempt: number;
  /** Attempts made before the last manual retry: the budget starts after them. */
  attempt_base: number;
  type: string;
  source: string | null;
  created_at: Date;
  /** The event's data as JSON text, sent as is. */
  data: string;
  /** Null when the subscription was deleted after fan-out. */
  url: string | null;
  active: boolean | null;
  secrets: string[];
  max_attempts: number | null;
}

/**
 * Claims up to `limit` due deliveries: marks them `processing` with a lease
 * owned by `workerId`, in one statement. Rows locked by another worker are
 * skipped, so no delivery is ever claimed twice.
 */
export async function claimDeliveries(
  sql: Sql,
  options: { workerId: string; limit: number; leaseMs: number },
): Promise<ClaimedDelivery[]> {
  return await sql<ClaimedDelivery[]>`
    WITH due AS (
      SELECT id FROM deliveries
      WHERE status IN ('pending', 'retrying') AND next_attempt_at <= now()
      ORDER BY next_attempt_at
      LIMIT ${options.limit}
      FOR UPDATE SKIP LOCKED
    ), claimed AS (
      UPDATE deliveries d SET status = 'processing', attempts = d.attempts + 1,
        locked_by = ${options.workerId},
        locked_until = now() + ${options.leaseMs} * interval '1 millisecond',
        updated_at = now()
      FROM due WHERE d.id = due.id
      RETURNING d.id, d.event_id, d.subscription_id, d.attempts, d.attempt_base
    )
    SELECT c.id, c.event_id, c.subscription_id, c.attempts AS attempt, c.attempt_base,
      e.type, e.source, e.created_at, e.data::text AS data,
      s.url, s.active, s.max_attempts,
      array_remove(ARRAY[s.secret, CASE WHEN s.previous_secret_expires_at > now()
        THEN s.previous_secret END], NULL) AS secrets
    FROM claimed c
    JOIN events e ON e.id = c.event_id
    LEFT JOIN subscriptions s ON s.id = c.subscription_id`;
}

/** The outcome of one claimed delivery, written back by the completer. */
export interface Completion {
  deliveryId: number;
  eventId: string;
  subscriptionId: string;
  attempt: number;
  status: "delivered" | "retrying" | "failed";
  /** For `retrying`: when to try again, in ms from now. */
  retryInMs: number;
  /** Null when nothing was sent (e.g. the subscription was gone). */
  record: AttemptRecord | null;
  lastError: string | null;
  lastStatusCode: number | null;
}

export interface AttemptRecord {
  startedAt: Date;
  durationMs: number;
  statusCode: number | null;
  errorClass: string | null;
  error: string | null;
  responseBody: string | null;
  responseHeaders: Record<string, string>;
}

/**
 * Writes a batch of outcomes and their attempts in one statement. A
 * delivery whose lease this worker lost is not updated, but its attempt is
 * still recorded: it did happen.
 */
export async function completeDeliveries(
  sql: Sql,
  workerId: string,
  batch: readonly Completion[],
): Promise<number> {
  const sent = batch.filter((c) => c.record !== null);
  const [row] = await sql<{ updated: number }[]>`
    WITH r AS (
      SELECT * FROM unnest(
        ${batch.map((c) => c.deliveryId)}::bigint[],
        ${batch.map((c) => c.status)}::text[],
        ${batch.map((c) => c.retryInMs)}::bigint[],
        ${batch.map((c) => c.lastStatusCode)}::int[],
        ${batch.map((c) => c.lastError)}::text[]
      ) AS r(id, status, retry_in_ms, code, error)
    ), upd AS (
      UPDATE deliveries d SET status = r.status,
        next_attempt_at = now() + r.retry_in_ms * interval '1 millisecond',
        last_status_code = r.code, last_error = r.error,
        delivered_at = CASE WHEN r.status = 'delivered' THEN now() END,
        locked_by = NULL, locked_until = NULL, updated_at = now()
      FROM r
      WHERE d.id = r.id AND d.status = 'processing' AND d.locked_by = ${workerId}
      RETURNING 1
    ), att AS (
      INSERT INTO delivery_attempts (delivery_id, event_id, subscription_id, attempt,
        started_at, duration_ms, status_code, error_class, error, response_body,
        response_headers)
      SELECT delivery_id, event_id, subscription_id, attempt, started_at, duration_ms,
        status_code, error_class, error, response_body, response_headers::jsonb
      FROM unnest(
        ${sent.map((c) => c.deliveryId)}::bigint[],
        ${sent.map((c) => c.eventId)}::text[],
        ${sent.map((c) => c.subscriptionId)}::text[],
        ${sent.map((c) => c.attempt)}::int[],
        ${sent.map((c) => c.record!.startedAt.toISOString())}::timestamptz[],
        ${sent.map((c) => c.record!.durationMs)}::int[],
        ${sent.map((c) => c.record!.statusCode)}::int[],
        ${sent.map((c) => c.record!.errorClass)}::text[],
        ${sent.map((c) => c.record!.error)}::text[],
        ${sent.map((c) => c.record!.responseBody)}::text[],
        ${sent.map((c) => JSON.stringify(c.record!.responseHeaders))}::text[]
      ) AS a(delivery_id, event_id, subscription_id, attempt, started_at, duration_ms,
        status_code, error_class, error, response_body, response_headers)
      ON CONFLICT (delivery_id, attempt) DO NOTHING
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM upd)::int AS updated, (SELECT count(*) FROM att) AS recorded`;
  return row?.updated ?? 0;
}

/**
 * Hands deliveries this worker claimed back to the queue without counting
 * an attempt, so another worker takes them at once: `only` those it did not
 * send (shutdown), or all it holds `except` those still being sent or
 * written (after a claim whose answer was lost with its connection).
 */
export async function releaseDeliveries(
  sql: Sql,
  workerId: string,
  which: { only: readonly number[] } | { except: readonly number[] },
): Promise<number> {
  if ("only" in which && which.only.length === 0) return 0;
  const picked = "only" in which
    ? sql`id = ANY(${which.only}::bigint[])`
    : sql`NOT (id = ANY(${which.except}::bigint[]))`;
  const rows = await sql`
    UPDATE deliveries SET
      status = CASE WHEN attempts <= 1 THEN 'pending' ELSE 'retrying' END,
      attempts = attempts - 1, locked_by = NULL, locked_until = NULL,
      next_attempt_at = now(), updated_at = now()
    WHERE status = 'processing' AND locked_by = ${workerId} AND ${picked}
    RETURNING 1`;
  return rows.length;
}

/**
 * Returns deliveries whose lease expired (their worker died) to `retrying`,
 * or to `failed` when that was their last attempt, and records the lost
 * attempt so the history says what happened.
 */
export async function rescueExpired(
  sql: Sql,
  options: { maxAttempts: number; limit: number; channel: string },
): Promise<number> {
  const [row] = await sql<{ rescued: number }[]>`
    WITH expired AS (
      SELECT d.id FROM deliveries d
      WHERE d.status = 'processing' AND d.locked_until < now()
      ORDER BY d.locked_until
      LIMIT ${options.limit}
      FOR UPDATE SKIP LOCKED
    ), upd AS (
      UPDATE deliveries d SET
        status = CASE WHEN d.attempts - d.attempt_base >= coalesce(
            (SELECT s.max_attempts FROM subscriptions s WHERE s.id = d.subscription_id),
            ${options.maxAttempts}) THEN 'failed' ELSE 'retrying' END,
        last_error = 'Lease expired: the worker stopped before recording a result',
        last_status_code = NULL, locked_by = NULL, locked_until = NULL,
        next_attempt_at = now(), updated_at = now()
      FROM expired WHERE d.id = expired.id
      RETURNING d.id, d.event_id, d.subscription_id, d.attempts, d.last_error
    ), att AS (
      INSERT INTO delivery_attempts (delivery_id, event_id, subscription_id, attempt,
        started_at, duration_ms, error_class, error)
      SELECT id, event_id, subscription_id, attempts, now(), 0, 'lease_expired', last_error
      FROM upd
      ON CONFLICT (delivery_id, attempt) DO NOTHING
      RETURNING 1
    ), wake AS (
      SELECT pg_notify(${options.channel}, '') FROM (SELECT 1 FROM upd LIMIT 1) x
    )
    SELECT (SELECT count(*) FROM upd)::int AS rescued, (SELECT count(*) FROM att) AS recorded,
      (SELECT count(*) FROM wake) AS woke`;
  return row?.rescued ?? 0;
}
