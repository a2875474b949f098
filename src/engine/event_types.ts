/**
 * The statements that change the event-type catalog. Each moves the
 * catalog's version (a trigger of migration 16), which tells every process
 * to read the catalog again.
 *
 * @module
 */
import type { Sql } from "../db/pool.ts";
import { eventTypeColumns, type EventTypeRow } from "../views/event_types.ts";

/** What a request sets of a type; `undefined` leaves a field as it is. */
export interface EventTypeChanges {
  description?: string | null | undefined;
  schema?: unknown;
  example?: Record<string, unknown> | null | undefined;
  deprecated?: boolean | undefined;
}

/** A type with the changes made to it. */
export function changed(type: EventTypeRow, changes: EventTypeChanges): EventTypeRow {
  const set = Object.entries(changes).filter(([, v]) => v !== undefined);
  return { ...type, ...Object.fromEntries(set) };
}

// A JSON value as its text, so a json column keeps it as written (`null` stores SQL NULL).
const json = (value: unknown) => value === null ? null : JSON.stringify(value);

/** Adds a type; undefined when the name is taken. */
export async function insertEventType(
  sql: Sql,
  type: Omit<EventTypeRow, "created_at" | "updated_at">,
): Promise<EventTypeRow | undefined> {
  const [row] = await sql<EventTypeRow[]>`
    INSERT INTO event_types (name, description, schema, example, deprecated)
    VALUES (${type.name}, ${type.description}, ${json(type.schema)}::text::json,
      ${json(type.example)}::text::json, ${type.deprecated})
    ON CONFLICT (name) DO NOTHING
    RETURNING ${sql.unsafe(eventTypeColumns)}`;
  return row;
}

/**
 * Changes a type in a transaction that holds its row: `check` sees the
 * type as it is and the changes, and throws to refuse them (an example the
 * new schema refuses). Undefined when the type does not exist.
 */
export async function updateEventType(
  sql: Sql,
  name: string,
  changes: EventTypeChanges,
  check: (current: EventTypeRow) => void,
): Promise<EventTypeRow | undefined> {
  const held = async (tx: Sql) => {
    const [current] = await tx<EventTypeRow[]>`
      SELECT ${tx.unsafe(eventTypeColumns)} FROM event_types WHERE name = ${name} FOR UPDATE`;
    if (!current) return undefined;
    check(current);
    const next = changed(current, changes);
    const [row] = await tx<EventTypeRow[]>`
      UPDATE event_types SET description = ${next.description},
        schema = ${json(next.schema)}::text::json, example = ${json(next.example)}::text::json,
        deprecated = ${next.deprecated}, updated_at = now()
      WHERE name = ${name}
      RETURNING ${tx.unsafe(eventTypeColumns)}`;
    return row;
  };
  // Already in a transaction (the audit entry's), or one of its own.
  return "savepoint" in sql ? await held(sql) : await sql.begin((tx) => held(tx as unknown as Sql));
}

/** Removes a type from the catalog. Returns false when absent. */
export async function deleteEventType(sql: Sql, name: string): Promise<boolean> {
  const rows = await sql`DELETE FROM event_types WHERE name = ${name} RETURNING 1`;
  return rows.length > 0;
}
