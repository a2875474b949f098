import { isDataError } from "../db/errors.ts";
import { GroupCommit, QueueClosedError } from "../db/group_commit.ts";
import type { Sql } from "../db/pool.ts";
import { completeDeliveries, type Completion, type Lease } from "../db/queue.ts";
import {
  announce,
  emptyReport,
  type HealthChange,
  type HealthReport,
  type HealthSettings,
  lockSubscriptions,
  recordHealth,
} from "../db/subscription_health.ts";
import type { Logger } from "../observability/log.ts";

/**
 * The completer: writes delivery outcomes back in batches (group commit).
 * A write that fails because of the connection is kept and retried with a
 * short backoff, never dropped; an outcome the database refuses as data is
 * written again without what the receiver sent, so one hostile answer never
 * holds up the others.
 *
 * A batch of successes is one statement when their subscriptions have no
 * health to change, as the rows say when it is written. Anything else also
 * changes subscriptions' health (the circuit breaker, disabling) and
 * announces each change, in one transaction that first locks the batch's
 * subscriptions in order.
 */
export class Completer {
  #writer: GroupCommit<Completion, boolean>;
  #log: Logger;
  #stripped = new WeakSet<Completion>();

  constructor(
    deps: { sql: Sql; log: Logger },
    options: {
      workerId: string;
      channel: string;
      health: HealthSettings;
      maxPending: number;
      maxBatch?: number;
    },
  ) {
    this.#log = deps.log;
    const { workerId, channel, health } = options;
    this.#writer = new GroupCommit({
      write: async (batch) => {
        if (!batch.some(bearsOnHealth)) {
          const applied = await completeDeliveries(deps.sql, workerId, batch, {
            channel,
            unlessUnsettled: successes(batch),
          });
          if (applied !== null) return applied;
        }
        const { applied, changes } = await deps.sql.begin(async (tx) => {
          const sql = tx as unknown as Sql;
          await lockSubscriptions(sql, batch.map((c) => c.subscriptionSeq));
          const applied = (await completeDeliveries(sql, workerId, batch, { channel }))!;
          const changes = await recordHealth(sql, healthReports(batch), health);
          await announce(sql, changes, { channel });
          return { applied, changes };
        });
        for (const change of changes) this.#changed(change);
        return applied;
      },
      onFailure: "retry",
      maxBatch: options.maxBatch ?? 1000,
      maxPending: options.maxPending,
      onRetry: (err, info) =>
        deps.log.warn("Writing delivery results failed; retrying", {
          error: err,
          pending: info.pending,
          retry_in_ms: info.retryInMs,
        }),
    });
  }

  /** Queues an outcome; the worker keeps `room` free for every delivery it has in flight. */
  push(outcome: Completion): void {
    this.#writer.submit(outcome).then(
      (result) => this.#written(outcome, result),
      (err) => this.#refused(outcome, err),
    );
  }

  /** Claims whose result is not written yet: still this worker's, not orphans. */
  leases(): Lease[] {
    return this.#writer.items().map((o) => ({ id: o.deliveryId, attempt: o.attempt }));
  }

  /** Outcomes waiting to be written. */
  get pending(): number {
    return this.#writer.pending;
  }

  /** How many more outcomes fit before the bound. */
  get room(): number {
    return this.#writer.room;
  }

  /** Resolves when everything pushed so far is written (or `close` gave up on it). */
  drain(): Promise<void> {
    return this.#writer.drain();
  }

  /** Stops retrying: unwritten outcomes are left to the lease rescuer. */
  close(): void {
    this.#writer.close();
  }

  #written(outcome: Completion, applied: boolean): void {
    if (!applied) {
      this.#log.warn("Result arrived after the lease was lost: only the attempt was recorded", {
        delivery_id: outcome.deliveryId,
        subscription_id: outcome.subscriptionId,
        attempt: outcome.attempt,
        outcome: outcome.status,
      });
    }
  }

  #changed(change: HealthChange): void {
    const messages = {
      circuit_opened: "Circuit opened",
      circuit_closed: "Circuit closed",
      disabled: "Subscription disabled",
    };
    this.#log.warn(messages[change.kind], {
      subscription_id: change.subscriptionId,
      reason: change.reason,
      last_error: change.lastError,
      next_probe_at: change.nextProbeAt?.toISOString() ?? null,
    });
  }

  #refused(outcome: Completion, err: unknown): void {
    if (err instanceof QueueClosedError) return;
    if (!isDataError(err) || outcome.record === null || this.#stripped.has(outcome)) {
      this.#log.error("Could not write a delivery result; its lease will expire", {
        delivery_id: outcome.deliveryId,
        error: err,
      });
      return;
    }
    // What the receiver sent is the only data Dispatch did not check itself.
    const error = `The database refused this attempt's response: ${(err as Error).message}`;
    this.#log.warn("The database refused a delivery result; writing it without the response", {
      delivery_id: outcome.deliveryId,
      error: err,
    });
    const stripped: Completion = {
      ...outcome,
      lastError: outcome.lastError === null ? null : error,
      record: { ...outcome.record, error, responseBody: null, responseHeaders: {} },
    };
    this.#stripped.add(stripped);
    this.push(stripped);
  }
}

/**
 * Whether an outcome surely changes its subscription's health: anything but a
 * success claimed while the subscription had nothing to reset. Such a success
 * most likely still has nothing to reset: the write checks.
 */
function bearsOnHealth(c: Completion): boolean {
  return c.verdict !== null && !(c.verdict === "success" && c.healthy);
}

/** The subscriptions of the batch's successes. */
function successes(batch: readonly Completion[]): number[] {
  return batch.flatMap((c) =>
    c.verdict === "success" && c.subscriptionSeq !== null ? [c.subscriptionSeq] : []
  );
}

/** One report per subscription, from the batch's attempts in the order they were made. */
export function healthReports(batch: readonly Completion[]): HealthReport[] {
  const bySeq = new Map<number, HealthReport>();
  for (const c of batch) {
    if (c.verdict === null || c.subscriptionSeq === null) continue;
    const r = bySeq.get(c.subscriptionSeq) ?? emptyReport(c.subscriptionSeq);
    if (c.verdict === "success") {
      r.success = true;
      r.failuresSinceSuccess = 0;
      r.failedSinceSuccess = false;
    } else {
      r.failedSinceSuccess = true;
      r.lastError = c.lastError;
    }
    if (c.verdict === "success" || c.verdict === "answer") r.answered = true;
    if (c.verdict === "failure") {
      r.failures++;
      r.failuresSinceSuccess++;
    }
    if (c.verdict === "gone") r.gone = true;
    bySeq.set(c.subscriptionSeq, r);
  }
  return [...bySeq.values()];
}
