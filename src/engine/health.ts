/**
 * A subscription's health, from what its endpoint answered: the circuit
 * breaker (closed → open → half_open → closed), auto-disable after failing
 * without a success for long enough, and disable on 410 Gone. Each change is
 * returned so that the caller can hold, release or fail the subscription's
 * waiting deliveries and announce it, in the same transaction.
 *
 * @module
 */
import type { Sql } from "../db/pool.ts";
import { newId } from "../ids.ts";
import { cancelWaiting } from "./cancel.ts";
import { releaseHeld } from "./release.ts";
import { type EventInput, insertEvents } from "./publish.ts";

/** What one batch of attempts said about one subscription's endpoint. */
export interface HealthReport {
  seq: number;
  /** A 2xx among the attempts. */
  success: boolean;
  /** An answer that is not a failure for the breaker (2xx, or e.g. a 400). */
  answered: boolean;
  /** Breaker failures (timeouts, connection errors, 5xx, 429) in the batch. */
  failures: number;
  /** Breaker failures after the batch's last success. */
  failuresSinceSuccess: number;
  /** An attempt that did not deliver, after the batch's last success (or in a batch without one). */
  failedSinceSuccess: boolean;
  /** The endpoint answered 410 Gone. */
  gone: boolean;
  lastError: string | null;
}

/** A report of nothing yet, to add a batch's attempts to. */
export function emptyReport(seq: number): HealthReport {
  return {
    seq,
    success: false,
    answered: false,
    failures: 0,
    failuresSinceSuccess: 0,
    failedSinceSuccess: false,
    gone: false,
    lastError: null,
  };
}

export interface HealthSettings {
  /** Consecutive failures that open the circuit; 0 never opens it. */
  failureThreshold: number;
  cooldownMs: number;
  maxCooldownMs: number;
  /** Failing without a success this long disables the subscription; 0 never does. */
  autoDisableAfterMs: number;
}

export type HealthChangeKind = "circuit_opened" | "circuit_closed" | "disabled";

/** A change of a subscription's circuit or state. */
export interface HealthChange {
  kind: HealthChangeKind;
  seq: number;
  subscriptionId: string;
  tenantId: string | null;
  /** `consecutive_failures` or `probe_failed` (opened), `answered` (closed), `failing` or `gone` (disabled). */
  reason: string;
  lastError: string | null;
  at: Date;
  /** Opened: when the probe goes. */
  nextProbeAt: Date | null;
}

/**
 * Locks the subscriptions in `seq` order, the one order in which any
 * transaction that waits for several takes them, before it touches their
 * deliveries: two such transactions never wait on each other.
 */
export async function lockSubscriptions(
  sql: Sql,
  seqs: readonly (number | null)[],
): Promise<void> {
  const listed = seqs.filter((seq) => seq !== null);
  if (listed.length === 0) return;
  await sql`
    SELECT 1 FROM subscriptions WHERE seq = ANY(${listed}::bigint[]) ORDER BY seq FOR UPDATE`;
}

/**
 * Applies the reports to their subscriptions in one statement, under their
 * row locks (taken in `seq` order), and returns what changed. A disabled
 * subscription's circuit is closed: nothing of it waits to be held or probed.
 */
