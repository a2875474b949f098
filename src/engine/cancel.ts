import type postgres from "postgres";
import type { Sql } from "../db/pool.ts";

/**
 * **cancel**: the statement that fails the waiting deliveries of the
 * subscriptions `seqs` selects (a subquery, or one seq), so none is attempted
 * again; `reason` becomes their last error. A fragment, so that a delete can
 * run it in its own statement.
 */
export function cancelWaiting(sql: Sql, seqs: postgres.Fragment, reason: string) {
  return sql`
    UPDATE deliveries SET status = 'failed', held_by = NULL, next_attempt_at = now(),
      last_error = ${reason}, updated_at = now()
    WHERE subscription_seq IN (${seqs}) AND status IN ('pending', 'retrying')`;
}
