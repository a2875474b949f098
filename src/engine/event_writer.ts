import type { Sql } from "../db/pool.ts";
import { insertAudit, type PendingAudit } from "./audit.ts";
import { GroupCommit } from "./group_commit.ts";
import {
  type BatchOutcome,
  dataText,
  type EventInput,
  insertEvents,
  type Target,
} from "./publish.ts";

/** What one request publishes: its events, stored together, and where a test event goes. */
export interface Publication {
  events: readonly EventInput[];
  to?: Target | undefined;
  /** The request's audit entry, written in the same transaction when it stores an event. */
  audit?: PendingAudit | undefined;
}

export type EventWriter = GroupCommit<Publication, BatchOutcome[]>;

/** Bytes of event data per insert, so that 500 large events do not make one huge statement. */
export const MAX_BATCH_BYTES = 16 * 1024 * 1024;

/**
 * Ingest's writer: concurrent requests (`POST /events`, a batch, a test
 * event) share one insert statement, each request's events kept together.
 * A lost connection fails every waiting request at once (they answer 503
 * and the producer retries, which is safe: ingest is idempotent), and at
 * `maxPending` waiting requests new ones are refused instead of queued.
 * `maxBatch` counts events, not requests. A request answered meanwhile (its
 * deadline passed) is withdrawn; a batch is written under its earliest
 * deadline, which the database enforces (see {@linkcode writeBy}).
 */
export function createEventWriter(
  sql: Sql,
  options: { maxPending?: number | undefined; maxBatchBytes?: number } = {},
): EventWriter {
  return new GroupCommit({
    write: async (publications, deadline) => {
      const audited = publications.some((p) => p.audit !== undefined);
      const { results, recorded } = deadline === undefined && !audited
        ? await writePublications(sql, publications)
        : await writeBy(sql, publications, deadline);
      // Only once committed is an entry written.
      for (const [entry, id] of recorded) entry.id = id;
      return results;
    },
    onFailure: "reject",
    maxBatch: 500,
    size: (p) => p.events.length,
    maxBatchBytes: options.maxBatchBytes ?? MAX_BATCH_BYTES,
    // UTF-16 code units, cheap to count: the UTF-8 bytes are at most three times as many.
    sizeOf: (p) => p.events.reduce((n, e) => n + dataText(e).length, 0),
    ...(options.maxPending !== undefined ? { maxPending: options.maxPending } : {}),
  });
}

/**
 * Writes `publications` in a transaction whose statements PostgreSQL aborts
 * at `deadline` (`statement_timeout` covers lock waits too), so an insert
 * that cannot finish before its request is answered never commits. No
 * cancel request is needed, and none can be lost. A deadline already passed
 * gets 1 ms: 0 would mean no timeout. Without a deadline, the transaction
 * only keeps audit entries with their events.
 */
function writeBy(sql: Sql, publications: Publication[], deadline: number | undefined) {
  return sql.begin(async (tx) => {
    if (deadline === undefined) return await writePublications(tx as unknown as Sql, publications);
    const ms = Math.max(1, Math.ceil(deadline - Date.now()));
    // Sent now and answered with the insert, in one round trip: each one an
    // event waits for is a turn of the process and of PostgreSQL's backend.
    const [, written] = await Promise.all([
      tx`SELECT set_config('statement_timeout', ${String(ms)}, true)`.execute(),
      writePublications(tx as unknown as Sql, publications),
    ]);
    return written;
  });
}

/**
 * One statement for every publication fanned out by pattern, one for each
 * sent to a target, and one for the audit entries of those that stored an event.
 */
async function writePublications(
  sql: Sql,
  publications: Publication[],
): Promise<{ results: BatchOutcome[][]; recorded: [PendingAudit, number][] }> {
  const results: BatchOutcome[][] = new Array(publications.length);
  const byPattern = publications.flatMap((p, i) => p.to === undefined ? [i] : []);
  if (byPattern.length > 0) {
    const outcomes = await insertEvents(sql, byPattern.flatMap((i) => publications[i]!.events));
    let next = 0;
    for (const i of byPattern) {
      const n = publications[i]!.events.length;
      results[i] = outcomes.slice(next, next += n);
    }
  }
  for (const [i, p] of publications.entries()) {
    if (p.to !== undefined) results[i] = await insertEvents(sql, p.events, { to: p.to });
  }
  const changed = publications.flatMap((p, i) => {
    const created = results[i]!.filter((o) => o.kind === "created");
    if (p.audit === undefined || created.length === 0) return [];
    // One event is the resource; a batch's are many, named by none, of one tenant or none.
    const tenants = new Set(p.events.map((e) => e.tenant_id));
    const touched = {
      id: p.events.length === 1 ? p.events[0]!.id : null,
      tenantId: tenants.size === 1 ? p.events[0]!.tenant_id : null,
    };
    return [{ entry: p.audit, touched }];
  });
  const ids = await insertAudit(sql, changed);
  return { results, recorded: changed.map((c, i) => [c.entry, ids[i]!]) };
}
