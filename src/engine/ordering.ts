/**
 * Per-key ordered delivery: what moves a fifo subscription's queues on.
 * Fan-out places deliveries in their queues by itself (the statement trigger
 * of migration 14 runs for every insert of deliveries, whichever statement
 * made it); the statements here let a queue's next delivery go.
 *
 * @module
 */
import type { Sql } from "../db/pool.ts";

/**
 * The claims in `cte` (rows with `id`, `status` and `queue_id`) that ended a
 * fifo delivery for good (delivered or failed) let their queue's next one
 * go, through `dispatch_queue_next` (migration 14), with queues locked in
 * the order the fan-out locks them. Answers `n`: how many it let go.
 */
export function queueNext(sql: Sql, cte: string) {
  return sql`
    SELECT coalesce(sum(dispatch_queue_next(f.queue_id, f.id)), 0)::int AS n
    FROM (SELECT f.queue_id, f.id FROM ${sql(cte)} f
      JOIN delivery_queues q ON q.id = f.queue_id
      WHERE f.status IN ('delivered', 'failed')
      ORDER BY q.subscription_seq, q.ordering_key) f`;
}

/**
 * A subscription whose ordering became `none`: its queues are forgotten and
 * every delivery parked behind a queue's head goes now. The queue rows are
 * locked first, in the order everything else locks them, so a head ending at
 * the same time never deadlocks with this. Answers how many went (the caller
 * wakes the workers).
 */
export async function releaseOrdered(sql: Sql, seq: number): Promise<number> {
  await sql`
    WITH locked AS (
      SELECT id FROM delivery_queues WHERE subscription_seq = ${seq}
      ORDER BY subscription_seq, ordering_key FOR UPDATE
    )
    DELETE FROM delivery_queues WHERE id IN (SELECT id FROM locked)`;
  const [row] = await sql<{ n: number }[]>`
    WITH released AS (
      UPDATE deliveries SET held_by = NULL, next_attempt_at = now(), updated_at = now()
      WHERE subscription_seq = ${seq} AND next_attempt_at = 'infinity'
        AND status IN ('pending', 'retrying') AND held_by = 'ordering'
      RETURNING 1
    )
    SELECT count(*)::int AS n FROM released`;
  return row?.n ?? 0;
}
