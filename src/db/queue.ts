/**
 * The queue's statements: claim, complete (deliver, retry, fail, abandon),
 * hand back, renew and rescue. `src/delivery/lifecycle.ts` names and explains
 * each transition. A claim's lease is `(locked_by, attempts)`, and every
 * statement that ends or extends a claim matches both.
 *
 * @module
 */
import type postgres from "postgres";
import type { Sql } from "./pool.ts";

/** A claim: the delivery and the attempt number that is the lease's token. */
export interface Lease {
  id: number;
  attempt: number;
}

/** A delivery claimed by a worker, with everything needed to send it. */
export interface ClaimedDelivery {
  id: number;
  event_id: string;
  subscription_id: string;
  /** The subscription as it existed at fan-out; null when it was deleted before version 3. */
  subscription_seq: number | null;
  /** The subscription's tenant; null without one (or when it was deleted). */
  tenant_id: string | null;
  /** Number of this attempt, 1-based, counted over the delivery's life: the lease's token. */
  attempt: number;
  /** Whether this attempt spends the last of the attempt budget. */
  last_attempt: boolean;
  /**
   * Wait this long from the claim's answer before sending (the
   * subscription's rate limit paces it); null: at once. Counted by the
   * database's clock as it answers, never against the worker's clock.
   */
  send_in_ms: number | null;
  /**
   * The subscription's circuit was closed with no failure counted when claimed:
   * a success changes nothing about its health, so its result needs no health write.
   */
  healthy: boolean;
  type: string;
  source: string | null;
  created_at: Date;
  /** The event's data as JSON text, sent as is. */
  data: string;
  /** Null when the subscription was deleted after fan-out. */
  url: string | null;
  active: boolean | null;
  /** Stored (possibly sealed) secrets that sign this attempt: current, and previous in its grace. */
  secrets: string[];
}

/**
 * The attempt-budget rule, the one place it is written: the attempts made
 * since the last requeue (`attempt_base`) have reached the subscription's
 * `max_attempts`, or `maxAttempts` when it has none. `d` names the
 * delivery row (after its claim counted the attempt), `s` its subscription.
 */
function budgetSpent(sql: Sql, aliases: { d: string; s: string }, maxAttempts: number) {
  const d = sql(aliases.d);
  const s = sql(aliases.s);
  return sql`${d}.attempts - ${d}.attempt_base >= coalesce(${s}.max_attempts, ${maxAttempts})`;
}

/**
 * A subscription `s` whose health a success changes: a failure counted, failing
 * since some time, or a circuit that is not closed.
 */
