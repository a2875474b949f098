/**
 * The statements that change subscriptions: create, change (which lets
 * held deliveries go), delete (which **cancel**s what waits) and rotate.
 *
 * @module
 */
import type postgres from "postgres";
import type { Sql } from "../db/pool.ts";
import {
  type CertificateSummary,
  getSubscription,
  subscriptionColumns,
  type SubscriptionRow,
} from "../views/subscriptions.ts";
import { ofTenant, type TenantFilter } from "../views/tenant_filter.ts";
import { MASK } from "../views/custom_headers.ts";
import { cancelWaiting } from "./cancel.ts";
import { releaseHeld } from "./release.ts";
import { operationalEvent } from "./health.ts";
import { insertEvents } from "./publish.ts";
import type { EndpointAuth } from "./shapes.ts";
import { releaseOrdered } from "./ordering.ts";
import type { CircuitState, Ordering } from "./states.ts";

export interface SubscriptionInput {
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
  /** Default `none`. */
  ordering?: Ordering;
  metadata: Record<string, string>;
  /** Default null. */
  auth?: EndpointAuth | null;
  /** The secret part of `auth`, sealed; null (the default) when `auth` is. */
  auth_secret?: string | null;
  tls_client_certificate?: StoredClientCertificate | null;
  /** Lower-case names; sensitive values sealed. Default none. */
  headers?: Record<string, string>;
  /** Default null: no filter. */
  filter?: string | null;
  /** Default "standard". */
  format?: "standard" | "cloudevents";
}

/** A client certificate as stored: what the API shows, the PEM chain, and the key (sealed). */
export interface StoredClientCertificate {
  summary: CertificateSummary;
  cert: string;
  key: string;
}

/** The columns that hold a client certificate, all set or all null. */
function certificateColumns(sql: Sql, c: StoredClientCertificate | null) {
  return {
    tls_client_certificate: c && sql.json(c.summary),
    tls_client_cert_pem: c?.cert ?? null,
    tls_client_key: c?.key ?? null,
  };
}

export type SubscriptionChanges = Partial<
  & Pick<
    SubscriptionRow,
    | "url"
    | "event_types"
    | "description"
    | "active"
    | "max_attempts"
    | "rate_limit"
    | "max_in_flight"
    | "ordering"
    | "metadata"
    | "auth"
    | "headers"
    | "filter"
    | "format"
  >
  & Pick<SubscriptionInput, "auth_secret">
  & {
    tls_client_certificate: StoredClientCertificate | null;
  }
>;

/** Returns undefined when the id is taken within the subscription's tenant. */
export async function insertSubscription(
  sql: Sql,
  sub: SubscriptionInput,
): Promise<SubscriptionRow | undefined> {
  const tls = certificateColumns(sql, sub.tls_client_certificate ?? null);
  const [row] = await sql<SubscriptionRow[]>`
    INSERT INTO subscriptions (id, tenant_id, url, event_types, description, secret, active,
      max_attempts, rate_limit, max_in_flight, ordering, metadata, auth, auth_secret,
      tls_client_certificate, tls_client_cert_pem, tls_client_key, headers, filter, format)
    VALUES (${sub.id}, ${sub.tenant_id}, ${sub.url}, ${sub.event_types}, ${sub.description},
      ${sub.secret}, ${sub.active}, ${sub.max_attempts}, ${sub.rate_limit},
      ${sub.max_in_flight}, ${sub.ordering ?? "none"}, ${sql.json(sub.metadata)},
      ${sub.auth ? sql.json(sub.auth) : null}, ${sub.auth_secret ?? null},
      ${tls.tls_client_certificate}, ${tls.tls_client_cert_pem}, ${tls.tls_client_key},
      ${sql.json(sub.headers ?? {})}, ${sub.filter ?? null}, ${sub.format ?? "standard"})
    ON CONFLICT (tenant_id, id) DO NOTHING
    RETURNING ${sql.unsafe(subscriptionColumns)}`;
  return row;
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
 * far as the new state allows; `woke` says whether anything was let go or
 * announced (the caller wakes the workers). `headers` replace them all, but
 * a value given as the mask keeps the stored one. Undefined when the
 * subscription does not exist.
 */
export async function updateSubscription(
  sql: Sql,
  id: string,
  patch: SubscriptionChanges,
  options: TenantFilter = {},
): Promise<{ row: SubscriptionRow; woke: boolean } | undefined> {
  // deno-lint-ignore no-explicit-any -- postgres.js types dynamic SET lists loosely
  const set: Record<string, any> = { ...patch };
  if (patch.metadata !== undefined) set.metadata = sql.json(patch.metadata);
  if (patch.auth) set.auth = sql.json(patch.auth);
  if (patch.tls_client_certificate !== undefined) {
    Object.assign(set, certificateColumns(sql, patch.tls_client_certificate));
  }
  if (patch.headers !== undefined) set.headers = keepMasked(sql, patch.headers);
  if (patch.active !== undefined) Object.assign(set, closedCircuit);
  if (patch.active === true) set.disabled_reason = null;
  const keys = Object.keys(set);
  if (keys.length === 0) {
    const row = await getSubscription(sql, id, options);
    return row && { row, woke: false };
  }
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
        RETURNING ${tx.unsafe(subscriptionColumns)}
      ) ${cancel}
      SELECT * FROM changed`;
    let woke = false;
    if ("rate_limit" in patch || "max_in_flight" in patch || patch.active === true) {
      const sql = tx as unknown as Sql;
      const [released] = await sql<{ n: number }[]>`
        ${releaseHeld(sql, sql`SELECT ${before.seq}::bigint, NULL::int`)}`;
      woke = (released?.n ?? 0) > 0;
    }
    if (patch.ordering === "none") {
      woke = await releaseOrdered(tx as unknown as Sql, before.seq) > 0 || woke;
    }
    if (patch.active === true && before.circuit_state !== "closed") {
      // What the circuit held went with the rest above: only the announcement is left.
      const [announced] = await insertEvents(tx as unknown as Sql, [operationalEvent({
        kind: "circuit_closed",
        seq: before.seq,
        subscriptionId: id,
        tenantId: row!.tenant_id,
        reason: "reenabled",
        lastError: null,
        at: new Date(),
        nextProbeAt: null,
      })]);
      woke ||= announced?.kind === "created" && announced.fanned > 0;
    }
    return { row: row!, woke };
  });
}

/** The new headers, where a value that is the mask keeps the stored value of that name. */
function keepMasked(sql: Sql, headers: Record<string, string>) {
  return sql`(SELECT coalesce(jsonb_object_agg(n.key, CASE WHEN n.value = ${sql.json(MASK)}::jsonb
      THEN coalesce(subscriptions.headers -> n.key, n.value) ELSE n.value END), '{}')
    FROM jsonb_each(${sql.json(headers)}::jsonb) n)`;
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
    )
    SELECT (SELECT count(*) FROM gone)::int AS deleted`;
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
 * Deletes every subscription of the tenant, failing their waiting
 * deliveries (as deleting each would). Events stay until retention. Returns
 * false when the tenant has neither a subscription nor an event.
 */
export async function deleteTenant(sql: Sql, id: string): Promise<boolean> {
  const deleted = await deleteSubscriptionsWhere(sql, sql`s.tenant_id = ${id}`);
  if (deleted > 0) return true;
  const [event] = await sql`SELECT 1 FROM events WHERE tenant_id = ${id} LIMIT 1`;
  return event !== undefined;
}
