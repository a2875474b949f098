import type { DeliveryStatus } from "../delivery/lifecycle.ts";
import type { Sql } from "./pool.ts";

export interface DeliveryRow {
  subscription_id: string;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: Date | null;
  last_status_code: number | null;
  last_error: string | null;
  delivered_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface AttemptRow {
  id: number;
  subscription_id: string;
  attempt: number;
  started_at: Date;
  duration_ms: number;
  status_code: number | null;
  error_class: string | null;
  error: string | null;
  response_body: string | null;
  response_headers: Record<string, string>;
}

export async function listDeliveries(sql: Sql, eventId: string): Promise<DeliveryRow[]> {
  return await sql<DeliveryRow[]>`
    SELECT subscription_id, status, attempts,
      CASE WHEN status IN ('pending', 'retrying') THEN next_attempt_at END AS next_attempt_at,
      last_status_code, last_error, delivered_at, created_at, updated_at
    FROM deliveries WHERE event_id = ${eventId} ORDER BY id`;
}

/** Every attempt of an event, oldest first. */
export async function listAttempts(sql: Sql, eventId: string): Promise<AttemptRow[]> {
  return await sql<AttemptRow[]>`
    SELECT id, subscription_id, attempt, started_at, duration_ms, status_code, error_class,
      error, response_body, response_headers
    FROM delivery_attempts WHERE event_id = ${eventId} ORDER BY id`;
}

export interface RequeueResult {
  requeued: string[];
  skipped: { subscription_id: string; reason: string }[];
}

/**
 * **requeue**: puts an event's failed deliveries back in the queue with a
 * fresh attempt budget (attempt numbers keep counting). Deliveries whose
 * subscription is gone or disabled stay failed and are reported, so nothing
 * is re-enabled silently. The event row is share-locked first, so retention
 * (which locks it for update) can never delete a delivery this puts back.
 */
export async function requeueFailed(
  sql: Sql,
  eventId: string,
  options: { channel: string },
): Promise<RequeueResult> {
  const rows = await sql<{ subscription_id: string; active: boolean | null; done: boolean }[]>`
    WITH event AS (
      SELECT id FROM events WHERE id = ${eventId} FOR KEY SHARE
    ), failed AS (
      SELECT d.id, d.subscription_id, s.active
      FROM deliveries d LEFT JOIN subscriptions s ON s.seq = d.subscription_seq
      WHERE d.event_id = (SELECT id FROM event) AND d.status = 'failed'
      FOR UPDATE OF d
    ), done AS (
      UPDATE deliveries d SET status = 'retrying', attempt_base = d.attempts, next_attempt_at = now(),
        last_error = NULL, last_status_code = NULL, updated_at = now()
      FROM failed f WHERE d.id = f.id AND f.active
      RETURNING d.id
    ), wake AS (
      SELECT pg_notify(${options.channel}, '') FROM (SELECT 1 FROM done LIMIT 1) x
    )
    SELECT f.subscription_id, f.active, f.id IN (SELECT id FROM done) AS done,
      (SELECT count(*) FROM wake) AS woke
    FROM failed f ORDER BY f.id`;
  return {
    requeued: rows.filter((r) => r.done).map((r) => r.subscription_id),
    skipped: rows.filter((r) => !r.done).map((r) => ({
      subscription_id: r.subscription_id,
      reason: r.active === null ? "subscription deleted" : "subscription disabled",
    })),
  };
}
