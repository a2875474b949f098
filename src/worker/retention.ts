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

/**
 * Runs {@linkcode purgeExpiredEvents} (when `days` is set) and
 * {@linkcode purgeExpiredAudit} at start-up and then every `intervalMs` (an hour).
 */
export function startRetention(
  deps: { engine: Engine; log: Logger },
  options: Omit<RetentionOptions, "days"> & {
    days: number | null;
    auditDays: number;
    intervalMs?: number;
  },
): Periodic {
  const { days, auditDays, ...batches } = options;
  return runEvery(options.intervalMs ?? 3_600_000, async (signal) => {
    if (days !== null) await purgeExpiredEvents(deps, { ...batches, days, signal });
    await purgeExpiredAudit(deps, { ...batches, days: auditDays, signal });
  });
}

/**
 * Deletes every finished event older than `days`, batch by batch, until none
 * is left or `signal` aborts. Returns how many were deleted; a database error
 * is logged and ends the pass early (the next pass carries on).
 */
export function purgeExpiredEvents(
  deps: { engine: Engine; log: Logger },
  options: RetentionOptions & { signal?: AbortSignal },
): Promise<number> {
  return purge(deps, options, {
    what: "events",
    delete: (limit) => deps.engine.deleteFinishedEvents({ olderThanDays: options.days, limit }),
  });
}

/** Deletes every audit log entry older than `days`, as {@linkcode purgeExpiredEvents} does events. */
export function purgeExpiredAudit(
  deps: { engine: Engine; log: Logger },
  options: RetentionOptions & { signal?: AbortSignal },
): Promise<number> {
  return purge(deps, options, {
    what: "audit log entries",
    delete: (limit) => deps.engine.deleteExpiredAudit({ olderThanDays: options.days, limit }),
  });
}

async function purge(
  deps: { log: Logger },
  options: RetentionOptions & { signal?: AbortSignal },
  rows: { what: string; delete: (limit: number) => Promise<number> },
): Promise<number> {
  const limit = options.batchSize ?? 500;
  const signal = options.signal ?? new AbortController().signal;
  let deleted = 0;
  try {
    for (;;) {
      const n = await rows.delete(limit);
      deleted += n;
      if (n < limit || signal.aborted) break;
      await pause(options.pauseMs ?? 200, signal);
    }
  } catch (err) {
    deps.log.warn(`Deleting expired ${rows.what} failed; the next pass retries`, {
      error: err,
      deleted,
    });
  }
  if (deleted > 0) {
    deps.log.info(`Deleted expired ${rows.what}`, {
      count: deleted,
      older_than_days: options.days,
    });
  }
  return deleted;
}
