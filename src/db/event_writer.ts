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
 * event whose request was answered (its deadline passed) is withdrawn; a
 * batch is written under its earliest deadline, which the database enforces
 * (see {@linkcode insertBy}).
 */
export function createEventWriter(
  sql: Sql,
  options: { channel: string; maxPending?: number; maxBatchBytes?: number },
): EventWriter {
  const { channel } = options;
  return new GroupCommit({
    write: (events, deadline) =>
      deadline === undefined
        ? insertEvents(sql, events, { channel })
        : insertBy(sql, events, { channel, deadline }),
    onFailure: "reject",
    maxBatch: 500,
    maxBatchBytes: options.maxBatchBytes ?? MAX_BATCH_BYTES,
    // UTF-16 code units, cheap to count: the UTF-8 bytes are at most three times as many.
    sizeOf: (event) => dataText(event).length,
    ...(options.maxPending !== undefined ? { maxPending: options.maxPending } : {}),
  });
}

/**
 * Inserts `events` in a transaction whose statements PostgreSQL aborts at
 * `deadline` (`statement_timeout` covers lock waits too), so an insert that
 * cannot finish before its request is answered never commits. No cancel
 * request is needed, and none can be lost. A deadline already passed gets
 * 1 ms: 0 would mean no timeout.
 */
function insertBy(
  sql: Sql,
  events: NewEvent[],
  options: { channel: string; deadline: number },
): Promise<BatchOutcome[]> {
  return sql.begin(async (tx) => {
    const ms = Math.max(1, Math.ceil(options.deadline - Date.now()));
    await tx`SELECT set_config('statement_timeout', ${String(ms)}, true)`;
    return await insertEvents(tx as unknown as Sql, events, { channel: options.channel });
  });
}
