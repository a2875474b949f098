import { type HistoryFamily, partitionWidthMs } from "../db/history_partitions.ts";
import type { Engine } from "../engine/engine.ts";
import type { Logger } from "../observability/log.ts";
import { type Periodic, runEvery } from "./periodic.ts";

const day = 86_400_000;

export interface RetentionOptions {
  /** Finished history older than this many days is dropped; null keeps it. */
  days: number | null;
  /** Audit log entries older than this many days are dropped. */
  auditDays: number;
  /** Only make partitions ahead, drop none (an `api` process). */
  partitionsOnly?: boolean;
  /** Between passes; by default a quarter of the narrower partition width, at most an hour. */
  intervalMs?: number;
}

/** A family's partition width for a retention of `days` (null: kept forever). */
export function historyWidthMs(days: number | null): number {
  return partitionWidthMs(days === null ? null : days * day);
}

/**
 * Runs a pass at start-up and then every `intervalMs`: for the history and
 * the audit log, makes partitions ahead and, unless `partitionsOnly`, drops
 * the expired ones (the history's only when `days` is set).
 */
export function startRetention(
  deps: { engine: Engine; log: Logger },
  options: RetentionOptions,
): Periodic {
  const families = [
    { family: "events", days: options.days },
    { family: "audit", days: options.auditDays },
  ] as const;
  const plans = families.map(({ family, days }) => ({
    family,
    widthMs: historyWidthMs(days),
    retentionMs: days === null || options.partitionsOnly ? null : days * day,
  }));
  const narrowest = Math.min(...plans.map((p) => p.widthMs));
  return runEvery(options.intervalMs ?? Math.min(narrowest / 4, 3_600_000), async () => {
    for (const plan of plans) await maintainHistory(deps, plan);
  });
}

/**
 * Makes a family's partitions ahead, then drops its expired ones (none when
 * `retentionMs` is null); returns the dropped ones' suffixes. A database
 * error is logged and ends the pass; the next pass carries on.
 */
export async function maintainHistory(
  deps: { engine: Engine; log: Logger },
  options: { family: HistoryFamily; widthMs: number; retentionMs: number | null },
): Promise<string[]> {
  const { family, widthMs, retentionMs } = options;
  try {
    const created = await deps.engine.addHistoryPartitions(family, widthMs);
    if (created > 0) {
      deps.log.info("Added partitions", { family, count: created, width_ms: widthMs });
    }
    if (retentionMs === null) return [];
    const dropped = await deps.engine.dropExpiredHistory(family, retentionMs);
    if (dropped.length > 0) {
      deps.log.info("Dropped expired partitions", {
        family,
        partitions: dropped,
        older_than_ms: retentionMs,
      });
    }
    return dropped;
  } catch (err) {
    deps.log.warn("Maintaining partitions failed; the next pass retries", { family, error: err });
    return [];
  }
}
