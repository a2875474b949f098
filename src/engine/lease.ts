/**
 * The statements that end or extend a claim other than its outcome: **hand
 * back**, renew, and **rescue** of an expired lease.
 *
 * @module
 */
import type { Sql } from "../db/pool.ts";
import { budgetSpent } from "./claim.ts";
import { queueNext } from "./ordering.ts";
import { endedClaims, releaseHeld } from "./release.ts";
import type { Lease } from "./shapes.ts";

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
    ), released AS (
      ${releaseHeld(sql, endedClaims(sql, "back"))}
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
 * its subscription parked for it, as a finished claim does (a failed fifo
 * one, the next of its queue).
 */
export async function rescueExpired(
  sql: Sql,
  options: { maxAttempts: number; limit: number },
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
      RETURNING d.id, d.event_id, d.subscription_id, d.subscription_seq, d.attempts, d.last_error,
        d.status, d.queue_id, d.created_at
    ), att AS (
      INSERT INTO delivery_attempts (delivery_id, event_id, subscription_id, subscription_seq,
        attempt, started_at, duration_ms, error_class, error, delivery_created_at)
      SELECT id, event_id, subscription_id, subscription_seq, attempts, now(), 0,
        'lease_expired', last_error, created_at
      FROM upd
      ON CONFLICT (delivery_id, attempt, delivery_created_at) DO NOTHING
    ), released AS (
      ${releaseHeld(sql, endedClaims(sql, "upd"))}
    ), queued AS (
      ${queueNext(sql, "upd")}
    )
    SELECT (SELECT count(*) FROM upd)::int AS rescued,
      (SELECT n FROM released) + (SELECT n FROM queued) AS released`;
  return row?.rescued ?? 0;
}
