/**
 * Payload filters: a subscription's SQL/JSON path predicate, evaluated by
 * PostgreSQL against `{id, type, source, tenant_id, data}` of an event. The
 * condition is written here once; fan-out and `POST /filters/test` use it.
 *
 * @module
 */
import type postgres from "postgres";
import type { Sql } from "../db/pool.ts";
import { isDataException } from "../db/errors.ts";

export const MAX_FILTER_LENGTH = 1000;

/**
 * What a filter sees of event `e` (a relation with columns `id`, `type`,
 * `source`, `tenant_id` and `data`). Build it once per event, not once per
 * subscription: building it is most of a filter's cost.
 */
export function filterDocument(sql: Sql, e: string) {
  const a = sql(e);
  return sql`jsonb_build_object('id', ${a}.id, 'type', ${a}.type, 'source', ${a}.source,
    'tenant_id', ${a}.tenant_id, 'data', ${a}.data)`;
}

/**
 * Whether the event `document` passes the parsed filter `path` (the
 * subscription's `filter_path` column): no filter, or a predicate that is
 * true. False and unknown (`@@` gives NULL for a missing field, a type
 * mismatch or a path that is not a predicate) mean no delivery.
 */
export function passesFilter(sql: Sql, document: postgres.Fragment, path: postgres.Fragment) {
  return sql`(${path} IS NULL OR coalesce(${document} @@ ${path}, false))`;
}

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
    SELECT ${passesFilter(sql, filterDocument(sql, "e"), sql`${filter}::jsonpath`)} AS matches
    FROM (SELECT ${event.id}::text AS id, ${event.type}::text AS type,
      ${event.source}::text AS source, ${event.tenant_id}::text AS tenant_id,
      ${sql.json(event.data as postgres.JSONValue)}::jsonb AS data) e`;
  return { matches: row?.matches === true };
}
