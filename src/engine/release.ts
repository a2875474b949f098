/**
 * **release**: the one statement family that lets parked deliveries go.
 *
 * @module
 */
import type postgres from "postgres";
import type { Sql } from "../db/pool.ts";

/**
 * **release**, the one statement that lets parked deliveries go: for each
 * `(seq, n)` row of `grants`, `dispatch_release_held(seq, n)` (migration 10)
 * lets `n` go, or with `n` null what the subscription's state allows now.
 * Subscriptions are locked in `seq` order, so two releases never deadlock.
 * Answers `n`: how many it let go, to wake the workers when any.
 */
export function releaseHeld(sql: Sql, grants: postgres.Fragment) {
  return sql`
    SELECT coalesce(sum(dispatch_release_held(g.seq, g.n)), 0)::int AS n
    FROM (${grants} ORDER BY 1) g(seq, n)`;
}

/**
 * The grants for claims that ended, counted per subscription from `cte` (the
 * ended claims' rows, with their `subscription_seq`): only subscriptions with
 * max_in_flight park for a claim's end.
 */
export function endedClaims(sql: Sql, cte: string) {
  return sql`SELECT s.seq, count(*)::int FROM ${sql(cte)} f JOIN subscriptions s
    ON s.seq = f.subscription_seq
    WHERE s.max_in_flight IS NOT NULL GROUP BY s.seq`;
}
