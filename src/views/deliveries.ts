import type { DeliveryStatus, HeldBy } from "../engine/states.ts";
import type { Sql } from "../db/pool.ts";
import { ofTenant, type TenantFilter } from "./tenant_filter.ts";

/**
 * Deliveries `d` whose event is of the filter's tenant (the event's: it outlives the
 * subscription) and, given `eventType`, of that type. One scalar subquery, probed per delivery
 * in the page's order (a semi-join would read every event of the tenant first), and one probe
 * for both conditions.
 */
function ofEvent(sql: Sql, filter: TenantFilter & { eventType?: string | undefined }) {
  const { eventType } = filter;
  if (filter.tenantId === undefined && eventType === undefined) return sql``;
  return sql`AND (SELECT true ${ofTenant(sql, "t", filter)}
    ${eventType !== undefined ? sql`AND t.type = ${eventType}` : sql``}
    FROM events t WHERE t.id = d.event_id)`;
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
  held_by: HeldBy | null;
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
    WHERE d.id = ${id} ${ofEvent(sql, filter)}`;
  return row;
}

export interface DeliveryQuery extends TenantFilter {
  limit: number;
  /** Only deliveries older than this id (from a cursor). */
  before?: number | undefined;
  status?: DeliveryStatus | undefined;
  /** The subscription's seq: deliveries of the subscription that has this id now. */
  subscriptionSeq?: number | undefined;
  /** Fanned out at or after / before. */
  since?: Date | undefined;
  until?: Date | undefined;
  /** Of events of this type. */
  eventType?: string | undefined;
  /** The last answer's class (see {@linkcode lastAnswerIn}). */
  statusClass?: StatusClass | undefined;
}

/** The classes of a delivery's last answer; `network`: none came (a timeout, a refused connection). */
export const statusClasses = ["2xx", "3xx", "4xx", "5xx", "network"] as const;
export type StatusClass = (typeof statusClasses)[number];

/** Deliveries `d` whose last answer is of class `cls`: the one place the classes are written. */
export function lastAnswerIn(sql: Sql, cls: StatusClass) {
  if (cls === "network") return sql`d.last_status_code IS NULL`;
  const hundreds = Number(cls[0]) * 100;
  return sql`d.last_status_code >= ${hundreds} AND d.last_status_code < ${hundreds + 100}`;
}

/** The conditions of a {@linkcode DeliveryQuery} on deliveries `d`, but the page's. */
function matching(sql: Sql, filter: Omit<DeliveryQuery, "limit" | "before">) {
  const { status, subscriptionSeq, since, until, statusClass } = filter;
  return sql`
    ${status !== undefined ? sql`AND d.status = ${status}` : sql``}
    ${subscriptionSeq !== undefined ? sql`AND d.subscription_seq = ${subscriptionSeq}` : sql``}
    ${since !== undefined ? sql`AND d.created_at >= ${since}` : sql``}
    ${until !== undefined ? sql`AND d.created_at < ${until}` : sql``}
    ${statusClass !== undefined ? sql`AND ${lastAnswerIn(sql, statusClass)}` : sql``}
    ${ofEvent(sql, filter)}`;
}

/** How many deliveries match (the dead letters' page shows it before retrying them all). */
export async function countDeliveries(
  sql: Sql,
  filter: Omit<DeliveryQuery, "limit" | "before">,
): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM deliveries d WHERE true ${matching(sql, filter)}`;
  return row!.n;
}

/**
 * Newest first; `next` is the id to continue from, if more remain. With
 * `status: "failed"` (the dead letters) it reads their index only.
 */
export async function listDeliveries(
  sql: Sql,
  filter: DeliveryQuery,
): Promise<{ deliveries: DeliveryRow[]; next: number | null }> {
  const { before } = filter;
  const rows = await sql<DeliveryRow[]>`
    SELECT ${sql.unsafe(columns)} FROM deliveries d
    WHERE true
      ${before !== undefined ? sql`AND d.id < ${before}` : sql``}
      ${matching(sql, filter)}
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
