import type { Sql } from "./pool.ts";

const minute = 60_000;
const day = 1_440 * minute;

/** Partition widths, smallest first: each one a multiple of the one before. */
const widths = [minute, 5 * minute, 15 * minute, 60 * minute, 360 * minute, day, 7 * day, 30 * day];

/**
 * The partitioned tables, by family: `events` (events, deliveries and
 * delivery_attempts, which share their partitions) and `audit` (audit_log).
 */
export type HistoryFamily = "events" | "audit";

/**
 * How wide partitions are for a retention (null: kept forever): the widest of
 * {@linkcode widths} at most a quarter of it, so about six partitions (the
 * retention, the one being filled and those made ahead) hold a family, and
 * one ends its retention at most a quarter late. Kept forever, a month each.
 */
export function partitionWidthMs(retentionMs: number | null): number {
  if (retentionMs === null) return widths.at(-1)!;
  return widths.findLast((w) => w <= retentionMs / 4) ?? minute;
}

/**
 * Makes a family's partitions until a width from now (passes run every quarter
 * width, so three can be missed); returns how many it made. No more: every
 * partition is one more index to probe for a lookup by id.
 */
export async function addHistoryPartitions(
  sql: Sql,
  family: HistoryFamily,
  widthMs: number,
): Promise<number> {
  const [row] = await sql<{ created: number }[]>`
    SELECT dispatch_add_history_partitions(${family},
      ${widthMs} * interval '1 millisecond',
      now() + ${widthMs} * interval '1 millisecond') AS created`;
  return row?.created ?? 0;
}

/**
 * Drops a family's partitions that ended more than `olderThanMs` ago (of
 * `events`, those whose deliveries have all finished); returns their suffixes.
 */
export async function dropExpiredHistory(
  sql: Sql,
  family: HistoryFamily,
  olderThanMs: number,
): Promise<string[]> {
  const [row] = await sql<{ dropped: string[] }[]>`
    SELECT dispatch_drop_history_partitions(${family},
      now() - ${olderThanMs} * interval '1 millisecond') AS dropped`;
  return row?.dropped ?? [];
}
