/**
 * Events as the API shows them: with their status and delivery counts.
 *
 * @module
 */
import type { Sql } from "../db/pool.ts";
import {
  type DeliveryStatus,
  deliveryStatuses,
  type EventStatus,
  eventStatusOf,
  eventStatusPrecedence,
} from "../engine/states.ts";
import { ofTenant, type TenantFilter } from "./tenant_filter.ts";

export interface DeliveryCountsRow {
  total: number;
  pending: number;
  processing: number;
  retrying: number;
  delivered: number;
  failed: number;
}

export interface EventRow {
  id: string;
  type: string;
  source: string | null;
  data: unknown;
  tenant_id: string | null;
  ordering_key: string | null;
  created_at: Date;
  status: EventStatus;
  deliveries: DeliveryCountsRow;
}

const eventColumns = "e.id, e.type, e.source, e.data, e.tenant_id, e.ordering_key, e.created_at";

// Derived status (the precedence of `eventStatusOf`, in SQL so a list can filter on it) and
// counts of one event's deliveries, for `FROM events e`.
const summary = `
  (SELECT CASE WHEN count(*) = 0 THEN 'no_subscribers'
     ${eventStatusPrecedence.map((s) => `WHEN bool_or(d.status = '${s}') THEN '${s}'`).join(" ")}
   END FROM deliveries d WHERE d.event_id = e.id) AS status,
  (SELECT json_build_object('total', count(*),
     ${deliveryStatuses.map((s) => `'${s}', count(*) FILTER (WHERE d.status = '${s}')`).join(", ")})
   FROM deliveries d WHERE d.event_id = e.id) AS deliveries`;

/** The stored form of a just-created event, without reading it back. */
export function createdEvent(
  event: Omit<EventRow, "created_at" | "status" | "deliveries">,
  outcome: { created_at: Date; fanned: number },
): EventRow {
  const counts: Record<DeliveryStatus, number> = { ...noDeliveries, pending: outcome.fanned };
  return {
    ...event,
    created_at: outcome.created_at,
    status: eventStatusOf(counts),
    deliveries: { total: outcome.fanned, ...counts },
  };
}

const noDeliveries = Object.fromEntries(deliveryStatuses.map((s) => [s, 0])) as Record<
  DeliveryStatus,
  number
>;

/** The event, or undefined when it does not exist or (given `tenantId`) is not that tenant's. */
export async function getEvent(
  sql: Sql,
  id: string,
  options: TenantFilter = {},
): Promise<EventRow | undefined> {
  const [row] = await sql<EventRow[]>`
    SELECT ${sql.unsafe(eventColumns)}, ${sql.unsafe(summary)}
    FROM events e WHERE e.id = ${id} ${ofTenant(sql, "e", options)}`;
  return row;
}

export interface ListEventsOptions extends TenantFilter {
  limit: number;
  /** Only events older than this sequence number (from a cursor). */
  before?: number | undefined;
  type?: string | undefined;
  status?: EventStatus | undefined;
  /** Created at or after / before. */
  since?: Date | undefined;
  until?: Date | undefined;
}

/**
 * Newest first; `next` is the sequence number to continue from, if more
 * remain. A status filter starts from the deliveries in that status (an
 * index over those not delivered) rather than from every event, so a rare
 * status costs what it matches; `no_subscribers` reads an index of its own.
 */
export async function listEvents(
  sql: Sql,
  options: ListEventsOptions,
): Promise<{ events: EventRow[]; next: number | null }> {
  const { status } = options;
  // Statuses that some delivery of the event has: an index covers each (see migration 0003).
  const viaDeliveries = status !== undefined && status !== "delivered" &&
    status !== "no_subscribers";
  const source = viaDeliveries
    ? sql`(SELECT DISTINCT event_id FROM deliveries WHERE status = ${status}) c
      JOIN events e ON e.id = c.event_id`
    : sql`events e`;
  const rows = await sql<(EventRow & { seq: number })[]>`
    SELECT * FROM (
      SELECT e.seq, ${sql.unsafe(eventColumns)}, ${sql.unsafe(summary)}
      -- Candidates from deliveries are put in order first (OFFSET 0 keeps that a step of its
      -- own): each one's status is then derived only until the page is full, not for them all.
      FROM (SELECT e.* FROM ${source}
      WHERE true ${ofTenant(sql, "e", options)}
        ${options.before !== undefined ? sql`AND e.seq < ${options.before}` : sql``}
        ${options.type !== undefined ? sql`AND e.type = ${options.type}` : sql``}
        ${options.since !== undefined ? sql`AND e.created_at >= ${options.since}` : sql``}
        ${options.until !== undefined ? sql`AND e.created_at < ${options.until}` : sql``}
        ${status === "no_subscribers" ? sql`AND e.fanned_out = 0` : sql``}
        ${status === "delivered" ? sql`AND e.fanned_out > 0` : sql``}
      ${viaDeliveries ? sql`ORDER BY e.seq DESC OFFSET 0` : sql``}) e
    ) e
    WHERE true ${status !== undefined ? sql`AND e.status = ${status}` : sql``}
    ORDER BY e.seq DESC
    LIMIT ${options.limit + 1}`;
  const more = rows.length > options.limit;
  const page = rows.slice(0, options.limit);
  return {
    events: page.map(({ seq: _seq, ...event }) => event),
    next: more ? page.at(-1)!.seq : null,
  };
}
