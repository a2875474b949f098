import type { Sql } from "../db/pool.ts";
import { GroupCommit } from "./group_commit.ts";
import { type BatchOutcome, type EventInput, insertEvents, type Target } from "./publish.ts";

/** What one request publishes: its events, stored together, and where a test event goes. */
export interface Publication {
  events: readonly EventInput[];
  to?: Target | undefined;
}

export type EventWriter = GroupCommit<Publication, BatchOutcome[]>;

/**
 * Ingest's writer: concurrent requests (`POST /events`, a batch, a test
 * event) share one insert statement, each request's events kept together.
 * A lost connection fails every waiting request at once (they answer 503
 * and the producer retries, which is safe: ingest is idempotent), and at
 * `maxPending` waiting requests new ones are refused instead of queued.
 * `maxBatch` counts events, not requests.
 */
export function createEventWriter(
  sql: Sql,
  options: { maxPending?: number | undefined } = {},
): EventWriter {
  return new GroupCommit({
    write: (publications) => writePublications(sql, publications),
    onFailure: "reject",
    maxBatch: 500,
    size: (p) => p.events.length,
    ...(options.maxPending !== undefined ? { maxPending: options.maxPending } : {}),
  });
}

/** One statement for every publication fanned out by pattern, one for each sent to a target. */
async function writePublications(
  sql: Sql,
  publications: Publication[],
): Promise<BatchOutcome[][]> {
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
  return results;
}
