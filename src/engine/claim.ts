/**
 * **claim**: the statement that takes due deliveries for a worker. `states.ts`
 * names and explains each transition. A claim's lease is `(locked_by,
 * attempts)`, and every statement that ends or extends a claim matches both.
 *
 * @module
 */
import type { Sql } from "../db/pool.ts";
import type { ClaimedDelivery } from "./shapes.ts";

/**
 * The attempt-budget rule, the one place it is written: the attempts made
 * since the last requeue (`attempt_base`) have reached the subscription's
 * `max_attempts`, or `maxAttempts` when it has none. `d` names the
 * delivery row (after its claim counted the attempt), `s` its subscription.
 */
export function budgetSpent(sql: Sql, aliases: { d: string; s: string }, maxAttempts: number) {
  const d = sql(aliases.d);
  const s = sql(aliases.s);
  return sql`${d}.attempts - ${d}.attempt_base >= coalesce(${s}.max_attempts, ${maxAttempts})`;
}

/** A subscription whose deliveries a limit or its circuit can hold back. */
const gatedSubscription = `(s.rate_limit IS NOT NULL OR s.max_in_flight IS NOT NULL
  OR s.circuit_state <> 'closed')`;

/** What this worker already has in flight, so that no subscription or tenant takes every slot. */
export interface FairShare {
  /** Slots a subscription, or a tenant's subscriptions together, may hold in this worker. */
  cap: number;
  /** The subscription and tenant of each delivery the worker has in flight. */
  busy: readonly { seq: number | null; tenant: string | null }[];
}

export interface ClaimOptions {
  workerId: string;
  limit: number;
  /** Slots of this claim that due retries take before first attempts; the rest go first attempts first. */
  retryReserve: number;
  leaseMs: number;
  maxAttempts: number;
  /** How far ahead a rate-limited delivery may be claimed, to be sent at its slot. */
  horizonMs: number;
  /** When the probe candidate of a circuit that cannot probe yet is looked at again. */
  recheckMs: number;
  /**
   * Bytes of event data one claim takes at most (it always takes one delivery
   * at least), so a worker's memory is bounded by bytes, not only by `limit`.
   * Default {@linkcode CLAIM_MAX_BYTES}.
   */
  maxBytes?: number;
  fair?: FairShare;
}

/** The subscriptions and tenants that hold their whole share: the claim does not look at them. */
function fullShares({ cap, busy }: FairShare) {
  const count = <K>(keys: K[]) => {
    const n = new Map<K, number>();
    for (const k of keys) n.set(k, (n.get(k) ?? 0) + 1);
    return [...n].filter(([k, c]) => k !== null && c >= cap).map(([k]) => k as NonNullable<K>);
  };
  return { seqs: count(busy.map((b) => b.seq)), tenants: count(busy.map((b) => b.tenant)) };
}

export const CLAIM_MAX_BYTES = 4 * 1024 * 1024;

/**
 * **claim**: takes up to `limit` due deliveries and marks them `processing`
 * with a lease owned by `workerId`, in one statement. Rows locked by another
 * transaction are skipped, so no delivery is ever claimed twice and a claim
 * never waits. First attempts come first, except for the `retryReserve`
 * slots that due retries take (the worker spreads a quarter over its claims).
 *
 * With `fair`, a subscription or tenant that holds its share of the worker
 * is not looked at, and one claim gives none more than what is left of it.
 *
 * A subscription with a limit or a circuit that is not closed is locked for
 * the claim (processes take turns; one held by another is skipped this time)
 * and gets only what it allows: the next slots of its rate (the claim says
 * when to send each), what `max_in_flight` leaves, one probe when its circuit
 * is due one. What it does not allow is held back, without spending an
 * attempt (`held_by` says why): until its rate slot, or **parked** (due
 * 'infinity', out of every claim's range) until `dispatch_release_held()`
 * lets it go; one delivery per circuit stays due at the probe (or a recheck).
 * `scanned` is how many due deliveries the claim looked at: when it equals
 * `limit`, more may be due.
 */