const unsettled = `(s.circuit_state <> 'closed' OR s.consecutive_failures > 0
  OR s.failing_since IS NOT NULL)`;

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
      SELECT g.*, claims_out(g.seq) AS in_flight FROM gated g
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
      -- From the answer on, not the statement's start: however long the claim took.
      CASE WHEN c.send_at IS NOT NULL
        THEN greatest(0, ceil(extract(epoch FROM c.send_at - clock_timestamp()) * 1000))::int
      END AS send_in_ms,
      ${budgetSpent(sql, { d: "c", s: "s" }, options.maxAttempts)} AS last_attempt,
      coalesce(s.circuit_state = 'closed' AND s.consecutive_failures = 0
        AND s.failing_since IS NULL, false) AS healthy,
      e.type, e.source, e.created_at,
      coalesce(e.data_text, e.data::text) AS data, s.url, s.active,
      array_remove(ARRAY[s.secret, CASE WHEN s.previous_secret_expires_at > now()
        THEN s.previous_secret END], NULL) AS secrets
    FROM (SELECT count(*)::int AS scanned FROM scan) st
    LEFT JOIN claimed c ON true
    LEFT JOIN events e ON e.id = c.event_id
    LEFT JOIN subscriptions s ON s.seq = c.subscription_seq`;
  return {
    scanned: rows[0]?.scanned ?? 0,
    deliveries: rows.filter((r) => r.id !== null).map(({ scanned: _s, ...d }) => d),
  };
}

/** The outcome of one claimed delivery, written back by the completer. */
export interface Completion {
  deliveryId: number;
  eventId: string;
  subscriptionId: string;
  subscriptionSeq: number | null;
  attempt: number;
  status: "delivered" | "retrying" | "failed";
  /** For `retrying`: when to try again, in ms from now. */
  retryInMs: number;
  /** Null when nothing was sent (abandon: the subscription was gone or disabled). */
  record: AttemptRecord | null;
  lastError: string | null;
  lastStatusCode: number | null;
  /** What the attempt says about the endpoint's health; null when it says nothing (not sent, or stopped by us). */
  verdict: Verdict | null;
  /** The subscription was healthy when this was claimed (see {@linkcode ClaimedDelivery.healthy}). */
  healthy: boolean;
}

/**
 * An attempt as the circuit breaker sees it: a 2xx, a failure (timeout,
 * connection error, 5xx, 429), another answer (a 4xx, a redirect), or 410 Gone.
 */
export type Verdict = "success" | "failure" | "answer" | "gone";

export interface AttemptRecord {
  startedAt: Date;
  durationMs: number;
  statusCode: number | null;
  errorClass: string | null;
  error: string | null;
  responseBody: string | null;
  responseHeaders: Record<string, string>;
}

/**
 * **release**, the one statement that lets parked deliveries go: for each
 * `(seq, n)` row of `grants`, `dispatch_release_held(seq, n)` (migration 9)
 * lets `n` go, or with `n` null what the subscription's state allows now.
 * Subscriptions are locked in `seq` order, so two releases never deadlock.
 * Answers `n`: how many it let go, to wake the workers when any.
 */
export function releaseHeld(sql: Sql, grants: postgres.Fragment) {
  return sql`
    SELECT coalesce(sum(dispatch_release_held(g.seq, g.n)), 0)::int AS n
    FROM (${grants} ORDER BY 1) g(seq, n)`;
}

/**
 * The grants for claims that ended, from `cte` (a `seq, n` count of them):
 * only subscriptions with max_in_flight park for a claim's end.
 */
function endedClaims(sql: Sql, cte: string) {
  return sql`SELECT f.seq, f.n::int FROM ${sql(cte)} f JOIN subscriptions s ON s.seq = f.seq
    WHERE s.max_in_flight IS NOT NULL`;
}

/**
 * **deliver**, **retry**, **fail** and **abandon**: writes a batch of
 * outcomes and their attempts in one statement. A delivery is changed only
 * while the claim is still this one (`locked_by` and the attempt number
 * match), so a write repeated after a lost answer never lands on a newer
 * claim. An attempt is always recorded: it did happen. It replaces the
 * `lease_expired` row the rescuer wrote for it, if any. Each finished claim
 * of a subscription with `max_in_flight` lets one delivery it parked go.
 * Answers, per outcome, whether the lease was still this one; null when
 * one of the `unlessUnsettled` subscriptions has a health to change (see
 * {@linkcode unsettled}): then nothing was written.
 */
export async function completeDeliveries(
  sql: Sql,
  workerId: string,
  batch: readonly Completion[],
  options: { channel: string; unlessUnsettled?: readonly number[] },
): Promise<boolean[] | null> {
  const sent = batch.filter((c) => c.record !== null);
  const rows = await sql<{ applied: boolean; unsettled: boolean }[]>`
    WITH stop AS (
      -- Read from the rows as they are now, without a lock: a success on a subscription with
      -- nothing to reset, the common case, changes nothing of it.
      SELECT EXISTS (SELECT 1 FROM subscriptions s
        WHERE s.seq = ANY(${options.unlessUnsettled ?? []}::bigint[])
          AND ${sql.unsafe(unsettled)}) AS unsettled
    ), r AS (
      SELECT * FROM unnest(
        ${batch.map((c) => c.deliveryId)}::bigint[],
        ${batch.map((c) => c.attempt)}::int[],
        ${batch.map((c) => c.status)}::text[],
        ${batch.map((c) => c.retryInMs)}::bigint[],
        ${batch.map((c) => c.lastStatusCode)}::int[],
        ${batch.map((c) => c.lastError)}::text[]
      ) WITH ORDINALITY AS r(id, attempt, status, retry_in_ms, code, error, ord)
    ), upd AS (
      UPDATE deliveries d SET status = r.status,
        next_attempt_at = now() + r.retry_in_ms * interval '1 millisecond',
        last_status_code = r.code, last_error = r.error,
        delivered_at = CASE WHEN r.status = 'delivered' THEN now() END,
        locked_by = NULL, locked_until = NULL, updated_at = now()
      FROM r
      WHERE d.id = r.id AND d.status = 'processing' AND d.locked_by = ${workerId}
        AND d.attempts = r.attempt AND NOT (SELECT unsettled FROM stop)
      RETURNING d.id, d.subscription_seq
    ), freed AS (
      SELECT subscription_seq AS seq, count(*) AS n FROM upd GROUP BY subscription_seq
    ), released AS (
      ${releaseHeld(sql, endedClaims(sql, "freed"))}
    ), wake AS (
      SELECT pg_notify(${options.channel}, '') FROM released WHERE n > 0
    ), att AS (
      INSERT INTO delivery_attempts (delivery_id, event_id, subscription_id, subscription_seq,
        attempt, started_at, duration_ms, status_code, error_class, error, response_body,
        response_headers)
      SELECT delivery_id, event_id, subscription_id, subscription_seq, attempt, started_at,
        duration_ms, status_code, error_class, error, response_body, response_headers::jsonb
      FROM unnest(
        ${sent.map((c) => c.deliveryId)}::bigint[],
        ${sent.map((c) => c.eventId)}::text[],
        ${sent.map((c) => c.subscriptionId)}::text[],
        ${sent.map((c) => c.subscriptionSeq)}::bigint[],
        ${sent.map((c) => c.attempt)}::int[],
        ${sent.map((c) => c.record!.startedAt.toISOString())}::timestamptz[],
        ${sent.map((c) => c.record!.durationMs)}::int[],
        ${sent.map((c) => c.record!.statusCode)}::int[],
        ${sent.map((c) => c.record!.errorClass)}::text[],
        ${sent.map((c) => c.record!.error)}::text[],
        ${sent.map((c) => c.record!.responseBody)}::text[],
        ${sent.map((c) => JSON.stringify(c.record!.responseHeaders))}::text[]
      ) AS a(delivery_id, event_id, subscription_id, subscription_seq, attempt, started_at,
        duration_ms, status_code, error_class, error, response_body, response_headers)
      WHERE NOT (SELECT unsettled FROM stop)
      ON CONFLICT (delivery_id, attempt) DO UPDATE SET started_at = excluded.started_at,
        duration_ms = excluded.duration_ms, status_code = excluded.status_code,
        error_class = excluded.error_class, error = excluded.error,
        response_body = excluded.response_body, response_headers = excluded.response_headers
      WHERE delivery_attempts.error_class = 'lease_expired'
      RETURNING 1
    )
    SELECT upd.id IS NOT NULL AS applied, (SELECT unsettled FROM stop),
      (SELECT count(*) FROM att) AS recorded, (SELECT count(*) FROM wake) AS woke
    FROM r LEFT JOIN upd ON upd.id = r.id
    ORDER BY r.ord`;
  return rows[0]?.unsettled ? null : rows.map((r) => r.applied);
}

/**
 * **hand back**: returns claims of this worker that were never sent to the
 * queue, due at once and uncounted: `only` the given ones (shutdown), or
 * all it holds `except` the given ones (after a claim whose answer was lost
 * with its connection: those still being sent or written are kept). Each
 * lets go what its subscription parked for it, as a finished claim does.
 */
export async function handBack(
  sql: Sql,
  workerId: string,
  which: { only: readonly Lease[] } | { except: readonly Lease[] },
): Promise<number> {
  const leases = "only" in which ? which.only : which.except;
  if ("only" in which && leases.length === 0) return 0;
  const listed = sql`(id, attempts) IN (SELECT * FROM unnest(
    ${leases.map((l) => l.id)}::bigint[], ${leases.map((l) => l.attempt)}::int[]))`;
  const [row] = await sql<{ n: number }[]>`
    WITH back AS (
      UPDATE deliveries SET
        status = CASE WHEN attempts <= 1 THEN 'pending' ELSE 'retrying' END,
        attempts = attempts - 1, locked_by = NULL, locked_until = NULL,
        next_attempt_at = now(), updated_at = now()
      WHERE status = 'processing' AND locked_by = ${workerId}
        AND ${"only" in which ? listed : sql`NOT ${listed}`}
      RETURNING subscription_seq
    ), freed AS (
      SELECT subscription_seq AS seq, count(*) AS n FROM back GROUP BY subscription_seq
    ), released AS (
      ${releaseHeld(sql, endedClaims(sql, "freed"))}
    )
    SELECT (SELECT count(*) FROM back)::int AS n, (SELECT n FROM released) AS released`;
  return row?.n ?? 0;
}

/**
 * Extends the leases this worker still holds by `leaseMs` from now, so a
 * live holder is never rescued however long its send or its result write
 * takes. Returns how many were extended (a lease lost to the rescuer is not).
 */
export async function renewLeases(
  sql: Sql,
  options: { workerId: string; leases: readonly Lease[]; leaseMs: number },
): Promise<number> {
  if (options.leases.length === 0) return 0;
  const rows = await sql`
    UPDATE deliveries d SET locked_until = now() + ${options.leaseMs} * interval '1 millisecond'
    FROM unnest(${options.leases.map((l) => l.id)}::bigint[],
      ${options.leases.map((l) => l.attempt)}::int[]) AS l(id, attempt)
    WHERE d.id = l.id AND d.attempts = l.attempt AND d.status = 'processing'
      AND d.locked_by = ${options.workerId}
    RETURNING 1`;
  return rows.length;
}

/**
 * **rescue**: returns deliveries whose lease expired (their worker died, or
 * lost the database for longer than the lease) to `retrying`, or to
 * `failed` when that was their last attempt, and records the lost attempt
 * as `lease_expired` so the history says what happened. Each lets go what
 * its subscription parked for it, as a finished claim does.
 */
export async function rescueExpired(
  sql: Sql,
  options: { maxAttempts: number; limit: number; channel: string },
): Promise<number> {
  const [row] = await sql<{ rescued: number }[]>`
    WITH expired AS (
      SELECT d.id, d.attempts, d.locked_by,
        ${budgetSpent(sql, { d: "d", s: "s" }, options.maxAttempts)} AS spent
      FROM deliveries d LEFT JOIN subscriptions s ON s.seq = d.subscription_seq
      WHERE d.status = 'processing' AND d.locked_until < now()
      ORDER BY d.locked_until
      LIMIT ${options.limit}
      FOR UPDATE OF d SKIP LOCKED
    ), upd AS (
      UPDATE deliveries d SET
        status = CASE WHEN x.spent THEN 'failed' ELSE 'retrying' END,
        last_error = 'Lease expired: the worker stopped before recording a result',
        last_status_code = NULL, locked_by = NULL, locked_until = NULL,
        next_attempt_at = now(), updated_at = now()
      FROM expired x
      WHERE d.id = x.id AND d.attempts = x.attempts AND d.locked_by = x.locked_by
      RETURNING d.id, d.event_id, d.subscription_id, d.subscription_seq, d.attempts, d.last_error
    ), att AS (
      INSERT INTO delivery_attempts (delivery_id, event_id, subscription_id, subscription_seq,
        attempt, started_at, duration_ms, error_class, error)
      SELECT id, event_id, subscription_id, subscription_seq, attempts, now(), 0,
        'lease_expired', last_error
      FROM upd
      ON CONFLICT (delivery_id, attempt) DO NOTHING
      RETURNING 1
    ), freed AS (
      SELECT subscription_seq AS seq, count(*) AS n FROM upd GROUP BY subscription_seq
    ), released AS (
      ${releaseHeld(sql, endedClaims(sql, "freed"))}
    ), wake AS (
      SELECT pg_notify(${options.channel}, '') FROM (SELECT 1 FROM upd LIMIT 1) x
      WHERE (SELECT n FROM released) >= 0
    )
    SELECT (SELECT count(*) FROM upd)::int AS rescued, (SELECT count(*) FROM att) AS recorded,
      (SELECT count(*) FROM wake) AS woke`;
  return row?.rescued ?? 0;
}
