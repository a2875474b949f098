import type { Sql } from "./pool.ts";

/**
 * Deletes up to `limit` events older than `olderThanDays` that are finished:
 * none of their deliveries waits or is in flight (an event with no
 * deliveries is finished too). Their deliveries and attempts go with them
 * (ON DELETE CASCADE). Rows another session holds are skipped, so the batch
 * never waits on the hot path.
 */
export async function deleteFinishedEvents(
  sql: Sql,
  options: { olderThanDays: number; limit: number },
): Promise<number> {
  const [row] = await sql<{ deleted: number }[]>`
    WITH doomed AS (
      SELECT e.id FROM events e
      WHERE e.created_at < now() - ${options.olderThanDays} * interval '1 day'
        AND NOT EXISTS (
          SELECT 1 FROM deliveries d
          WHERE d.event_id = e.id AND d.status IN ('pending', 'processing', 'retrying'))
      ORDER BY e.created_at
      LIMIT ${options.limit}
      FOR UPDATE OF e SKIP LOCKED
    ), del AS (
      DELETE FROM events e USING doomed WHERE e.id = doomed.id RETURNING 1
    )
    SELECT count(*)::int AS deleted FROM del`;
  return row?.deleted ?? 0;
}
