import type { Sql } from "../db/pool.ts";

/** The queue as an operator watches it: what waits, what is in flight, how late it runs. */
export interface QueueStats {
  pending: number;
  retrying: number;
  processing: number;
  /** How long the most overdue waiting delivery has been due; 0 when none is. */
  oldestDueAgeSeconds: number;
  disabledSubscriptions: number;
  /** Subscriptions whose circuit is open or half open. */
  openCircuits: number;
}

/**
 * Reads {@linkcode QueueStats} in one statement. Each part reads only a
 * partial index's rows (waiting: `deliveries_pending_due` and
 * `deliveries_retrying_due`, in flight: `deliveries_leased`), so the cost
 * follows the backlog, not the history.
 */
export async function queueStats(sql: Sql): Promise<QueueStats> {
  const [row] = await sql<QueueStats[]>`
    SELECT w.pending, w.retrying,
      (SELECT count(*) FROM deliveries WHERE status = 'processing') AS processing,
      coalesce(extract(epoch FROM now() - (
        SELECT min(next_attempt_at) FROM deliveries
        WHERE status IN ('pending', 'retrying') AND next_attempt_at <= now()
      )), 0)::float8 AS "oldestDueAgeSeconds",
      (SELECT count(*) FROM subscriptions WHERE NOT active) AS "disabledSubscriptions",
      (SELECT count(*) FROM subscriptions WHERE circuit_state <> 'closed') AS "openCircuits"
    FROM (
      SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
        count(*) FILTER (WHERE status = 'retrying') AS retrying
      FROM deliveries WHERE status IN ('pending', 'retrying')
    ) w`;
  return row!;
}

/** One subscription's attempts in a window, as `GET /subscriptions/:id/stats` shows them. */
export interface SubscriptionStatsRow {
  /** Attempts by result class: `success` or the error class, as the attempts metric counts them. */
  attempts: Record<string, number>;
  /** Successes over attempts, from 0 to 1; null with no attempts. */
  success_rate: number | null;
  latency_ms: { p50: number | null; p95: number | null };
  last_success_at: Date | null;
  last_failure_at: Date | null;
}

/**
 * Reads the subscription's attempts of the last `windowMs` through their
 * index (subscription, started_at): the cost follows those attempts, not the
 * table. Placeholders of the rescuer (`lease_expired`) count as attempts but
 * not as latency.
 */
export async function subscriptionStats(
  sql: Sql,
  seq: number,
  windowMs: number,
): Promise<SubscriptionStatsRow> {
  const [row] = await sql<(SubscriptionStatsRow & { total: number; successes: number })[]>`
    WITH a AS (
      SELECT coalesce(error_class, 'success') AS result, duration_ms, started_at
      FROM delivery_attempts
      WHERE subscription_seq = ${seq}
        AND started_at >= now() - ${windowMs} * interval '1 millisecond'
    )
    SELECT
      coalesce((SELECT json_object_agg(result, n) FROM (
        SELECT result, count(*)::int AS n FROM a GROUP BY result ORDER BY result) c), '{}')
        AS attempts,
      (SELECT count(*)::int FROM a) AS total,
      (SELECT count(*)::int FROM a WHERE result = 'success') AS successes,
      json_build_object(
        'p50', (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms)
          FROM a WHERE result <> 'lease_expired'),
        'p95', (SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms)
          FROM a WHERE result <> 'lease_expired')) AS latency_ms,
      (SELECT max(started_at) FROM a WHERE result = 'success') AS last_success_at,
      (SELECT max(started_at) FROM a WHERE result <> 'success') AS last_failure_at`;
  const { total, successes, ...stats } = row!;
  return { ...stats, success_rate: total === 0 ? null : successes / total };
}
