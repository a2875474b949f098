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
 * A status filter over deliveries walks the newest events (deriving each one's status) when
 * at least this many deliveries per event of the page are in that status.
 */
const walkFrom = 20;
/**
 * The most events a walk reads per event of the page (it fills the page when 1 % of the
 * newest events have the status), and the most deliveries in the status counted per event of
 * the page. A default page of 50 walks 5,100 at the most, in ~50 ms (the plan of a longer
 * walk is costed high enough for JIT compilation, ~80 ms more).
 */
const walkAtMost = 100;

/**
 * Newest first; `next` is the sequence number to continue from, if more
 * remain. A status filter that some delivery of the event has (pending,
 * processing, retrying, failed) has two ways, each exact:
 *
 * - walk the events newest first through their indexes and derive each one's
 *   status until the page is full: the way when many events have the status
 *   (a page of 50 dead letters among 2 % of 1,000,000 events reads ~2,500);
 * - start from the deliveries in that status (an index covers each, see
 *   migrations 0003 and 0005), put their events in order and derive the status
 *   of the page's only: the way when few have it (it reads every one of them).
 *
 * The walk goes first when the deliveries in the status are many (counted up
 * to {@linkcode walkAtMost} per event of the page), and no further than there
 * are: when it does not fill the page (the status is rare among the newest
 * events) the second way answers, having cost at most as much again.
 * `no_subscribers` reads an index of its own.
 */
export async function listEvents(
  sql: Sql,
  options: ListEventsOptions,
): Promise<{ events: EventRow[]; next: number | null }> {
  const { status } = options;
  const viaDeliveries = status !== undefined && status !== "delivered" &&
    status !== "no_subscribers";
  if (viaDeliveries) {
    const most = walkAtMost * (options.limit + 1);
    const [{ n }] = await sql<[{ n: number }]>`
      SELECT count(*)::int AS n FROM (SELECT FROM deliveries WHERE status = ${status} LIMIT ${most}) d`;
    if (n >= walkFrom * (options.limit + 1)) {
      const walked = await eventPage(sql, options, { walk: n });
      // Exact when it found one beyond the page: the walk saw every event before that one.
      if (walked.next !== null) return walked;
    }
    return await eventPage(sql, options, { candidates: status });
  }
  return await eventPage(sql, options, {});
}

/**
 * One page by one of the ways of {@linkcode listEvents}: from the events with
 * deliveries in the status `candidates`, or a walk of the events newest first,
 * through at most `walk` of them (all when undefined). A walk that stopped
 * short may miss events after it: its page is exact only when `next` is set.
 */
async function eventPage(
  sql: Sql,
  options: ListEventsOptions,
  way: { candidates?: DeliveryStatus; walk?: number },
): Promise<{ events: EventRow[]; next: number | null }> {
  const { status } = options;
  const { candidates, walk } = way;
  const source = candidates !== undefined
    ? sql`(SELECT DISTINCT event_id FROM deliveries WHERE status = ${candidates}) c
      JOIN events e ON e.id = c.event_id`
    : sql`events e`;
  const rows = await sql<(EventRow & { seq: number })[]>`
    SELECT * FROM (
      SELECT e.seq, ${sql.unsafe(eventColumns)}, ${sql.unsafe(summary)}
      -- Candidates (or the walk's events) are put in order first (OFFSET 0 keeps that a step of
      -- its own): each one's status is then derived only until the page is full, not for them all.
      FROM (SELECT e.* FROM ${source}
      WHERE true ${ofTenant(sql, "e", options)}
        ${options.before !== undefined ? sql`AND e.seq < ${options.before}` : sql``}
        ${options.type !== undefined ? sql`AND e.type = ${options.type}` : sql``}
        ${options.since !== undefined ? sql`AND e.created_at >= ${options.since}` : sql``}
        ${options.until !== undefined ? sql`AND e.created_at < ${options.until}` : sql``}
        ${status === "no_subscribers" ? sql`AND e.fanned_out = 0` : sql``}
        ${status === "delivered" ? sql`AND e.fanned_out > 0` : sql``}
      ${
    candidates !== undefined
      ? sql`ORDER BY e.seq DESC OFFSET 0`
      : walk !== undefined
      ? sql`ORDER BY e.seq DESC LIMIT ${walk}`
      : sql``
  }) e
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
