import type { Sql } from "../db/pool.ts";

const finished = `NOT EXISTS (
  SELECT 1 FROM deliveries d
  WHERE d.event_id = e.id AND d.status IN ('pending', 'processing', 'retrying'))`;

/**
 * Deletes up to `limit` events older than `olderThanDays` that are finished:
 * none of their deliveries waits or is in flight (an event with no
 * deliveries is finished too). Their deliveries and attempts go with them
 * (ON DELETE CASCADE). Rows another session holds are skipped, so the batch
 * never waits on the hot path. The events are locked first and checked
 * again after, with a fresh snapshot: a requeue share-locks the event, so
 * either it went first (and the check sees its delivery waiting) or it
 * waits for this delete.
 */
export async function deleteFinishedEvents(
  sql: Sql,
  options: { olderThanDays: number; limit: number },
): Promise<number> {
  return await sql.begin(async (tx) => {
    const doomed = await tx<{ id: string }[]>`
      SELECT e.id FROM events e
      WHERE e.created_at < now() - ${options.olderThanDays} * interval '1 day'
        AND ${tx.unsafe(finished)}
      ORDER BY e.created_at
      LIMIT ${options.limit}
      FOR UPDATE OF e SKIP LOCKED`;
    if (doomed.length === 0) return 0;
    const deleted = await tx`
      DELETE FROM events e
      WHERE e.id = ANY(${doomed.map((d) => d.id)}::text[]) AND ${tx.unsafe(finished)}
      RETURNING 1`;
    return deleted.length;
  });
}
