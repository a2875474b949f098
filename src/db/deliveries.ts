import type postgres from "postgres";
import type { DeliveryStatus } from "../delivery/lifecycle.ts";
import type { Sql } from "./pool.ts";
import { ofTenant, type TenantFilter } from "./tenant_filter.ts";

/** Deliveries `d` of the filter's tenant: their event's tenant (it outlives the subscription). */
function ofEventTenant(sql: Sql, filter: TenantFilter) {
  return filter.tenantId === undefined
    ? sql``
    : sql`AND EXISTS (SELECT 1 FROM events e WHERE e.id = d.event_id ${
      ofTenant(sql, "e", filter)
    })`;
}

export interface DeliveryRow {
  id: number;
  event_id: string;
  subscription_id: string;
  status: DeliveryStatus;
  attempts: number;
  /** When it is next due, while it waits; null while parked, waiting for its subscription. */
  next_attempt_at: Date | null;
  /** What holds it back while it waits, beside its backoff: a limit or an open circuit. */
  held_by: "rate_limit" | "max_in_flight" | "circuit" | null;
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

const columns = `d.id, d.event_id, d.subscription_id, d.status, d.attempts,
  CASE WHEN d.status IN ('pending', 'retrying') AND d.next_attempt_at <> 'infinity'
    THEN d.next_attempt_at END AS next_attempt_at,
  CASE WHEN d.status IN ('pending', 'retrying') THEN d.held_by END AS held_by,
  d.last_status_code, d.last_error, d.delivered_at, d.created_at, d.updated_at`;

export async function listEventDeliveries(sql: Sql, eventId: string): Promise<DeliveryRow[]> {
  return await sql<DeliveryRow[]>`
    SELECT ${sql.unsafe(columns)} FROM deliveries d WHERE d.event_id = ${eventId} ORDER BY d.id`;
}

export async function getDelivery(
  sql: Sql,
  id: number,
  filter: TenantFilter = {},
): Promise<DeliveryRow | undefined> {
  const [row] = await sql<DeliveryRow[]>`
    SELECT ${sql.unsafe(columns)} FROM deliveries d
    WHERE d.id = ${id} ${ofEventTenant(sql, filter)}`;
  return row;
}

export interface DeliveryFilter extends TenantFilter {
  limit: number;
  /** Only deliveries older than this id (from a cursor). */
  before?: number | undefined;
  status?: DeliveryStatus | undefined;
  /** The subscription's seq: deliveries of the subscription that has this id now. */
  subscriptionSeq?: number | undefined;
  /** Fanned out at or after / before. */
  since?: Date | undefined;
  until?: Date | undefined;
}

/**
 * Newest first; `next` is the id to continue from, if more remain. With
 * `status: "failed"` (the dead letters) it reads their index only.
 */
export async function listDeliveries(
  sql: Sql,
  filter: DeliveryFilter,
): Promise<{ deliveries: DeliveryRow[]; next: number | null }> {
  const { before, status, subscriptionSeq, since, until } = filter;
  const rows = await sql<DeliveryRow[]>`
    SELECT ${sql.unsafe(columns)} FROM deliveries d
    WHERE true
      ${before !== undefined ? sql`AND d.id < ${before}` : sql``}
      ${status !== undefined ? sql`AND d.status = ${status}` : sql``}
      ${subscriptionSeq !== undefined ? sql`AND d.subscription_seq = ${subscriptionSeq}` : sql``}
      ${since !== undefined ? sql`AND d.created_at >= ${since}` : sql``}
      ${until !== undefined ? sql`AND d.created_at < ${until}` : sql``}
      ${ofEventTenant(sql, filter)}
    ORDER BY d.id DESC
    LIMIT ${filter.limit + 1}`;
  const more = rows.length > filter.limit;
  const page = rows.slice(0, filter.limit);
  return { deliveries: page, next: more ? page.at(-1)!.id : null };
}

/** Every attempt of an event, oldest first. */
export async function listAttempts(sql: Sql, eventId: string): Promise<AttemptRow[]> {
  return await sql<AttemptRow[]>`
    SELECT id, subscription_id, attempt, started_at, duration_ms, status_code, error_class,
      error, response_body, response_headers
    FROM delivery_attempts WHERE event_id = ${eventId} ORDER BY id`;
}

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

/** Which failed deliveries a requeue puts back. */
export type RequeueScope =
  | { eventId: string }
  | { deliveryId: number }
  | { subscriptionSeq: number; since: Date; until: Date | null };

/**
 * **requeue**, the one statement every retry and recovery uses: puts failed
 * deliveries back in the queue with a fresh attempt budget (attempt numbers
 * keep counting). Deliveries whose subscription is gone or disabled stay
 * failed and are reported, so nothing is re-enabled silently. Their events
 * are share-locked first, so retention (which locks an event for update
 * before it deletes it) can never delete a delivery this puts back.
 */
function requeue(sql: Sql, scope: RequeueScope, channel: string) {
  const target = "eventId" in scope
    ? sql`SELECT d.id, d.event_id FROM deliveries d
      WHERE d.event_id = ${scope.eventId} AND d.status = 'failed'`
    : "deliveryId" in scope
    ? sql`SELECT d.id, d.event_id FROM deliveries d
      WHERE d.id = ${scope.deliveryId} AND d.status = 'failed'`
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
    ), wake AS (
      SELECT pg_notify(${channel}, '') FROM (SELECT 1 FROM done LIMIT 1) x
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
  options: { channel: string },
): Promise<RequeueResult> {
  const rows = await sql<{ subscription_id: string; active: boolean | null; done: boolean }[]>`
    ${requeue(sql, scope, options.channel)}
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

/** **requeue** a subscription's failed deliveries of events created in a window, in one statement. */
export async function recoverFailed(
  sql: Sql,
  scope: { subscriptionSeq: number; since: Date; until: Date | null },
  options: { channel: string },
): Promise<number> {
  return await sql.begin(async (tx) => {
    // However many there are: no statement timeout applies.
    await tx`SET LOCAL statement_timeout = 0`;
    const [row] = await tx<{ requeued: number }[]>`
      ${requeue(tx as unknown as Sql, scope, options.channel)}
      SELECT (SELECT count(*) FROM done)::int AS requeued, (SELECT count(*) FROM wake) AS woke`;
    return row?.requeued ?? 0;
  });
}
