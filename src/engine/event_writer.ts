import { type BatchOutcome, insertEvents, type NewEvent } from "./publish.ts";
import { GroupCommit } from "./group_commit.ts";
import type { Sql } from "../db/pool.ts";

export type EventWriter = GroupCommit<NewEvent, BatchOutcome>;

/**
 * Ingest's writer: concurrent `POST /events` share one insert statement.
 * A lost connection fails every waiting request at once (they answer 503
 * and the producer retries, which is safe: ingest is idempotent), and at
 * `maxPending` waiting events new ones are refused instead of queued.
 */
export function createEventWriter(
  sql: Sql,
  options: { channel: string; maxPending?: number },
): EventWriter {
  return new GroupCommit({
    write: (events) => insertEvents(sql, events, options),
    onFailure: "reject",
    maxBatch: 500,
    ...(options.maxPending !== undefined ? { maxPending: options.maxPending } : {}),
  });
}
