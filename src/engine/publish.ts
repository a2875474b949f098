/**
 * **publish**: the statement that stores events and fans them out. Every
 * way in (`POST /events`, `POST /events/batch`, `POST /subscriptions/:id/test`,
 * the operational events) ends in it, through the engine's `publish`.
 *
 * @module
 */
import type { Sql } from "../db/pool.ts";

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

/** The API's rules that are settings, which `dispatch_publish` applies too. */
export interface SqlPublishRules {
  /** MAX_PAYLOAD_BYTES: `data` larger than this (its JSON text) is refused. */
  maxDataBytes: number;
  /** EVENT_TYPES=strict: a type outside the event-type catalog is refused. */
  strictTypes: boolean;
}

/** Makes `dispatch_publish` apply the API's settings: SQL producers meet the API's rules. */
export async function setSqlPublishRules(sql: Sql, rules: SqlPublishRules): Promise<void> {
  await sql`UPDATE dispatch_publish_settings
    SET max_data_bytes = ${rules.maxDataBytes}, strict_types = ${rules.strictTypes}`;
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
 * when there are any). An id that exists (or repeats within the batch) is
 * compared with the new content: the same content replays, different content
 * conflicts. Outcomes are in input order. The statement is the SQL function
 * `dispatch_insert_events` (migration 0015), which `dispatch_publish` calls too.
 */
export async function insertEvents(
  sql: Sql,
  events: readonly EventInput[],
  options: { to?: Target | undefined } = {},
): Promise<BatchOutcome[]> {
  const to = options.to;
  const rows = await sql<{ outcome: BatchOutcome["kind"]; created_at: Date; fanned: number }[]>`
    SELECT outcome, created_at, fanned FROM dispatch_insert_events(
      ${events.map((e) => e.id)}::text[],
      ${events.map((e) => e.type)}::text[],
      ${events.map((e) => e.source)}::text[],
      ${events.map(dataText)}::text[],
      ${events.map((e) => e.tenant_id)}::text[],
      ${events.map((e) => e.ordering_key ?? null)}::text[],
      ${to?.id ?? null}::text,
      ${to?.seq ?? null}::bigint
    )`;
  return rows.map((r) =>
    r.outcome === "created"
      ? { kind: "created", created_at: r.created_at, fanned: r.fanned }
      : { kind: r.outcome }
  );
}
