import type { Sql } from "../db/pool.ts";
import { lastAnswerIn, type StatusClass } from "../views/deliveries.ts";
import { ofTenant, type TenantFilter } from "../views/tenant_filter.ts";

/**
 * Failed deliveries that a retry would put back (their subscription exists
 * and is active), by their event's tenant and type, their subscription,
 * when they were fanned out (as `GET /deliveries` filters them), and the
 * class of their last answer.
 */
export interface FailedFilter extends TenantFilter {
  subscriptionSeq?: number | undefined;
  eventType?: string | undefined;
  since?: Date | undefined;
  until?: Date | undefined;
  /** Only these deliveries (a console's "retry selected"). */
  deliveryIds?: readonly number[] | undefined;
  statusClass?: StatusClass | undefined;
}

/** Which failed deliveries a requeue puts back. */
export type RequeueScope =
  | { eventId: string }
  | { deliveryId: number }
  | { subscriptionSeq: number; since: Date; until: Date | null }
  | { failed: FailedFilter };

/** The failed deliveries of `f` (id and event id), read from the dead letters' index. */
function failedMatching(sql: Sql, f: FailedFilter) {
  const { subscriptionSeq: seq, eventType: type, since, until, statusClass, deliveryIds: ids } = f;
  return sql`SELECT d.id, d.event_id FROM deliveries d JOIN events e ON e.id = d.event_id
    WHERE d.status = 'failed'
      AND EXISTS (SELECT 1 FROM subscriptions s WHERE s.seq = d.subscription_seq AND s.active)
      ${ids !== undefined ? sql`AND d.id = ANY(${ids}::bigint[])` : sql``}
      ${seq !== undefined ? sql`AND d.subscription_seq = ${seq}` : sql``}
      ${type !== undefined ? sql`AND e.type = ${type}` : sql``}
      ${since !== undefined ? sql`AND d.created_at >= ${since}` : sql``}
      ${until !== undefined ? sql`AND d.created_at < ${until}` : sql``}
      ${statusClass !== undefined ? sql`AND ${lastAnswerIn(sql, statusClass)}` : sql``}
      ${ofTenant(sql, "e", f)}`;
}

/**
 * **requeue**, the one statement every retry and recovery uses: puts failed
 * deliveries back in the queue with a fresh attempt budget (attempt numbers
 * keep counting). Deliveries whose subscription is gone or disabled stay
 * failed and are reported, so nothing is re-enabled silently. Their events
 * are share-locked first, so retention (which locks an event for update
 * before it deletes it) can never delete a delivery this puts back.
 */
function requeue(sql: Sql, scope: RequeueScope) {
  const target = "eventId" in scope
    ? sql`SELECT d.id, d.event_id FROM deliveries d
      WHERE d.event_id = ${scope.eventId} AND d.status = 'failed'`
    : "deliveryId" in scope
    ? sql`SELECT d.id, d.event_id FROM deliveries d
      WHERE d.id = ${scope.deliveryId} AND d.status = 'failed'`
    : "failed" in scope
    ? failedMatching(sql, scope.failed)
    : sql`SELECT d.id, d.event_id FROM deliveries d JOIN events e ON e.id = d.event_id
      WHERE d.subscription_seq = ${scope.subscriptionSeq} AND d.status = 'failed'
        AND e.created_at >= ${scope.since}
        ${scope.until === null ? sql`` : sql`AND e.created_at < ${scope.until}`}`;
  return sql`
    WITH target AS (${target}), event AS (
      SELECT id FROM events WHERE id IN (SELECT event_id FROM target) FOR KEY SHARE
    ), failed AS (
      -- Driven from the target by primary key, one probe each whatever the statistics say;
      -- the events are locked first (the subquery runs once, before the scan).
      SELECT d.id, d.subscription_id, s.active
      FROM target t
      JOIN deliveries d ON d.id = t.id
      LEFT JOIN subscriptions s ON s.seq = d.subscription_seq
      WHERE d.status = 'failed' AND (SELECT count(*) FROM event) >= 0
      FOR UPDATE OF d
    ), done AS (
      UPDATE deliveries d SET status = 'retrying', attempt_base = d.attempts,
        next_attempt_at = now(), held_by = NULL, last_error = NULL, last_status_code = NULL,
        updated_at = now()
      FROM failed f WHERE d.id = f.id AND f.active
      RETURNING d.id
    )`;
}

export interface RequeueResult {
  requeued: string[];
  skipped: { subscription_id: string; reason: string }[];
}

/** **requeue** one event's failed deliveries, each reported by its subscription. */
export async function requeueFailed(
  sql: Sql,
  scope: { eventId: string } | { deliveryId: number },
): Promise<RequeueResult> {
  const rows = await sql<{ subscription_id: string; active: boolean | null; done: boolean }[]>`
    ${requeue(sql, scope)}
    SELECT f.subscription_id, f.active, f.id IN (SELECT id FROM done) AS done
    FROM failed f ORDER BY f.id`;
  return {
    requeued: rows.filter((r) => r.done).map((r) => r.subscription_id),
    skipped: rows.filter((r) => !r.done).map((r) => ({
      subscription_id: r.subscription_id,
      reason: r.active === null ? "subscription deleted" : "subscription disabled",
    })),
  };
}

/**
 * **requeue** many failed deliveries in one statement: a subscription's of
 * events created in a window (a recovery), or those of a filter (a bulk retry).
 */
export async function requeueMany(
  sql: Sql,
  scope: { subscriptionSeq: number; since: Date; until: Date | null } | { failed: FailedFilter },
): Promise<number> {
  return await sql.begin(async (tx) => {
    // However many there are: no statement timeout applies.
    await tx`SET LOCAL statement_timeout = 0`;
    const [row] = await tx<{ requeued: number }[]>`
      ${requeue(tx as unknown as Sql, scope)}
      SELECT (SELECT count(*) FROM done)::int AS requeued`;
    return row?.requeued ?? 0;
  });
}

/** How many failed deliveries a retry of `filter` would put back, changing nothing. */
export async function countFailed(sql: Sql, filter: FailedFilter): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM (${failedMatching(sql, filter)}) t`;
  return row!.n;
}