export async function recordHealth(
  sql: Sql,
  reports: readonly HealthReport[],
  settings: HealthSettings,
): Promise<HealthChange[]> {
  if (reports.length === 0) return [];
  const rows = await sql<
    {
      seq: number;
      id: string;
      tenant_id: string | null;
      was: string;
      now_state: string;
      reopened: boolean;
      disabled: string | null;
      last_error: string | null;
      at: Date;
      next_probe_at: Date | null;
    }[]
  >`
    WITH a AS (
      SELECT * FROM unnest(
        ${reports.map((r) => r.seq)}::bigint[],
        ${reports.map((r) => r.success)}::bool[],
        ${reports.map((r) => r.answered)}::bool[],
        ${reports.map((r) => r.failures)}::int[],
        ${reports.map((r) => r.failuresSinceSuccess)}::int[],
        ${reports.map((r) => r.failedSinceSuccess)}::bool[],
        ${reports.map((r) => r.gone)}::bool[],
        ${reports.map((r) => r.lastError)}::text[]
      ) AS a(seq, success, answered, failures, since_success, failed_since, gone, last_error)
    ), cur AS (
      SELECT s.seq, s.id, s.active, s.circuit_state, s.consecutive_failures,
        s.circuit_cooldown_ms, s.failing_since, a.success, a.answered, a.failures, a.since_success,
        a.failed_since, a.gone, a.last_error
      FROM subscriptions s JOIN a ON a.seq = s.seq
      ORDER BY s.seq
      FOR UPDATE OF s
    ), counted AS (
      SELECT c.*,
        CASE WHEN c.success THEN c.since_success ELSE c.consecutive_failures + c.failures END AS streak,
        CASE WHEN c.success THEN CASE WHEN c.failed_since THEN now() END
          WHEN c.failed_since THEN coalesce(c.failing_since, now())
          ELSE c.failing_since END AS failing_now
      FROM cur c
    ), judged AS (
      SELECT c.*,
        CASE
          WHEN NOT c.active THEN NULL
          WHEN c.gone THEN 'gone'
          WHEN NOT c.success AND ${settings.autoDisableAfterMs} > 0
            AND c.failing_now <= now() - ${settings.autoDisableAfterMs} * interval '1 millisecond'
            THEN 'failing'
        END AS disabled
      FROM counted c
    ), decided AS (
      SELECT c.*,
        CASE
          WHEN NOT c.active OR c.disabled IS NOT NULL THEN 'closed'
          WHEN c.circuit_state <> 'closed' AND c.answered THEN 'closed'
          WHEN c.circuit_state = 'half_open' AND c.failures > 0 THEN 'open'
          WHEN c.circuit_state = 'closed' AND ${settings.failureThreshold} > 0
            AND c.streak >= ${settings.failureThreshold} THEN 'open'
          ELSE c.circuit_state
        END AS next_state,
        -- The cool-down an opening starts: the first, or twice the last after a failed probe.
        CASE WHEN c.circuit_state = 'half_open'
          THEN least(${settings.maxCooldownMs}, 2 * coalesce(c.circuit_cooldown_ms, ${settings.cooldownMs}))
          ELSE ${settings.cooldownMs} END AS opening_cooldown_ms
      FROM judged c
    ), upd AS (
      UPDATE subscriptions s SET
        consecutive_failures = d.streak,
        failing_since = d.failing_now,
        circuit_state = d.next_state,
        circuit_cooldown_ms = CASE
          WHEN d.next_state = 'closed' THEN NULL
          WHEN d.next_state = 'open' AND d.circuit_state <> 'open' THEN d.opening_cooldown_ms
          ELSE s.circuit_cooldown_ms END,
        circuit_opened_at = CASE
          WHEN d.next_state = 'closed' THEN NULL
          WHEN d.circuit_state = 'closed' AND d.next_state = 'open' THEN now()
          ELSE s.circuit_opened_at END,
        circuit_next_probe_at = CASE
          WHEN d.next_state = 'closed' THEN NULL
          WHEN d.next_state = 'open' AND d.circuit_state <> 'open'
            THEN now() + d.opening_cooldown_ms * interval '1 millisecond'
          ELSE s.circuit_next_probe_at END,
        active = CASE WHEN d.disabled IS NULL THEN s.active ELSE false END,
        disabled_reason = coalesce(d.disabled, s.disabled_reason),
        updated_at = CASE WHEN d.disabled IS NULL THEN s.updated_at ELSE now() END
      FROM decided d WHERE s.seq = d.seq
      RETURNING s.seq, s.id, s.tenant_id, d.circuit_state AS was, s.circuit_state AS now_state,
        d.circuit_state = 'half_open' AND s.circuit_state = 'open' AS reopened,
        d.disabled, d.last_error, now() AS at, s.circuit_next_probe_at AS next_probe_at
    )
    SELECT * FROM upd WHERE was <> now_state OR disabled IS NOT NULL`;
  const changes: HealthChange[] = [];
  for (const r of rows) {
    const base = {
      seq: r.seq,
      subscriptionId: r.id,
      tenantId: r.tenant_id,
      lastError: r.last_error,
      at: r.at,
    };
    if (r.now_state === "open" && r.was !== "open") {
      changes.push({
        ...base,
        kind: "circuit_opened",
        reason: r.reopened ? "probe_failed" : "consecutive_failures",
        nextProbeAt: r.next_probe_at,
      });
    }
    // A circuit closed by disabling is announced as the disabling.
    if (r.now_state === "closed" && r.was !== "closed" && r.disabled === null) {
      changes.push({ ...base, kind: "circuit_closed", reason: "answered", nextProbeAt: null });
    }
    if (r.disabled !== null) {
      changes.push({ ...base, kind: "disabled", reason: r.disabled, nextProbeAt: null });
    }
  }
  return changes;
}

