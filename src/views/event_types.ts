/**
 * The event-type catalog as the API shows it, and as each process reads it
 * to validate ingest (only when its version moved).
 *
 * @module
 */
import type { Sql } from "../db/pool.ts";

/** A catalog entry: `schema` is a JSON Schema 2020-12 for the `data` of events of this type. */
export interface EventTypeRow {
  name: string;
  description: string | null;
  schema: unknown;
  example: Record<string, unknown> | null;
  deprecated: boolean;
  created_at: Date;
  updated_at: Date;
}

export const eventTypeColumns =
  "name, description, schema, example, deprecated, created_at, updated_at";

/** Oldest first; `next` is the sequence number to continue after, if more remain. */
export async function listEventTypes(
  sql: Sql,
  options: { limit: number; after?: number | undefined },
): Promise<{ types: EventTypeRow[]; next: number | null }> {
  const rows = await sql<(EventTypeRow & { seq: number })[]>`
    SELECT seq, ${sql.unsafe(eventTypeColumns)} FROM event_types
    WHERE seq > ${options.after ?? 0} ORDER BY seq LIMIT ${options.limit + 1}`;
  const more = rows.length > options.limit;
  const page = rows.slice(0, options.limit);
  return {
    types: page.map(({ seq: _seq, ...type }) => type),
    next: more ? page.at(-1)!.seq : null,
  };
}

export async function getEventType(sql: Sql, name: string): Promise<EventTypeRow | undefined> {
  const [row] = await sql<EventTypeRow[]>`
    SELECT ${sql.unsafe(eventTypeColumns)} FROM event_types WHERE name = ${name}`;
  return row;
}

/** What validation and the OpenAPI document need of a type. */
export type CatalogType = Pick<
  EventTypeRow,
  "name" | "description" | "schema" | "example" | "deprecated"
>;

/**
 * The catalog's version and, when it is not `known`, every type: one
 * statement, so the types are those of that version.
 */
export async function readEventCatalog(
  sql: Sql,
  known: number | null,
): Promise<{ version: number; types: CatalogType[] | null }> {
  const [row] = await sql<{ version: string; types: CatalogType[] | null }[]>`
    SELECT c.version, CASE WHEN c.version IS DISTINCT FROM ${known}::bigint THEN (
      SELECT coalesce(json_agg(json_build_object('name', name, 'description', description,
        'schema', schema, 'example', example, 'deprecated', deprecated) ORDER BY seq), '[]')
      FROM event_types) END AS types
    FROM event_type_catalog c`;
  return { version: Number(row!.version), types: row!.types };
}
