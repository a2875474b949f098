/**
 * The queue's statements: claim, complete (deliver, retry, fail, abandon),
 * hand back, renew and rescue. `src/delivery/lifecycle.ts` names and explains
 * each transition. A claim's lease is `(locked_by, attempts)`, and every
 * statement that ends or extends a claim matches both.
 *
 * @module
 */
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
  /** Number of this attempt, 1-based, counted over the delivery's life: the lease's token. */
  attempt: number;
  /** Whether this attempt spends the last of the attempt budget. */
  last_attempt: boolean;
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
 * **claim**: takes up to `limit` due deliveries and marks them `processing`
 * with a lease owned by `workerId`, in one statement. Rows locked by another
 * transaction are skipped, so no delivery is ever claimed twice and a claim
 * never waits.
 */
export async function claimDeliveries(
  sql: Sql,
  options: { workerId: string; limit: number; leaseMs: number; maxAttempts: number },
): Promise<ClaimedDelivery[]> {
  return await sql<ClaimedDelivery[]>`
    WITH due AS (
      SELECT id FROM deliveries
      WHERE status IN ('pending', 'retrying') AND next_attempt_at <= now()
      ORDER BY next_attempt_at
      LIMIT ${options.limit}
      FOR UPDATE SKIP LOCKED
    ), claimed AS (
      UPDATE deliveries d SET status = 'processing', attempts = d.attempts + 1,
        locked_by = ${options.workerId},
        locked_until = now() + ${options.leaseMs} * interval '1 millisecond',
        updated_at = now()
      FROM due WHERE d.id = due.id
      RETURNING d.id, d.event_id, d.subscription_id, d.subscription_seq, d.attempts, d.attempt_base
    )
    SELECT c.id, c.event_id, c.subscription_id, c.attempts AS attempt,
      ${budgetSpent(sql, { d: "c", s: "s" }, options.maxAttempts)} AS last_attempt,
      e.type, e.source, e.created_at, e.data::text AS data, s.url, s.active,
      array_remove(ARRAY[s.secret, CASE WHEN s.previous_secret_expires_at > now()
        THEN s.previous_secret END], NULL) AS secrets
    FROM claimed c
    JOIN events e ON e.id = c.event_id
    LEFT JOIN subscriptions s ON s.seq = c.subscription_seq`;
}

/** The outcome of one claimed delivery, written back by the completer. */
export interface Completion {
  deliveryId: number;
  eventId: string;
  subscriptionId: string;
  attempt: number;
  status: "delivered" | "retrying" | "failed";
  /** For `retrying`: when to try again, in ms from now. */
  retryInMs: number;
  /** Null when nothing was sent (abandon: the subscription was gone or disabled). */
  record: AttemptRecord | null;
  lastError: string | null;
  lastStatusCode: number | null;
  /** A reason to disable the subscription with this result (410 Gone), or null. */
  disable: string | null;
}

export interface AttemptRecord {
  startedAt: Date;
  durationMs: number;
  statusCode: number | null;
  errorClass: string | null;
  error: string | null;
  responseBody: string | null;
  responseHeaders: Record<string, string>;
}

/** What writing one completion did. */
export interface CompletionResult {
  /** False when the lease was no longer this one (rescued, or already written): only the attempt was recorded. */
  applied: boolean;
  /** This result disabled its subscription. */
  disabled: boolean;
}

/**
 * **deliver**, **retry**, **fail** and **abandon**: writes a batch of
 * outcomes, their attempts and any subscription they disable (410 Gone) in
 * one statement. A delivery is changed only while the claim is still this
 * one (`locked_by` and the attempt number match), so a write repeated after
 * a lost answer never lands on a newer claim. An attempt is always
 * recorded: it did happen. It replaces the `lease_expired` row the rescuer
 * wrote for it, if any.
 */