/**
 * Carries the changes out, in the caller's transaction: what each does to
 * the subscription's waiting deliveries (see {@linkcode applyToWaiting}),
 * and one operational event per change, `dispatch.subscription.<kind>`,
 * fanned out like any other event. Answers whether anything became due
 * (let go, or announced to a subscription): the caller wakes the workers.
 */
export async function applyHealthChanges(
  sql: Sql,
  changes: readonly HealthChange[],
): Promise<{ woke: boolean }> {
  if (changes.length === 0) return { woke: false };
  let released = 0;
  for (const change of changes) released += await applyToWaiting(sql, change);
  const outcomes = await insertEvents(sql, changes.map(operationalEvent));
  const fanned = outcomes.some((o) => o.kind === "created" && o.fanned > 0);
  return { woke: released > 0 || fanned };
}

/** The event that reports a change to the operator's subscriptions. */
export function operationalEvent(change: HealthChange): EventInput {
  return {
    id: newId("evt"),
    type: `dispatch.subscription.${change.kind}`,
    source: "dispatch",
    // The operator's event: it has no tenant, whatever the subscription's.
    tenant_id: null,
    data: {
      subscription_id: change.subscriptionId,
      tenant_id: change.tenantId,
      reason: change.reason,
      last_error: change.lastError,
      at: change.at.toISOString(),
    },
  };
}

/**
 * What a change does to the subscription's waiting deliveries: an opened
 * circuit parks them (no attempt spent), a closed one **release**s them as
 * far as its limits allow, a disabled subscription **cancel**s them with its reason.
 * Returns how many were released, so the caller can wake the workers.
 */
async function applyToWaiting(sql: Sql, change: HealthChange): Promise<number> {
  if (change.kind === "circuit_opened") {
    // Parked, but for the oldest (parked already or not), due at the probe (see claimDeliveries).
    await sql`
      WITH waiting AS (
        SELECT id, next_attempt_at FROM deliveries
        WHERE subscription_seq = ${change.seq} AND status IN ('pending', 'retrying')
      ), probe AS (
        SELECT min(id) AS id FROM waiting
      )
      UPDATE deliveries SET held_by = 'circuit', updated_at = now(),
        next_attempt_at = CASE WHEN id = (SELECT id FROM probe)
          THEN ${change.nextProbeAt}::timestamptz ELSE 'infinity' END
      WHERE id IN (SELECT id FROM waiting
        WHERE next_attempt_at < ${change.nextProbeAt} OR id = (SELECT id FROM probe))`;
    return 0;
  }
  if (change.kind === "circuit_closed") {
    const [row] = await sql<{ n: number }[]>`
      ${releaseHeld(sql, sql`SELECT ${change.seq}::bigint, NULL::int`)}`;
    return row?.n ?? 0;
  }
  await cancelWaiting(sql, sql`${change.seq}`, `Subscription disabled: ${change.reason}`);
  return 0;
}
