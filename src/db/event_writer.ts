import { type BatchOutcome, dataText, insertEvents, type NewEvent } from "./events.ts";
import { GroupCommit } from "./group_commit.ts";
import type { Sql } from "./pool.ts";

export type EventWriter = GroupCommit<NewEvent, BatchOutcome>;

/** Bytes of event data per insert, so that 500 large events do not make one huge statement. */
export const MAX_BATCH_BYTES = 16 * 1024 * 1024;

/**
 * Ingest's writer: concurrent `POST /events` share one insert statement.
 * A lost connection fails every waiting request at once (they answer 503
 * and the producer retries, which is safe: ingest is idempotent), and at
 * `maxPending` waiting events new ones are refused instead of queued. An
 * event whose request was answered (its deadline passed) is withdrawn: its
 * insert is cancelled, and the rest of its batch written again without it.
 */
export function createEventWriter(
  sql: Sql,
  options: { channel: string; maxPending?: number; maxBatchBytes?: number },
): EventWriter {
  return new GroupCommit({
    write: (events, signal) => insertEvents(sql, events, { channel: options.channel, signal }),
    onFailure: "reject",
    maxBatch: 500,
    maxBatchBytes: options.maxBatchBytes ?? MAX_BATCH_BYTES,
    // UTF-16 code units, cheap to count: the UTF-8 bytes are at most three times as many.
    sizeOf: (event) => dataText(event).length,
    ...(options.maxPending !== undefined ? { maxPending: options.maxPending } : {}),
  });
}
