import type { Engine } from "../engine/engine.ts";
import type { Logger } from "../observability/log.ts";
import { pause } from "../async.ts";
import { type Periodic, runEvery } from "./periodic.ts";

export interface RetentionOptions {
  /** Finished events older than this are deleted. */
  days: number;
  /** Events per DELETE statement: small, so no statement holds many locks for long. */
  batchSize?: number;
  /** Between two batches, so autovacuum and the hot path keep up. */
  pauseMs?: number;
}

/** Runs {@linkcode purgeExpiredEvents} at start-up and then every `intervalMs` (an hour). */
export function startRetention(
  deps: { engine: Engine; log: Logger },
  options: RetentionOptions & { intervalMs?: number },
): Periodic {
  return runEvery(options.intervalMs ?? 3_600_000, async (signal) => {
    await purgeExpiredEvents(deps, { ...options, signal });
  });
}

/**
 * Deletes every finished event older than `days`, batch by batch, until none
 * is left or `signal` aborts. Returns how many were deleted; a database error
 * is logged and ends the pass early (the next pass carries on).
 */
export async function purgeExpiredEvents(
  deps: { engine: Engine; log: Logger },
  options: RetentionOptions & { signal?: AbortSignal },
): Promise<number> {
  const limit = options.batchSize ?? 500;
  const signal = options.signal ?? new AbortController().signal;
  let deleted = 0;
  try {
    for (;;) {
      const n = await deps.engine.deleteFinishedEvents({ olderThanDays: options.days, limit });
      deleted += n;
      if (n < limit || signal.aborted) break;
      await pause(options.pauseMs ?? 200, signal);
    }
  } catch (err) {
    deps.log.warn("Deleting expired events failed; the next pass retries", {
      error: err,
      deleted,
    });
  }
  if (deleted > 0) {
    deps.log.info("Deleted expired events", { count: deleted, older_than_days: options.days });
  }
  return deleted;
}
