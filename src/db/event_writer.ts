import { type BatchOutcome, insertEvents, type NewEvent } from "./events.ts";
import type { Sql } from "./pool.ts";

interface Pending {
  event: NewEvent;
  resolve: (outcome: BatchOutcome) => void;
  reject: (err: unknown) => void;
}

/**
 * Combines concurrent single-event inserts into one statement: while a
 * batch is being written the next one gathers, so under load many requests
 * share a round trip and a commit, and an idle system writes at once.
 */
export class EventWriter {
  #pending: Pending[] = [];
  #writing = false;

  constructor(
    private readonly sql: Sql,
    private readonly options: { channel: string; maxBatch?: number },
  ) {}

  insert(event: NewEvent): Promise<BatchOutcome> {
    const { promise, resolve, reject } = Promise.withResolvers<BatchOutcome>();
    this.#pending.push({ event, resolve, reject });
    if (!this.#writing) this.#write();
    return promise;
  }

  async #write(): Promise<void> {
    this.#writing = true;
    while (this.#pending.length > 0) {
      const batch = this.#pending.splice(0, this.options.maxBatch ?? 500);
      await this.#insert(batch);
    }
    this.#writing = false;
  }

  async #insert(batch: Pending[]): Promise<void> {
    try {
      const outcomes = await insertEvents(this.sql, batch.map((p) => p.event), this.options);
      batch.forEach((p, i) => p.resolve(outcomes[i]!));
    } catch (err) {
      if (batch.length === 1) return batch[0]!.reject(err);
      // One bad event must not fail the others: write them one by one.
      for (const p of batch) await this.#insert([p]);
    }
  }
}
