import { isDataError } from "../db/errors.ts";
import { GroupCommit, QueueClosedError } from "../db/group_commit.ts";
import type { Sql } from "../db/pool.ts";
import {
  completeDeliveries,
  type Completion,
  type CompletionResult,
  type Lease,
} from "../db/queue.ts";
import type { Logger } from "../observability/log.ts";

/**
 * The completer: writes delivery outcomes back in batches (group commit).
 * A write that fails because of the connection is kept and retried with a
 * short backoff, never dropped; an outcome the database refuses as data is
 * written again without what the receiver sent, so one hostile answer never
 * holds up the others.
 */
export class Completer {
  #writer: GroupCommit<Completion, CompletionResult>;
  #log: Logger;
  #stripped = new WeakSet<Completion>();

  constructor(
    deps: { sql: Sql; log: Logger },
    options: { workerId: string; maxPending: number; maxBatch?: number },
  ) {
    this.#log = deps.log;
    this.#writer = new GroupCommit({
      write: (batch) => completeDeliveries(deps.sql, options.workerId, batch),
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

  #written(outcome: Completion, result: CompletionResult): void {
    const fields = {
      delivery_id: outcome.deliveryId,
      subscription_id: outcome.subscriptionId,
      attempt: outcome.attempt,
    };
    if (result.disabled) {
      this.#log.warn("Subscription disabled", { ...fields, reason: outcome.disable });
    }
    if (!result.applied) {
      this.#log.warn("Result arrived after the lease was lost: only the attempt was recorded", {
        ...fields,
        outcome: outcome.status,
      });
    }
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
