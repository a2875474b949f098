/**
 * Subscriptions as the API shows them: never with their secrets.
 *
 * @module
 */
import type { Sql } from "../db/pool.ts";
import type { EndpointAuth } from "../engine/shapes.ts";
import type { CircuitState, Ordering } from "../engine/states.ts";
import { maskedHeadersColumn } from "./custom_headers.ts";
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
  rate_limit: number | null;
  max_in_flight: number | null;
  ordering: Ordering;
  circuit: {
    state: CircuitState;
    consecutive_failures: number;
    opened_at: string | null;
    next_probe_at: string | null;
  };
  metadata: Record<string, string>;
  /** Without its secret part. */
  auth: EndpointAuth | null;
  tls_client_certificate: CertificateSummary | null;
  /** Sensitive values show as "***". */
  headers: Record<string, string>;
  filter: string | null;
  format: "standard" | "cloudevents";
  created_at: Date;
  updated_at: Date;
}

/** What the API shows of a client certificate: never its key (a type, so it is JSON to postgres.js). */
export type CertificateSummary = {
  subject: string;
  issuer: string;
  /** ISO 8601. */
  not_after: string;
  /** SHA-256 of the DER certificate, colon-separated hex as `openssl x509 -fingerprint` prints it. */
  fingerprint_sha256: string;
};

/** A timestamp as the API writes every other one (JavaScript's `toISOString`). */
const iso = (column: string) =>
  `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

export const subscriptionColumns =
  `id, tenant_id, url, event_types, description, active, disabled_reason, max_attempts,
  rate_limit, max_in_flight, ordering,
  json_build_object('state', circuit_state, 'consecutive_failures', consecutive_failures,
    'opened_at', ${iso("circuit_opened_at")}, 'next_probe_at', ${iso("circuit_next_probe_at")})
    AS circuit,
  metadata, auth, tls_client_certificate, ${maskedHeadersColumn}, filter, format, created_at,
  updated_at`;

export async function getSubscription(
  sql: Sql,
  id: string,
  options: TenantFilter = {},
): Promise<SubscriptionRow | undefined> {
  const [row] = await sql<SubscriptionRow[]>`
    SELECT ${sql.unsafe(subscriptionColumns)} FROM subscriptions s
    WHERE id = ${id} ${ofTenant(sql, "s", options)}`;
  return row;
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

/** Oldest first; `next` is the sequence number to continue after, if more remain. */
export async function listSubscriptions(
  sql: Sql,
  options: TenantFilter & { limit: number; after?: number | undefined },
): Promise<{ subscriptions: SubscriptionRow[]; next: number | null }> {
  const rows = await sql<(SubscriptionRow & { seq: number })[]>`
    SELECT seq, ${sql.unsafe(subscriptionColumns)} FROM subscriptions s
    WHERE seq > ${options.after ?? 0} ${ofTenant(sql, "s", options)}
    ORDER BY seq LIMIT ${options.limit + 1}`;
  const more = rows.length > options.limit;
  const page = rows.slice(0, options.limit);
  return {
    subscriptions: page.map(({ seq: _seq, ...sub }) => sub),
    next: more ? page.at(-1)!.seq : null,
  };
}

/**
 * Every distinct stored secret that starts with `prefix` (the encrypted
 * ones), current and previous, endpoint auth, client certificate keys and sealed custom
 * header values, with a subscription that holds it: start-up checks that the key opens each.
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
      UNION ALL
      SELECT auth_secret, id FROM subscriptions WHERE auth_secret IS NOT NULL
      UNION ALL
      SELECT tls_client_key, id FROM subscriptions WHERE tls_client_key IS NOT NULL
      UNION ALL
      SELECT h.value, id FROM subscriptions, jsonb_each_text(headers) h
    ) s
    WHERE starts_with(secret, ${prefix})
    ORDER BY secret, subscription_id`;
}

/** When each subscription's client certificate stops being valid, soonest first. */
export async function clientCertificateExpiries(
  sql: Sql,
): Promise<{ subscription_id: string; tenant_id: string | null; not_after: Date }[]> {
  return await sql<{ subscription_id: string; tenant_id: string | null; not_after: Date }[]>`
    SELECT id AS subscription_id, tenant_id,
      (tls_client_certificate->>'not_after')::timestamptz AS not_after
    FROM subscriptions WHERE tls_client_certificate IS NOT NULL
    ORDER BY not_after, id`;
}
