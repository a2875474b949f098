import type postgres from "postgres";
import type { Sql } from "./pool.ts";
import { ofTenant, type TenantFilter } from "./tenant_filter.ts";

/** A subscription as the API shows it: never with its secrets. */
export interface SubscriptionRow {
  id: string;
  tenant_id: string | null;
  url: string;
  event_types: string[];
  description: string | null;
  active: boolean;
  disabled_reason: string | null;
  max_attempts: number | null;
  metadata: Record<string, string>;
  created_at: Date;
  updated_at: Date;
}

export interface NewSubscription {
  id: string;
  tenant_id: string | null;
  url: string;
  event_types: string[];
  description: string | null;
  secret: string;
  active: boolean;
  max_attempts: number | null;
  metadata: Record<string, string>;
}

export type SubscriptionPatch = Partial<
  Pick<
    SubscriptionRow,
    "url" | "event_types" | "description" | "active" | "max_attempts" | "metadata"
  >
>;

const columns =
  `id, tenant_id, url, event_types, description, active, disabled_reason, max_attempts,
  metadata, created_at, updated_at`;

/** Returns undefined when the id is taken. */
export async function insertSubscription(
  sql: Sql,
  sub: NewSubscription,
): Promise<SubscriptionRow | undefined> {
  const [row] = await sql<SubscriptionRow[]>`
    INSERT INTO subscriptions
      (id, tenant_id, url, event_types, description, secret, active, max_attempts, metadata)
    VALUES (${sub.id}, ${sub.tenant_id}, ${sub.url}, ${sub.event_types}, ${sub.description}, ${sub.secret},
      ${sub.active}, ${sub.max_attempts}, ${sql.json(sub.metadata)})
    ON CONFLICT (id) DO NOTHING
    RETURNING ${sql.unsafe(columns)}`;
  return row;
}

export async function getSubscription(
  sql: Sql,
  id: string,
  options: TenantFilter = {},
): Promise<SubscriptionRow | undefined> {
  const [row] = await sql<SubscriptionRow[]>`
    SELECT ${sql.unsafe(columns)} FROM subscriptions s
    WHERE id = ${id} ${ofTenant(sql, "s", options)}`;
  return row;
}

/** Oldest first; `next` is the sequence number to continue after, if more remain. */
export async function listSubscriptions(
  sql: Sql,
  options: TenantFilter & { limit: number; after?: number | undefined },
): Promise<{ subscriptions: SubscriptionRow[]; next: number | null }> {
  const rows = await sql<(SubscriptionRow & { seq: number })[]>`
    SELECT seq, ${sql.unsafe(columns)} FROM subscriptions s
    WHERE seq > ${options.after ?? 0} ${ofTenant(sql, "s", options)}
    ORDER BY seq LIMIT ${options.limit + 1}`;
  const more = rows.length > options.limit;
  const page = rows.slice(0, options.limit);
  return {
    subscriptions: page.map(({ seq: _seq, ...sub }) => sub),
    next: more ? page.at(-1)!.seq : null,
  };
}

/** Setting `active: true` also clears a disabled reason. */
export async function updateSubscription(
  sql: Sql,
  id: string,
  patch: SubscriptionPatch,
  options: TenantFilter = {},
): Promise<SubscriptionRow | undefined> {
  // deno-lint-ignore no-explicit-any -- postgres.js types dynamic SET lists loosely
  const set: Record<string, any> = { ...patch };
  if (patch.metadata !== undefined) set.metadata = sql.json(patch.metadata);
  if (patch.active === true) set.disabled_reason = null;
  const keys = Object.keys(set);
  if (keys.length === 0) return await getSubscription(sql, id, options);
  const [row] = await sql<SubscriptionRow[]>`
    UPDATE subscriptions s SET ${sql(set, keys)}, updated_at = now()
    WHERE id = ${id} ${ofTenant(sql, "s", options)}
    RETURNING ${sql.unsafe(columns)}`;
  return row;
}

/**
 * Deletes a subscription and, in the same statement, **cancel**s its
 * waiting deliveries, so none is attempted again. Returns false when absent.
 */
export async function deleteSubscription(
  sql: Sql,
  id: string,
  options: TenantFilter = {},
): Promise<boolean> {
  return await deleteSubscriptionsWhere(sql, sql`id = ${id} ${ofTenant(sql, "s", options)}`) > 0;
}

/**
 * Deletes the subscriptions `s` that `where` selects, cancelling their
 * waiting deliveries in the same statement; returns how many were deleted.
 */
export async function deleteSubscriptionsWhere(
  sql: Sql,
  where: postgres.Fragment,
): Promise<number> {
  const [row] = await sql<{ deleted: number }[]>`
    WITH gone AS (
      DELETE FROM subscriptions s WHERE ${where} RETURNING seq
    ), cancelled AS (
      UPDATE deliveries SET status = 'failed', last_error = 'Subscription deleted',
        next_attempt_at = now(), updated_at = now()
      WHERE subscription_seq IN (SELECT seq FROM gone) AND status IN ('pending', 'retrying')
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM gone)::int AS deleted, (SELECT count(*) FROM cancelled) AS n`;
  return row?.deleted ?? 0;
}

/**
 * Replaces the secret; the previous one keeps signing until `graceMs` from
 * now. Returns undefined when the subscription does not exist.
 */
export async function rotateSecret(
  sql: Sql,
  id: string,
  options: TenantFilter & { secret: string; graceMs: number },
): Promise<{ previous_secret_expires_at: Date } | undefined> {
  const [row] = await sql<{ previous_secret_expires_at: Date }[]>`
    UPDATE subscriptions s SET
      previous_secret = secret,
      previous_secret_expires_at = now() + ${options.graceMs} * interval '1 millisecond',
      secret = ${options.secret},
      updated_at = now()
    WHERE id = ${id} ${ofTenant(sql, "s", options)}
    RETURNING previous_secret_expires_at`;
  return row;
}

/**
 * Every distinct stored secret that starts with `prefix` (the encrypted
 * ones), current and previous, with a subscription that holds it: start-up
 * checks that the key opens each.
 */
export async function listSecretsWithPrefix(
  sql: Sql,
  prefix: string,
): Promise<{ secret: string; subscription_id: string }[]> {
  return await sql<{ secret: string; subscription_id: string }[]>`
    SELECT DISTINCT ON (secret) secret, subscription_id FROM (
      SELECT secret, id AS subscription_id FROM subscriptions
      UNION ALL
      SELECT previous_secret, id FROM subscriptions WHERE previous_secret_expires_at > now()
    ) s
    WHERE starts_with(secret, ${prefix})
    ORDER BY secret, subscription_id`;
}
