import { disableSubscriptions } from "../db/subscriptions.ts";
import { completeDeliveries, type Completion } from "../db/queue.ts";
import type { Sql } from "../db/pool.ts";
import type { Logger } from "../observability/log.ts";
import { Wakeup } from "./wakeup.ts";

export type Outcome = Completion & { disable: string | null };

/**
 * Writes outcomes back in batches: while one batch is being written, the
 * next accumulates (group commit), so a busy worker makes few round trips
 * and an idle one writes at once. A failed write is kept and retried.
 */
export class Completer {
  #queue: Outcome[] = [];
  #writing: Outcome[] = [];
  #running: Promise<void> | null = null;
  #backoff = new Wakeup();
  #closed = false;

  constructor(
    private readonly sql: Sql,
    private readonly workerId: string,
    private readonly log: Logger,
    private readonly maxBatch = 1000,
  ) {}

  push(outcome: Outcome): void {
    this.#queue.push(outcome);
    if (!this.#running && !this.#closed) this.#running = this.#run();
  }

  /** Resolves when everything pushed so far is written (or `close` gave up on it). */
  async drain(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /** Stops retrying failed writes; unwritten outcomes are left to the lease rescuer. */
  close(): void {
    this.#closed = true;
    this.#backoff.notify();
  }

  get pending(): number {
    return this.#queue.length + this.#writing.length;
  }

  /** Deliveries whose result is not written yet: still ours, not orphans. */
  heldIds(): number[] {
    return [...this.#writing, ...this.#queue].map((o) => o.deliveryId);
  }

  async #run(): Promise<void> {
    let failures = 0;
    // No await between the last emptiness check and clearing `#running`, so a
    // push that comes after the check always starts a new run.
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        const batch = this.#queue.splice(0, this.maxBatch);
        this.#writing = batch;
        try {
          await this.#write(batch);
          failures = 0;
        } catch (err) {
          this.#queue.unshift(...batch);
          failures++;
          const delay = Math.min(5000, 50 * 2 ** failures);
          this.log.warn("Writing delivery results failed; retrying", {
            error: err,
            pending: this.#queue.length,
            retry_in_ms: delay,
          });
          await this.#backoff.wait(delay);
        } finally {
          this.#writing = [];
        }
      }
    } finally {
      this.#running = null;
    }
  }

  async #write(batch: Outcome[]): Promise<void> {
    await completeDeliveries(this.sql, this.workerId, batch);
    const disable = batch.filter((o) => o.disable !== null)
      .map((o) => ({ id: o.subscriptionId, reason: o.disable! }));
    await disableSubscriptions(this.sql, disable);
    for (const d of disable) {
      this.log.warn("Subscription disabled", { subscription_id: d.id, reason: d.reason });
    }
  }
}
