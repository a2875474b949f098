import type { Sql } from "./pool.ts";

/** The queue as an operator watches it: what waits, what is in flight, how late it runs. */
export interface QueueStats {
  pending: number;
  retrying: number;
  processing: number;
  /** How long the most overdue waiting delivery has been due; 0 when none is. */
  oldestDueAgeSeconds: number;
  disabledSubscriptions: number;
}

/**
 * Reads {@linkcode QueueStats} in one statement. Each part reads only a
 * partial index's rows (waiting: `deliveries_due`, in flight:
 * `deliveries_leased`), so the cost follows the backlog, not the history.
 */
export async function queueStats(sql: Sql): Promise<QueueStats> {
  const [row] = await sql<QueueStats[]>`
    SELECT w.pending, w.retrying,
      (SELECT count(*) FROM deliveries WHERE status = 'processing') AS processing,
      coalesce(extract(epoch FROM now() - (
        SELECT min(next_attempt_at) FROM deliveries
        WHERE status IN ('pending', 'retrying') AND next_attempt_at <= now()
      )), 0)::float8 AS "oldestDueAgeSeconds",
      (SELECT count(*) FROM subscriptions WHERE NOT active) AS "disabledSubscriptions"
    FROM (
      SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
        count(*) FILTER (WHERE status = 'retrying') AS retrying
      FROM deliveries WHERE status IN ('pending', 'retrying')
    ) w`;
  return row!;
}