export async function claimDeliveries(
  sql: Sql,
  options: ClaimOptions,
): Promise<{ deliveries: ClaimedDelivery[]; scanned: number }> {
  const { limit, fair } = options;
  const ms = (n: number) => sql`${n} * interval '1 millisecond'`;
  const full = fair === undefined ? { seqs: [], tenants: [] } : fullShares(fair);
  const skip = full.seqs.length + full.tenants.length === 0 ? sql`` : sql`
    AND (d.subscription_seq IS NULL OR d.subscription_seq NOT IN (
      SELECT seq FROM unnest(${full.seqs}::bigint[]) seq
      UNION ALL SELECT seq FROM subscriptions WHERE tenant_id = ANY(${full.tenants}::text[])))`;
  const busy = fair?.busy ?? [];
  const rows = await sql<(ClaimedDelivery & { scanned: number; id: number | null })[]>`
    WITH pend AS (
      SELECT d.id, d.event_id, d.subscription_seq, d.next_attempt_at, 0 AS prio FROM deliveries d
      WHERE d.status = 'pending' AND d.next_attempt_at <= now() ${skip}
      ORDER BY d.next_attempt_at LIMIT ${limit}
      FOR UPDATE SKIP LOCKED
    ), retr AS (
      SELECT d.id, d.event_id, d.subscription_seq, d.next_attempt_at, 1 AS prio FROM deliveries d
      WHERE d.status = 'retrying' AND d.next_attempt_at <= now() ${skip}
      ORDER BY d.next_attempt_at LIMIT ${limit}
      FOR UPDATE SKIP LOCKED
    ), share AS (
      SELECT least((SELECT count(*) FROM pend),
        ${limit} - least((SELECT count(*) FROM retr), ${options.retryReserve})) AS first
    ), scan AS (
      (SELECT * FROM pend ORDER BY next_attempt_at LIMIT (SELECT first FROM share))
      UNION ALL
      (SELECT * FROM retr ORDER BY next_attempt_at LIMIT (SELECT ${limit} - first FROM share))
    ), busy AS (
      SELECT * FROM unnest(${busy.map((b) => b.seq)}::bigint[],
        ${busy.map((b) => b.tenant)}::text[]) AS b(seq, tenant)
    ), cand AS (
      -- What is left of each share, taken in order; the rest stays due, untouched.
      SELECT c.id, c.event_id, c.subscription_seq, c.next_attempt_at, c.prio FROM (
        SELECT c.*, s.tenant_id,
          row_number() OVER (PARTITION BY c.subscription_seq
            ORDER BY c.prio, c.next_attempt_at, c.id) AS ks,
          row_number() OVER (PARTITION BY s.tenant_id
            ORDER BY c.prio, c.next_attempt_at, c.id) AS kt
        FROM scan c LEFT JOIN subscriptions s ON s.seq = c.subscription_seq
      ) c
      WHERE ${fair === undefined} OR (
        c.ks <= ${fair?.cap ?? 0} - (SELECT count(*) FROM busy b WHERE b.seq = c.subscription_seq)
        AND (c.tenant_id IS NULL OR c.kt <= ${fair?.cap ?? 0}
          - (SELECT count(*) FROM busy b WHERE b.tenant = c.tenant_id)))
    ), fits AS (
      -- Taken in claim order while the data before them is under the byte bound; the rest waits.
      SELECT * FROM (
        SELECT c.*, sum(b.n) OVER (ORDER BY c.prio, c.next_attempt_at, c.id) - b.n AS bytes_before
        FROM cand c JOIN events e ON e.id = c.event_id
        CROSS JOIN LATERAL (SELECT octet_length(coalesce(e.data_text, e.data::text)) AS n) b
      ) c WHERE c.bytes_before < ${options.maxBytes ?? CLAIM_MAX_BYTES}
    ), gating AS (
      SELECT s.seq FROM subscriptions s
      WHERE s.seq IN (SELECT subscription_seq FROM cand) AND ${sql.unsafe(gatedSubscription)}
    ), gated AS (
      SELECT s.seq, s.rate_limit, s.max_in_flight, s.circuit_state, s.circuit_next_probe_at,
        greatest(coalesce(s.rate_next_at, now()), now()) AS rate_from
      FROM subscriptions s
      WHERE s.seq IN (SELECT seq FROM gating) AND ${sql.unsafe(gatedSubscription)}
      FOR UPDATE SKIP LOCKED
    ), gauged AS (
      -- Counted after the lock, with a snapshot that has every claim committed before it.
      SELECT g.*, dispatch_claims_out(g.seq) AS in_flight FROM gated g
    ), ranked AS (
      SELECT c.id, c.subscription_seq, g.seq IS NOT NULL AS limited, g.rate_limit,
        g.max_in_flight, g.circuit_state, g.circuit_next_probe_at, g.rate_from, g.in_flight,
        row_number() OVER (PARTITION BY c.subscription_seq
          ORDER BY c.prio, c.next_attempt_at, c.id) AS k
      FROM fits c LEFT JOIN gauged g ON g.seq = c.subscription_seq
      -- A gated subscription another process holds waits for the next claim.
      WHERE g.seq IS NOT NULL OR c.subscription_seq IS NULL
        OR c.subscription_seq NOT IN (SELECT seq FROM gating)
    ), decided AS (
      SELECT r.*,
        r.rate_from + (r.k - 1) * interval '1 second' / r.rate_limit AS slot,
        CASE
          WHEN NOT r.limited THEN NULL
          WHEN r.circuit_state = 'open' AND r.circuit_next_probe_at > now() THEN 'circuit'
          -- Past its cool-down a circuit lets one probe go, once nothing else is out.
          WHEN r.circuit_state <> 'closed' AND (r.in_flight > 0 OR r.k > 1) THEN 'circuit'
          WHEN r.k > r.max_in_flight - r.in_flight THEN 'max_in_flight'
          WHEN r.rate_from + (r.k - 1) * interval '1 second' / r.rate_limit
            >= now() + ${ms(options.horizonMs)} THEN 'rate_limit'
        END AS held_by
      FROM ranked r
    ), claimed AS (
      UPDATE deliveries d SET status = 'processing', attempts = d.attempts + 1, held_by = NULL,
        locked_by = ${options.workerId}, locked_until = now() + ${ms(options.leaseMs)},
        updated_at = now()
      FROM decided x WHERE d.id = x.id AND x.held_by IS NULL
      RETURNING d.id, d.event_id, d.subscription_id, d.subscription_seq, d.attempts,
        d.attempt_base, CASE WHEN x.slot > now() THEN x.slot END AS send_at
    ), held AS (
      UPDATE deliveries d SET held_by = x.held_by, updated_at = now(),
        next_attempt_at = CASE
          WHEN x.held_by = 'rate_limit' THEN x.slot
          WHEN x.held_by = 'max_in_flight' OR x.k > 1 THEN 'infinity'
          -- The circuit's probe candidate.
          WHEN x.circuit_state = 'open' AND x.circuit_next_probe_at > now()
            THEN x.circuit_next_probe_at
          ELSE now() + ${ms(options.recheckMs)} END
      FROM decided x WHERE d.id = x.id AND x.held_by IS NOT NULL
      RETURNING 1
    ), taken AS (
      SELECT subscription_seq AS seq, count(*) AS n FROM decided
      WHERE limited AND held_by IS NULL GROUP BY subscription_seq
    ), paced AS (
      UPDATE subscriptions s SET
        rate_next_at = CASE WHEN g.rate_limit IS NULL THEN s.rate_next_at
          ELSE g.rate_from + t.n * interval '1 second' / g.rate_limit END,
        circuit_state = CASE WHEN g.circuit_state = 'open' THEN 'half_open'
          ELSE s.circuit_state END
      FROM gauged g JOIN taken t ON t.seq = g.seq
      WHERE s.seq = g.seq
      RETURNING 1
    )
    SELECT st.scanned, c.id, c.event_id, c.subscription_id, c.subscription_seq,
      c.attempts AS attempt, s.tenant_id,
      -- From the answer on, not the statement's start: however long the claim took. One
      -- reading for every row (an init plan), so a batch's slots keep their spacing.
      CASE WHEN c.send_at IS NOT NULL
        THEN greatest(0, ceil(extract(epoch FROM c.send_at - (SELECT clock_timestamp())) * 1000))::int
      END AS send_in_ms,
      ${budgetSpent(sql, { d: "c", s: "s" }, options.maxAttempts)} AS last_attempt,
      coalesce(s.circuit_state = 'closed' AND s.consecutive_failures = 0
        AND s.failing_since IS NULL, false) AS healthy,
      e.type, e.source, e.created_at,
      coalesce(e.data_text, e.data::text) AS data, s.url, s.active, s.auth, s.auth_secret,
      s.headers, s.format,
      array_remove(ARRAY[s.secret, CASE WHEN s.previous_secret_expires_at > now()
        THEN s.previous_secret END], NULL) AS secrets,
      CASE WHEN s.tls_client_key IS NOT NULL THEN json_build_object(
        'fingerprint', s.tls_client_certificate->>'fingerprint_sha256',
        'cert', s.tls_client_cert_pem, 'key', s.tls_client_key) END AS tls_client_certificate
    FROM (SELECT count(*)::int AS scanned FROM scan) st
    LEFT JOIN claimed c ON true
    LEFT JOIN events e ON e.id = c.event_id
    LEFT JOIN subscriptions s ON s.seq = c.subscription_seq`;
  return {
    scanned: rows[0]?.scanned ?? 0,
    deliveries: rows.filter((r) => r.id !== null).map(({ scanned: _s, ...d }) => d),
  };
}
