/**
 * The figures the console shows beside the API's reads. Attempts are read
 * per subscription through `delivery_attempts_subscription` (subscription,
 * started_at) and events through `events_created_at`, so the cost follows
 * the window's rows, not the history.
 *
 * @module
 */
import type { Sql } from "../db/pool.ts";
import { ofTenant, type TenantFilter } from "./tenant_filter.ts";

export interface ActivityBucket {
  at: Date;
  /** Events created. */
  events: number;
  /** Attempts made, and how many of them failed. */
  attempts: number;
  failures: number;
}

/** Events in and attempts out per bucket of `bucketSeconds`, `buckets` of them from `since`. */
export async function activity(
  sql: Sql,
  options: TenantFilter & { since: Date; bucketSeconds: number; buckets: number },
): Promise<ActivityBucket[]> {
  const { since, bucketSeconds: width } = options;
  const bucket = (column: string) =>
    sql`floor(extract(epoch FROM ${sql.unsafe(column)} - ${since}::timestamptz) / ${width})::int`;
  return await sql<ActivityBucket[]>`
    WITH ev AS (
      SELECT ${bucket("e.created_at")} AS i, count(*)::int AS n FROM events e
      WHERE e.created_at >= ${since} ${ofTenant(sql, "e", options)} GROUP BY 1
    ), att AS (
      -- Counted per subscription (an aggregate keeps the planner on the index), then summed.
      SELECT a.i, sum(a.n)::int AS n, sum(a.f)::int AS f
      FROM subscriptions s CROSS JOIN LATERAL (
        SELECT ${bucket("started_at")} AS i, count(*) AS n,
          count(*) FILTER (WHERE error_class IS NOT NULL) AS f
        FROM delivery_attempts
        WHERE subscription_seq = s.seq AND started_at >= ${since} GROUP BY 1
      ) a
      WHERE true ${ofTenant(sql, "s", options)} GROUP BY 1
    )
    SELECT ${since}::timestamptz + g.i * ${width} * interval '1 second' AS at,
      coalesce(ev.n, 0) AS events, coalesce(att.n, 0) AS attempts, coalesce(att.f, 0) AS failures
    FROM generate_series(0, ${options.buckets - 1}) g(i)
    LEFT JOIN ev ON ev.i = g.i LEFT JOIN att ON att.i = g.i
    ORDER BY g.i`;
}

export interface FailingSubscription {
  id: string;
  url: string;
  attempts: number;
  failures: number;
}

/** The subscriptions with the most failed attempts since `since`, most first. */
export async function failingSubscriptions(
  sql: Sql,
  options: TenantFilter & { since: Date; limit: number },
): Promise<FailingSubscription[]> {
  return await sql<FailingSubscription[]>`
    SELECT s.id, s.url, f.attempts, f.failures FROM subscriptions s
    CROSS JOIN LATERAL (
      SELECT count(*)::int AS attempts,
        count(*) FILTER (WHERE a.error_class IS NOT NULL)::int AS failures
      FROM delivery_attempts a WHERE a.subscription_seq = s.seq AND a.started_at >= ${options.since}
    ) f
    WHERE f.failures > 0 ${ofTenant(sql, "s", options)}
    ORDER BY f.failures DESC, s.seq LIMIT ${options.limit}`;
}

export interface TroubledSubscription {
  id: string;
  url: string;
  active: boolean;
  disabled_reason: string | null;
  circuit_state: string;
  circuit_next_probe_at: Date | null;
}

/** Subscriptions disabled or with a circuit not closed, oldest first, at most `limit`. */
export async function troubledSubscriptions(
  sql: Sql,
  options: TenantFilter & { limit: number },
): Promise<TroubledSubscription[]> {
  return await sql<TroubledSubscription[]>`
    SELECT id, url, active, disabled_reason, circuit_state, circuit_next_probe_at
    FROM subscriptions s
    WHERE (NOT active OR circuit_state <> 'closed') ${ofTenant(sql, "s", options)}
    ORDER BY seq LIMIT ${options.limit}`;
}

export interface SubscriptionActivity {
  seq: number;
  /** Attempts and failures per hour since `since`, oldest first. */
  hourly: { attempts: number; failures: number }[];
  /** Deliveries being sent now. */
  in_flight: number;
  /** The last failed attempt's error since `since`. */
  last_error: string | null;
}

/** Per subscription id: its hourly attempts since `since` (`hours` of them), in flight, last error. */
export async function subscriptionActivity(
  sql: Sql,
  ids: readonly string[],
  options: { since: Date; hours: number },
): Promise<Map<string, SubscriptionActivity>> {
  const { since, hours } = options;
  const rows = await sql<
    (Omit<SubscriptionActivity, "hourly"> & { id: string; hourly: [number, number, number][] })[]
  >`
    SELECT s.id, s.seq,
      coalesce((
        SELECT json_agg(json_build_array(h.i, h.n, h.f)) FROM (
          SELECT floor(extract(epoch FROM a.started_at - ${since}::timestamptz) / 3600)::int AS i,
            count(*)::int AS n, count(*) FILTER (WHERE a.error_class IS NOT NULL)::int AS f
          FROM delivery_attempts a WHERE a.subscription_seq = s.seq AND a.started_at >= ${since}
          GROUP BY 1) h), '[]') AS hourly,
      (SELECT count(*)::int FROM deliveries d
        WHERE d.subscription_seq = s.seq AND d.status = 'processing') AS in_flight,
      (SELECT coalesce(a.error, 'HTTP ' || a.status_code) FROM delivery_attempts a
        WHERE a.subscription_seq = s.seq AND a.started_at >= ${since} AND a.error_class IS NOT NULL
        ORDER BY a.started_at DESC LIMIT 1) AS last_error
    FROM subscriptions s WHERE s.id = ANY(${ids as string[]})`;
  return new Map(rows.map(({ id, hourly, ...row }) => {
    const slots = Array.from({ length: hours }, () => ({ attempts: 0, failures: 0 }));
    for (const [i, n, f] of hourly) if (slots[i]) slots[i] = { attempts: n, failures: f };
    return [id, { ...row, hourly: slots }];
  }));
}

export interface TenantQueue {
  pending: number;
  retrying: number;
  processing: number;
  failed: number;
}

/**
 * A tenant's deliveries by status, those of its subscriptions, through the
 * partial indexes by subscription (waiting, in flight, failed): the cost
 * follows the queue and the dead letters, not the tenant's history.
 */
export async function tenantQueue(sql: Sql, tenantId: string): Promise<TenantQueue> {
  const [row] = await sql<TenantQueue[]>`
    SELECT
      coalesce(sum(q.pending), 0)::int AS pending, coalesce(sum(q.retrying), 0)::int AS retrying,
      coalesce(sum(q.processing), 0)::int AS processing, coalesce(sum(q.failed), 0)::int AS failed
    FROM subscriptions s CROSS JOIN LATERAL (
      SELECT count(*) FILTER (WHERE d.status = 'pending') AS pending,
        count(*) FILTER (WHERE d.status = 'retrying') AS retrying,
        (SELECT count(*) FROM deliveries p
          WHERE p.subscription_seq = s.seq AND p.status = 'processing') AS processing,
        (SELECT count(*) FROM deliveries f
          WHERE f.subscription_seq = s.seq AND f.status = 'failed') AS failed
      FROM deliveries d
      WHERE d.subscription_seq = s.seq AND d.status IN ('pending', 'retrying')
    ) q
    WHERE s.tenant_id = ${tenantId}`;
  return row!;
}
