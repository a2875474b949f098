/**
 * **publish**: the statement that stores events and fans them out. Every
 * way in (`POST /events`, `POST /events/batch`, `POST /subscriptions/:id/test`,
 * the operational events) ends in it, through the engine's `publish`.
 *
 * @module
 */
import type { Sql } from "../db/pool.ts";
import { fanOut } from "./fan_out.ts";

/** An event to store, as a request gave it (with its defaults filled in). */
export interface EventInput {
  id: string;
  type: string;
  source: string | null;
  data: unknown;
  tenant_id: string | null;
  /** Orders this event after earlier ones with the same key, for fifo subscriptions. */
  ordering_key?: string | null | undefined;
  /**
   * `data` as the producer wrote it: stored beside it and sent byte for byte,
   * so a delivery is never larger than what was accepted. Default: `data` encoded.
   */
  dataText?: string;
}

/** The JSON text of an event's `data` as it is stored and sent. */
export function dataText(event: EventInput): string {
  return event.dataText ?? JSON.stringify(event.data);
}

/** Fan out to this subscription only, whatever its patterns (`POST /subscriptions/:id/test`). */
export interface Target {
  id: string;
  seq: number;
}

export type BatchOutcome =
  | { kind: "created"; created_at: Date; fanned: number }
  | { kind: "replayed" | "conflict" };

/**
 * Inserts events and, in the same statement, one delivery per matching
 * active subscription (`fanned` counts them: the caller wakes the workers
 * when there are any). An id that exists (or
 * repeats within the batch) is compared with the new content: the same
 * content replays, different content conflicts. Outcomes are in input order.
 */
export async function insertEvents(
  sql: Sql,
  events: readonly EventInput[],
  options: { to?: Target | undefined } = {},
): Promise<BatchOutcome[]> {
  const to = options.to;
  const rows = await sql<{ id: string; created_at: Date; fanned: number }[]>`
    WITH input AS (
      SELECT DISTINCT ON (id) id, type, source, data::jsonb AS data, data AS data_text, tenant_id,
        ordering_key, ord
      FROM unnest(
        ${events.map((e) => e.id)}::text[],
        ${events.map((e) => e.type)}::text[],
        ${events.map((e) => e.source)}::text[],
        ${events.map(dataText)}::text[],
        ${events.map((e) => e.tenant_id)}::text[],
        ${events.map((e) => e.ordering_key ?? null)}::text[]
      ) WITH ORDINALITY AS i(id, type, source, data, tenant_id, ordering_key, ord)
      ORDER BY id, ord
    ), matched AS (${
    to === undefined
      ? fanOut(sql, sql("input"))
      : sql`SELECT id AS event_id, ${to.id}::text AS subscription_id,
          ${to.seq}::bigint AS subscription_seq FROM input`
  }), counted AS (
      SELECT event_id, count(*) AS n FROM matched GROUP BY event_id
    ), ins AS (
      INSERT INTO events (id, type, source, data, data_text, tenant_id, ordering_key, fanned_out)
      SELECT i.id, i.type, i.source, i.data, i.data_text, i.tenant_id, i.ordering_key,
        coalesce(c.n, 0)
      FROM input i LEFT JOIN counted c ON c.event_id = i.id
      ON CONFLICT (id) DO NOTHING
      RETURNING id, created_at, fanned_out
    ), fan AS (
      -- In input order: a fifo queue sends its deliveries in the order of their ids.
      INSERT INTO deliveries (event_id, subscription_id, subscription_seq)
      SELECT m.event_id, m.subscription_id, m.subscription_seq
      FROM matched m JOIN ins ON ins.id = m.event_id JOIN input i ON i.id = m.event_id
      ORDER BY i.ord
    )
    SELECT ins.id, ins.created_at, ins.fanned_out AS fanned FROM ins`;
  const created = new Map(rows.map((r) => [r.id, r]));
  const others = events.filter((e) => !created.has(e.id)).map((e) => e.id);
  const existing = new Map<string, EventInput>();
  if (others.length > 0) {
    const stored = await sql<EventInput[]>`
      SELECT id, type, source, data, tenant_id, ordering_key FROM events WHERE id = ANY(${others}::text[])`;
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

function sameContent(stored: EventInput, event: EventInput): boolean {
  return stored.type === event.type && stored.source === event.source &&
    stored.tenant_id === event.tenant_id && stored.ordering_key === (event.ordering_key ?? null) &&
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
