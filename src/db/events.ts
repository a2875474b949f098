import { fanOut } from "./fan_out.ts";
import { ofTenant, type TenantFilter } from "./tenant_filter.ts";
import type { Sql } from "./pool.ts";

export const eventStatuses = [
  "no_subscribers",
  "pending",
  "processing",
  "retrying",
  "delivered",
  "failed",
] as const;
export type EventStatus = (typeof eventStatuses)[number];

export interface NewEvent {
  id: string;
  type: string;
  source: string | null;
  data: unknown;
  tenant_id: string | null;
  /**
   * `data` as the producer wrote it: stored beside it and sent byte for byte,
   * so a delivery is never larger than what was accepted. Default: `data` encoded.
   */
  dataText?: string;
}

/** The JSON text of an event's `data` as it is stored and sent. */
export function dataText(event: NewEvent): string {
  return event.dataText ?? JSON.stringify(event.data);
}

export interface DeliveryCounts {
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
  created_at: Date;
  status: EventStatus;
  deliveries: DeliveryCounts;
}

const eventColumns = "e.id, e.type, e.source, e.data, e.tenant_id, e.created_at";

// Derived status and counts of one event's deliveries, for `FROM events e`.
const summary = `
  (SELECT CASE
     WHEN count(*) = 0 THEN 'no_subscribers'
     WHEN bool_or(d.status = 'processing') THEN 'processing'
     WHEN bool_or(d.status = 'retrying') THEN 'retrying'
     WHEN bool_or(d.status = 'pending') THEN 'pending'
     WHEN bool_or(d.status = 'failed') THEN 'failed'
     ELSE 'delivered' END
   FROM deliveries d WHERE d.event_id = e.id) AS status,
  (SELECT json_build_object(
     'total', count(*),
     'pending', count(*) FILTER (WHERE d.status = 'pending'),
     'processing', count(*) FILTER (WHERE d.status = 'processing'),
     'retrying', count(*) FILTER (WHERE d.status = 'retrying'),
     'delivered', count(*) FILTER (WHERE d.status = 'delivered'),
     'failed', count(*) FILTER (WHERE d.status = 'failed'))
   FROM deliveries d WHERE d.event_id = e.id) AS deliveries`;

export type BatchOutcome =
  | { kind: "created"; created_at: Date; fanned: number }
  | { kind: "replayed" | "conflict" };

/**
 * Inserts events and, in the same statement, one delivery per matching
 * active subscription, then notifies workers once. An id that exists (or
 * repeats within the batch) is compared with the new content: the same
 * content replays, different content conflicts. Outcomes are in input order.
 */
export async function insertEvents(
  sql: Sql,
  events: readonly NewEvent[],
  options: {
    channel: string;
    /** Fan out to this subscription only, whatever its patterns (`POST /subscriptions/:id/test`). */
    to?: { id: string; seq: number };
  },
): Promise<BatchOutcome[]> {
  const to = options.to;
  const rows = await sql<{ id: string; created_at: Date; fanned: number }[]>`
    WITH input AS (
      SELECT DISTINCT ON (id) id, type, source, data::jsonb AS data, data AS data_text, tenant_id
      FROM unnest(
        ${events.map((e) => e.id)}::text[],
        ${events.map((e) => e.type)}::text[],
        ${events.map((e) => e.source)}::text[],
        ${events.map(dataText)}::text[],
        ${events.map((e) => e.tenant_id)}::text[]
      ) WITH ORDINALITY AS i(id, type, source, data, tenant_id, ord)
      ORDER BY id, ord
    ), matched AS (${
    to === undefined
      ? fanOut(sql, sql("input"))
      : sql`SELECT id AS event_id, ${to.id}::text AS subscription_id,
          ${to.seq}::bigint AS subscription_seq FROM input`
  }), counted AS (
      SELECT event_id, count(*) AS n FROM matched GROUP BY event_id
    ), ins AS (
      INSERT INTO events (id, type, source, data, data_text, tenant_id, fanned_out)
      SELECT i.id, i.type, i.source, i.data, i.data_text, i.tenant_id, coalesce(c.n, 0)
      FROM input i LEFT JOIN counted c ON c.event_id = i.id
      ON CONFLICT (id) DO NOTHING
      RETURNING id, created_at, fanned_out
    ), fan AS (
      INSERT INTO deliveries (event_id, subscription_id, subscription_seq)
      SELECT m.event_id, m.subscription_id, m.subscription_seq
      FROM matched m JOIN ins ON ins.id = m.event_id
      RETURNING 1
    ), wake AS (
      SELECT pg_notify(${options.channel}, '') FROM (SELECT 1 FROM fan LIMIT 1) f
    )
    SELECT ins.id, ins.created_at, ins.fanned_out AS fanned, (SELECT count(*) FROM wake) AS woke
    FROM ins`;
  const created = new Map(rows.map((r) => [r.id, r]));
  const others = events.filter((e) => !created.has(e.id)).map((e) => e.id);
  const existing = new Map<string, NewEvent>();
  if (others.length > 0) {
    const stored = await sql<NewEvent[]>`
      SELECT id, type, source, data, tenant_id FROM events WHERE id = ANY(${others}::text[])`;
    for (const e of stored) existing.set(e.id, e);
  }
  const seen = new Set<string>();
  return events.map((e) => {
    const row = created.get(e.id);
    const first = !seen.has(e.id);
    seen.add(e.id);
    if (row && first) return { kind: "created", created_at: row.created_at, fanned: row.fanned };
    // A repeat within the batch compares with the batch's first copy.
    const before = row ? events.find((x) => x.id === e.id)! : existing.get(e.id);
    if (!before) throw new Error(`Event "${e.id}" conflicted on insert but cannot be read`);
    return { kind: sameContent(before, e) ? "replayed" : "conflict" };
  });
}

/** The stored form of a just-created event, without reading it back. */
export function createdEvent(
  event: NewEvent,
  outcome: { created_at: Date; fanned: number },
): EventRow {
  const n = outcome.fanned;
  return {
    ...event,
    created_at: outcome.created_at,
    status: n === 0 ? "no_subscribers" : "pending",
    deliveries: { ...noDeliveries, total: n, pending: n },
  };
}

const noDeliveries: DeliveryCounts = {
  total: 0,
  pending: 0,
  processing: 0,
  retrying: 0,
  delivered: 0,
  failed: 0,
};

function sameContent(stored: NewEvent, event: NewEvent): boolean {
  return stored.type === event.type && stored.source === event.source &&
    stored.tenant_id === event.tenant_id && canonical(stored.data) === canonical(event.data);
}

// jsonb does not keep key order, so compare with sorted keys.
function canonical(value: unknown): string {
  return JSON.stringify(
    value,
    (_k, v) =>
      v && typeof v === "object" && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
        : v,
  );
}

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
      FROM ${source}
      WHERE true ${ofTenant(sql, "e", options)}
        ${options.before !== undefined ? sql`AND e.seq < ${options.before}` : sql``}
        ${options.type !== undefined ? sql`AND e.type = ${options.type}` : sql``}
        ${status === "no_subscribers" ? sql`AND e.fanned_out = 0` : sql``}
        ${status === "delivered" ? sql`AND e.fanned_out > 0` : sql``}
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