export async function completeDeliveries(
  sql: Sql,
  workerId: string,
  batch: readonly Completion[],
): Promise<CompletionResult[]> {
  const sent = batch.filter((c) => c.record !== null);
  const rows = await sql<{ applied: boolean; disabled: boolean }[]>`
    WITH r AS (
      SELECT * FROM unnest(
        ${batch.map((c) => c.deliveryId)}::bigint[],
        ${batch.map((c) => c.attempt)}::int[],
        ${batch.map((c) => c.status)}::text[],
        ${batch.map((c) => c.retryInMs)}::bigint[],
        ${batch.map((c) => c.lastStatusCode)}::int[],
        ${batch.map((c) => c.lastError)}::text[],
        ${batch.map((c) => c.disable)}::text[]
      ) WITH ORDINALITY AS r(id, attempt, status, retry_in_ms, code, error, disable, ord)
    ), upd AS (
      UPDATE deliveries d SET status = r.status,
        next_attempt_at = now() + r.retry_in_ms * interval '1 millisecond',
        last_status_code = r.code, last_error = r.error,
        delivered_at = CASE WHEN r.status = 'delivered' THEN now() END,
        locked_by = NULL, locked_until = NULL, updated_at = now()
      FROM r
      WHERE d.id = r.id AND d.status = 'processing' AND d.locked_by = ${workerId}
        AND d.attempts = r.attempt
      RETURNING d.id, d.subscription_seq
    ), gone AS (
      UPDATE subscriptions s SET active = false, disabled_reason = g.reason, updated_at = now()
      FROM (
        SELECT DISTINCT ON (upd.subscription_seq) upd.subscription_seq AS seq, r.disable AS reason
        FROM upd JOIN r ON r.id = upd.id WHERE r.disable IS NOT NULL
        ORDER BY upd.subscription_seq, r.ord
      ) g
      WHERE s.seq = g.seq AND s.active
      RETURNING s.seq
    ), att AS (
      INSERT INTO delivery_attempts (delivery_id, event_id, subscription_id, attempt,
        started_at, duration_ms, status_code, error_class, error, response_body,
        response_headers)
      SELECT delivery_id, event_id, subscription_id, attempt, started_at, duration_ms,
        status_code, error_class, error, response_body, response_headers::jsonb
      FROM unnest(
        ${sent.map((c) => c.deliveryId)}::bigint[],
        ${sent.map((c) => c.eventId)}::text[],
        ${sent.map((c) => c.subscriptionId)}::text[],
        ${sent.map((c) => c.attempt)}::int[],
        ${sent.map((c) => c.record!.startedAt.toISOString())}::timestamptz[],
        ${sent.map((c) => c.record!.durationMs)}::int[],
        ${sent.map((c) => c.record!.statusCode)}::int[],
        ${sent.map((c) => c.record!.errorClass)}::text[],
        ${sent.map((c) => c.record!.error)}::text[],
        ${sent.map((c) => c.record!.responseBody)}::text[],
        ${sent.map((c) => JSON.stringify(c.record!.responseHeaders))}::text[]
      ) AS a(delivery_id, event_id, subscription_id, attempt, started_at, duration_ms,
        status_code, error_class, error, response_body, response_headers)
      ON CONFLICT (delivery_id, attempt) DO UPDATE SET started_at = excluded.started_at,
        duration_ms = excluded.duration_ms, status_code = excluded.status_code,
        error_class = excluded.error_class, error = excluded.error,
        response_body = excluded.response_body, response_headers = excluded.response_headers
      WHERE delivery_attempts.error_class = 'lease_expired'
      RETURNING 1
    )
    SELECT upd.id IS NOT NULL AS applied,
      (r.disable IS NOT NULL AND gone.seq IS NOT NULL) AS disabled,
      (SELECT count(*) FROM att) AS recorded
    FROM r
    LEFT JOIN upd ON upd.id = r.id
    LEFT JOIN gone ON gone.seq = upd.subscription_seq
    ORDER BY r.ord`;
  return rows.map((r) => ({ applied: r.applied, disabled: r.disabled }));
}

/**
 * **hand back**: returns claims of this worker that were never sent to the
 * queue, due at once and uncounted: `only` the given ones (shutdown), or
 * all it holds `except` the given ones (after a claim whose answer was lost
 * with its connection: those still being sent or written are kept).
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
  const rows = await sql`
    UPDATE deliveries SET
      status = CASE WHEN attempts <= 1 THEN 'pending' ELSE 'retrying' END,
      attempts = attempts - 1, locked_by = NULL, locked_until = NULL,
      next_attempt_at = now(), updated_at = now()
    WHERE status = 'processing' AND locked_by = ${workerId}
      AND ${"only" in which ? listed : sql`NOT ${listed}`}
    RETURNING 1`;
  return rows.length;
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
 * as `lease_expired` so the history says what happened.
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
      RETURNING d.id, d.event_id, d.subscription_id, d.attempts, d.last_error
    ), att AS (
      INSERT INTO delivery_attempts (delivery_id, event_id, subscription_id, attempt,
        started_at, duration_ms, error_class, error)
      SELECT id, event_id, subscription_id, attempts, now(), 0, 'lease_expired', last_error
      FROM upd
      ON CONFLICT (delivery_id, attempt) DO NOTHING
      RETURNING 1
    ), wake AS (
      SELECT pg_notify(${options.channel}, '') FROM (SELECT 1 FROM upd LIMIT 1) x
    )
    SELECT (SELECT count(*) FROM upd)::int AS rescued, (SELECT count(*) FROM att) AS recorded,
      (SELECT count(*) FROM wake) AS woke`;
  return row?.rescued ?? 0;
}
