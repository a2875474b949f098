import type postgres from "postgres";
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
  created_at: Date;
  status: EventStatus;
  deliveries: DeliveryCounts;
}

export type InsertOutcome =
  | { kind: "created"; event: EventRow }
  | { kind: "replayed"; event: EventRow }
  | { kind: "conflict"; event: EventRow };

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

/**
 * Inserts an event and, in the same statement, one delivery per matching
 * active subscription, then notifies workers. An existing id is compared
 * with the new content: same content replays, different content conflicts.
 */
export async function insertEvent(
  sql: Sql,
  event: NewEvent,
  options: { channel: string },
): Promise<InsertOutcome> {
  const data = event.data as postgres.JSONValue;
  const [row] = await sql<{ created_at: Date; fanned: number }[]>`
    WITH ins AS (
      INSERT INTO events (id, type, source, data)
      VALUES (${event.id}, ${event.type}, ${event.source}, ${sql.json(data)})
      ON CONFLICT (id) DO NOTHING
      RETURNING id, type, created_at
    ), fan AS (
      INSERT INTO deliveries (event_id, subscription_id)
      SELECT ins.id, s.id FROM ins JOIN subscriptions s ON s.active AND ${matches(sql)}
      RETURNING 1
    ), wake AS (
      SELECT pg_notify(${options.channel}, '') FROM (SELECT 1 FROM fan LIMIT 1) f
    )
    SELECT ins.created_at, (SELECT count(*) FROM fan)::int AS fanned,
      (SELECT count(*) FROM wake) AS woke
    FROM ins`;
  if (row) {
    const n = row.fanned;
    const deliveries = { ...noDeliveries, total: n, pending: n };
    const status = n === 0 ? "no_subscribers" : "pending";
    return { kind: "created", event: { ...event, created_at: row.created_at, status, deliveries } };
  }
  const stored = await getEvent(sql, event.id);
  if (!stored) throw new Error(`Event "${event.id}" conflicted on insert but cannot be read`);
  return { kind: sameContent(stored, event) ? "replayed" : "conflict", event: stored };
}

const noDeliveries: DeliveryCounts = {
  total: 0,
  pending: 0,
  processing: 0,
  retrying: 0,
  delivered: 0,
  failed: 0,
};

/** `s.event_types` has `*`, the exact `ins.type`, or a `prefix.*` that covers it. */
function matches(sql: Sql) {
  return sql`EXISTS (
    SELECT 1 FROM unnest(s.event_types) p
    WHERE p = '*' OR p = ins.type
       OR (right(p, 2) = '.*' AND starts_with(ins.type, left(p, -1))))`;
}

function sameContent(stored: EventRow, event: NewEvent): boolean {
  return stored.type === event.type && stored.source === event.source &&
    canonical(stored.data) === canonical(event.data);
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

export async function getEvent(sql: Sql, id: string): Promise<EventRow | undefined> {
  const [row] = await sql<EventRow[]>`
    SELECT e.id, e.type, e.source, e.data, e.created_at, ${sql.unsafe(summary)}
    FROM events e WHERE e.id = ${id}`;
  return row;
}

export interface ListEventsOptions {
  limit: number;
  /** Only events older than this sequence number (from a cursor). */
  before?: number | undefined;
  type?: string | undefined;
  status?: EventStatus | undefined;
}

/** Newest first; `next` is the sequence number to continue from, if more remain. */
export async function listEvents(
  sql: Sql,
  options: ListEventsOptions,
): Promise<{ events: EventRow[]; next: number | null }> {
  const rows = await sql<(EventRow & { seq: number })[]>`
    SELECT * FROM (
      SELECT e.seq, e.id, e.type, e.source, e.data, e.created_at, ${sql.unsafe(summary)}
      FROM events e
      WHERE true
        ${options.before !== undefined ? sql`AND e.seq < ${options.before}` : sql``}
        ${options.type !== undefined ? sql`AND e.type = ${options.type}` : sql``}
    ) e
    WHERE true ${options.status !== undefined ? sql`AND e.status = ${options.status}` : sql``}
    ORDER BY e.seq DESC
    LIMIT ${options.limit + 1}`;
  const more = rows.length > options.limit;
  const page = rows.slice(0, options.limit);
  return {
    events: page.map(({ seq: _seq, ...event }) => event),
    next: more ? page.at(-1)!.seq : null,
  };
}
