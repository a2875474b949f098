/**
 * **deliver**, **retry**, **fail** and **abandon**: the statement that writes
 * a batch of claimed deliveries' outcomes and their attempts.
 *
 * @module
 */
import type { Sql } from "../db/pool.ts";
import { queueNext } from "./ordering.ts";
import { endedClaims, releaseHeld } from "./release.ts";
import type { Completion } from "./shapes.ts";

/**
 * A subscription `s` whose health a success changes: a failure counted, failing
 * since some time, or a circuit that is not closed.
 */
const unsettled = `(s.circuit_state <> 'closed' OR s.consecutive_failures > 0
  OR s.failing_since IS NOT NULL)`;

/**
 * **deliver**, **retry**, **fail** and **abandon**: writes a batch of
 * outcomes and their attempts in one statement. A delivery is changed only
 * while the claim is still this one (`locked_by` and the attempt number
 * match), so a write repeated after a lost answer never lands on a newer
 * claim. An attempt is always recorded: it did happen. It replaces the
 * `lease_expired` row the rescuer wrote for it, if any. Each finished claim
 * of a subscription with `max_in_flight` lets one delivery it parked go, and
 * each fifo delivery that ended for good lets the next of its queue go.
 * Answers, per outcome, whether the lease was still this one, and how many
 * held deliveries were let go (the caller wakes the workers for them); null
 * when one of the `unlessUnsettled` subscriptions has a health to change (see
 * {@linkcode unsettled}): then nothing was written.
 */
export async function completeDeliveries(
  sql: Sql,
  workerId: string,
  batch: readonly Completion[],
  options: { unlessUnsettled?: readonly number[] } = {},
): Promise<{ applied: boolean[]; released: number } | null> {
  const sent = batch.filter((c) => c.record !== null);
  const rows = await sql<{ applied: boolean; released: number; unsettled: boolean }[]>`
    WITH stop AS (
      -- Read from the rows as they are now, without a lock: a success on a subscription with
      -- nothing to reset, the common case, changes nothing of it.
      SELECT EXISTS (SELECT 1 FROM subscriptions s
        WHERE s.seq = ANY(${options.unlessUnsettled ?? []}::bigint[])
          AND ${sql.unsafe(unsettled)}) AS unsettled
    ), r AS (
      SELECT * FROM unnest(
        ${batch.map((c) => c.deliveryId)}::bigint[],
        ${batch.map((c) => c.attempt)}::int[],
        ${batch.map((c) => c.status)}::text[],
        ${batch.map((c) => c.retryInMs)}::bigint[],
        ${batch.map((c) => c.lastStatusCode)}::int[],
        ${batch.map((c) => c.lastError)}::text[]
      ) WITH ORDINALITY AS r(id, attempt, status, retry_in_ms, code, error, ord)
    ), upd AS (
      UPDATE deliveries d SET status = r.status,
        next_attempt_at = now() + r.retry_in_ms * interval '1 millisecond',
        last_status_code = r.code, last_error = r.error,
        delivered_at = CASE WHEN r.status = 'delivered' THEN now() END,
        locked_by = NULL, locked_until = NULL, updated_at = now()
      FROM r
      WHERE d.id = r.id AND d.status = 'processing' AND d.locked_by = ${workerId}
        AND d.attempts = r.attempt AND NOT (SELECT unsettled FROM stop)
      RETURNING d.id, d.subscription_seq, d.status, d.queue_id
    ), released AS (
      ${releaseHeld(sql, endedClaims(sql, "upd"))}
    ), queued AS (
      ${queueNext(sql, "upd")}
    ), att AS (
      INSERT INTO delivery_attempts (delivery_id, event_id, subscription_id, subscription_seq,
        attempt, started_at, duration_ms, status_code, error_class, error, response_body,
        response_headers, delivery_created_at)
      SELECT delivery_id, event_id, subscription_id, subscription_seq, attempt, started_at,
        duration_ms, status_code, error_class, error, response_body, response_headers::jsonb,
        -- The delivery's partition is its attempts'.
        (SELECT d.created_at FROM deliveries d WHERE d.id = a.delivery_id)
      FROM unnest(
        ${sent.map((c) => c.deliveryId)}::bigint[],
        ${sent.map((c) => c.eventId)}::text[],
        ${sent.map((c) => c.subscriptionId)}::text[],
        ${sent.map((c) => c.subscriptionSeq)}::bigint[],
        ${sent.map((c) => c.attempt)}::int[],
        ${sent.map((c) => c.record!.startedAt.toISOString())}::timestamptz[],
        ${sent.map((c) => c.record!.durationMs)}::int[],
        ${sent.map((c) => c.record!.statusCode)}::int[],
        ${sent.map((c) => c.record!.errorClass)}::text[],
        ${sent.map((c) => c.record!.error)}::text[],
        ${sent.map((c) => c.record!.responseBody)}::text[],
        ${sent.map((c) => JSON.stringify(c.record!.responseHeaders))}::text[]
      ) AS a(delivery_id, event_id, subscription_id, subscription_seq, attempt, started_at,
        duration_ms, status_code, error_class, error, response_body, response_headers)
      WHERE NOT (SELECT unsettled FROM stop)
      ON CONFLICT (delivery_id, attempt, delivery_created_at) DO UPDATE SET started_at = excluded.started_at,
        duration_ms = excluded.duration_ms, status_code = excluded.status_code,
        error_class = excluded.error_class, error = excluded.error,
        response_body = excluded.response_body, response_headers = excluded.response_headers
      WHERE delivery_attempts.error_class = 'lease_expired'
    )
    SELECT upd.id IS NOT NULL AS applied,
      (SELECT n FROM released) + (SELECT n FROM queued) AS released,
      (SELECT unsettled FROM stop)
    FROM r LEFT JOIN upd ON upd.id = r.id
    ORDER BY r.ord`;
  if (rows[0]?.unsettled) return null;
  return { applied: rows.map((r) => r.applied), released: rows[0]?.released ?? 0 };
}
