/**
 * Payload filters: a subscription's SQL/JSON path predicate, evaluated by
 * PostgreSQL against `{id, type, source, tenant_id, data}` of an event. The
 * condition is SQL (`dispatch_filter_passes`, migration 0013), which fan-out
 * (`dispatch_fan_out`) and `POST /filters/test` both call.
 *
 * @module
 */
import type postgres from "postgres";
import type { Sql } from "../db/pool.ts";
import { isDataException } from "../db/errors.ts";

export const MAX_FILTER_LENGTH = 1000;

/** The database's parse error for a filter, or null when it parses as a SQL/JSON path. */
export async function filterProblem(sql: Sql, filter: string): Promise<string | null> {
  try {
    await sql`SELECT ${filter}::jsonpath`;
    return null;
  } catch (err) {
    // 42601: syntax error; class 22: e.g. an invalid like_regex pattern.
    if ((err as { code?: string }).code === "42601" || isDataException(err)) {
      return (err as Error).message;
    }
    throw err;
  }
}

export interface FilterTestEvent {
  id: string | null;
  type: string;
  source: string | null;
  tenant_id: string | null;
  data: unknown;
}

/** Whether `event` passes `filter`, as fan-out decides; the parse error when it does not parse. */
export async function testFilter(
  sql: Sql,
  filter: string,
  event: FilterTestEvent,
): Promise<{ matches: boolean } | { problem: string }> {
  const problem = await filterProblem(sql, filter);
  if (problem !== null) return { problem };
  const [row] = await sql<{ matches: boolean }[]>`
    SELECT dispatch_filter_passes(${filter}::jsonpath, dispatch_filter_document(${event.id}::text,
      ${event.type}::text, ${event.source}::text, ${event.tenant_id}::text,
      ${sql.json(event.data as postgres.JSONValue)}::jsonb)) AS matches`;
  return { matches: row?.matches === true };
}
