import type postgres from "postgres";
import { cancelWaiting } from "./deliveries.ts";
import { insertEvents } from "./events.ts";
import type { Sql } from "./pool.ts";
import { releaseHeld } from "./queue.ts";
import { operationalEvent } from "./subscription_health.ts";
import { ofTenant, type TenantFilter } from "./tenant_filter.ts";

export type CircuitState = "closed" | "open" | "half_open";

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
  rate_limit: number | null;
  max_in_flight: number | null;
  circuit: {
    state: CircuitState;
    consecutive_failures: number;
    opened_at: string | null;
    next_probe_at: string | null;
  };
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
  rate_limit: number | null;
  max_in_flight: number | null;
  metadata: Record<string, string>;
}

export type SubscriptionPatch = Partial<
  Pick<
    SubscriptionRow,
    | "url"
    | "event_types"
    | "description"
    | "active"
    | "max_attempts"
    | "rate_limit"
    | "max_in_flight"
    | "metadata"
  >
>;

/** A timestamp as the API writes every other one (JavaScript's `toISOString`). */
const iso = (column: string) =>
  `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

const columns =
  `id, tenant_id, url, event_types, description, active, disabled_reason, max_attempts,
  rate_limit, max_in_flight,
  json_build_object('state', circuit_state, 'consecutive_failures', consecutive_failures,
    'opened_at', ${iso("circuit_opened_at")}, 'next_probe_at', ${iso("circuit_next_probe_at")})
    AS circuit,
  metadata, created_at, updated_at`;

/** Returns undefined when the id is taken within the subscription's tenant. */
export async function insertSubscription(
  sql: Sql,
  sub: NewSubscription,
): Promise<SubscriptionRow | undefined> {
  const [row] = await sql<SubscriptionRow[]>`
    INSERT INTO subscriptions (id, tenant_id, url, event_types, description, secret, active,
      max_attempts, rate_limit, max_in_flight, metadata)
    VALUES (${sub.id}, ${sub.tenant_id}, ${sub.url}, ${sub.event_types}, ${sub.description},
      ${sub.secret}, ${sub.active}, ${sub.max_attempts}, ${sub.rate_limit},
      ${sub.max_in_flight}, ${sql.json(sub.metadata)})
    ON CONFLICT (tenant_id, id) DO NOTHING
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

/** The tenants (null: none) that have a subscription of this id; at most `limit`. */
export async function tenantsWithSubscription(
  sql: Sql,
  id: string,
  limit: number,
): Promise<(string | null)[]> {
  const rows = await sql<{ tenant_id: string | null }[]>`
    SELECT tenant_id FROM subscriptions WHERE id = ${id} ORDER BY tenant_id LIMIT ${limit}`;
  return rows.map((r) => r.tenant_id);
}

/** What routes that act on a subscription's deliveries need: its seq and whether it is active. */
export async function subscriptionState(
  sql: Sql,
  id: string,
  options: TenantFilter = {},
): Promise<{ seq: number; active: boolean; tenant_id: string | null } | undefined> {
  const [row] = await sql<{ seq: number; active: boolean; tenant_id: string | null }[]>`
    SELECT seq, active, tenant_id FROM subscriptions s
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

/** The circuit as a subscription starts: enabling or disabling one resets it. */
const closedCircuit = {
  circuit_state: "closed",
  consecutive_failures: 0,
  circuit_opened_at: null,
  circuit_next_probe_at: null,
  circuit_cooldown_ms: null,
  failing_since: null,
};

/**
 * Changes a subscription. `active` resets the circuit; `true` also clears a
 * disabled reason (and announces the reset when the circuit was not closed),
 * `false` **cancel**s the waiting deliveries, parked ones too, in the same
 * statement. A change of limits, or enabling, **release**s what was held, as
 * far as the new state allows.
 */
export async function updateSubscription(
  sql: Sql,
  id: string,
  patch: SubscriptionPatch,
  options: TenantFilter & { channel: string },
): Promise<SubscriptionRow | undefined> {
  // deno-lint-ignore no-explicit-any -- postgres.js types dynamic SET lists loosely
  const set: Record<string, any> = { ...patch };
  if (patch.metadata !== undefined) set.metadata = sql.json(patch.metadata);
  if (patch.active !== undefined) Object.assign(set, closedCircuit);
  if (patch.active === true) set.disabled_reason = null;
  const keys = Object.keys(set);
  if (keys.length === 0) return await getSubscription(sql, id, options);
  return await sql.begin(async (tx) => {
    const [before] = await tx<{ seq: number; circuit_state: CircuitState }[]>`
      SELECT seq, circuit_state FROM subscriptions s
      WHERE id = ${id} ${ofTenant(tx as unknown as Sql, "s", options)} FOR UPDATE`;
    if (before === undefined) return undefined;
    const cancel = patch.active === false
      ? tx`, cancelled AS (
        ${cancelWaiting(tx as unknown as Sql, tx`${before.seq}`, "Subscription disabled")})`
      : tx``;
    const [row] = await tx<SubscriptionRow[]>`
      WITH changed AS (
        UPDATE subscriptions SET ${tx(set, keys)}, updated_at = now()
        WHERE seq = ${before.seq}
        RETURNING ${tx.unsafe(columns)}
      ) ${cancel}
      SELECT * FROM changed`;
    if ("rate_limit" in patch || "max_in_flight" in patch || patch.active === true) {
      const sql = tx as unknown as Sql;
      await sql`${releaseHeld(sql, sql`SELECT ${before.seq}::bigint, NULL::int`)}`;
      await tx`SELECT pg_notify(${options.channel}, '')`;
    }
    if (patch.active === true && before.circuit_state !== "closed") {
      // What the circuit held went with the rest above: only the announcement is left.
      await insertEvents(tx as unknown as Sql, [operationalEvent({
        kind: "circuit_closed",
        seq: before.seq,
        subscriptionId: id,
        tenantId: row!.tenant_id,
        reason: "reenabled",
        lastError: null,
        at: new Date(),
        nextProbeAt: null,
      })], options);
    }
    return row;
  });
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
 * They are locked in `seq` order first, as everything that locks several does.
 */
export async function deleteSubscriptionsWhere(
  sql: Sql,
  where: postgres.Fragment,
): Promise<number> {
  const [row] = await sql<{ deleted: number }[]>`
    WITH locked AS (
      SELECT seq FROM subscriptions s WHERE ${where} ORDER BY seq FOR UPDATE
    ), gone AS (
      DELETE FROM subscriptions s USING locked l WHERE s.seq = l.seq RETURNING s.seq
    ), cancelled AS (
      ${cancelWaiting(sql, sql`SELECT seq FROM gone`, "Subscription deleted")}
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
