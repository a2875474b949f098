/**
 * Group commit: items submitted one by one are written many per statement.
 * While one batch is being written the next one gathers, so under load many
 * callers share a round trip and a commit, and an idle system writes at once.
 * Ingest (events) and the completer (delivery results) both write through it.
 *
 * @module
 */
import { pause } from "../async.ts";
import { backoffMs } from "../backoff.ts";
import { isDataError } from "../db/errors.ts";

/** Options for {@linkcode GroupCommit}. */
export interface GroupCommitOptions<T, R> {
  /** Writes the items in one statement and answers one result per item, in order. */
  write: (items: T[]) => Promise<R[]>;
  /**
   * What a failure that is not the data's own (a lost connection, a
   * timeout) does to the batch: `"reject"` fails every submission in it at
   * once; `"retry"` keeps it at the head of the queue and writes it again
   * after a backoff, until it is written or {@linkcode GroupCommit.close} is called.
   */
  onFailure: "reject" | "retry";
  /** Items per statement, counted by `size`; default 500. */
  maxBatch?: number;
  /** How much one item counts against `maxBatch`; default 1. A larger item still goes alone. */
  size?: (item: T) => number;
  /** Items queued or being written at most; beyond it `submit` rejects. Default 10,000. */
  maxPending?: number;
  /** Called before each backoff of the `"retry"` policy. */
  onRetry?: (err: unknown, info: { pending: number; retryInMs: number }) => void;
}

/** `submit` was called with {@linkcode GroupCommitOptions.maxPending} items waiting. */
export class QueueFullError extends Error {
  override name = "QueueFullError";
}

/** `close` was called before the item was written. */
export class QueueClosedError extends Error {
  override name = "QueueClosedError";
}

interface Entry<T, R> {
  item: T;
  settled: boolean;
  resolve(result: R): void;
  reject(err: unknown): void;
}

// The retry backoff stays short: once the database is back, writing resumes within a second.
const backoff = { baseMs: 50, maxMs: 1000 };

/**
 * A write queue with one failure policy for everyone: an item the database
 * refuses as data (SQLSTATE class 22 or 23) is found by halving the batch
 * and fails alone; any other failure fails or retries the whole batch at
 * once (see {@linkcode GroupCommitOptions.onFailure}).
 */
export class GroupCommit<T, R> {
  readonly maxPending: number;
  #options: GroupCommitOptions<T, R>;
  #queue: Entry<T, R>[] = [];
  #writing: Entry<T, R>[] = [];
  #running: Promise<void> | null = null;
  #closing = new AbortController();

  constructor(options: GroupCommitOptions<T, R>) {
    this.#options = options;
    this.maxPending = options.maxPending ?? 10_000;
  }

  /** Queues `item`; resolves with its result once its batch is written. */
  submit(item: T): Promise<R> {
    if (this.#closing.signal.aborted) {
      return Promise.reject(new QueueClosedError("The writer is closed"));
    }
    if (this.pending >= this.maxPending) {
      return Promise.reject(
        new QueueFullError(`${this.pending} items are waiting to be written, the most allowed`),
      );
    }
    const { promise, resolve, reject } = Promise.withResolvers<R>();
    this.#queue.push({ item, settled: false, resolve, reject });
    this.#running ??= this.#run();
    return promise;
  }

  /** Items queued or being written. */
  get pending(): number {
    return this.#queue.length + this.#writing.filter((e) => !e.settled).length;
  }

  /** How many more items `submit` takes now. */
  get room(): number {
    return Math.max(0, this.maxPending - this.pending);
  }

  /** Every item not written yet, oldest first. */
  items(): T[] {
    return [...this.#writing.filter((e) => !e.settled), ...this.#queue].map((e) => e.item);
  }

  /** Resolves when everything submitted so far is written, failed, or given up by `close`. */
  async drain(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /** Stops writing: what is not written yet is rejected with a {@linkcode QueueClosedError}. */
  close(): void {
    this.#closing.abort();
    if (this.#running === null) this.#rejectQueued();
  }

  async #run(): Promise<void> {
    let failures = 0;
    try {
      // No await between the last emptiness check and clearing `#running`, so a
      // submit that comes after the check always starts a new run.
      while (this.#queue.length > 0 && !this.#closing.signal.aborted) {
        const batch = this.#queue.splice(0, this.#batchLength());
        this.#writing = batch;
        try {
          await this.#write(batch);
          failures = 0;
          this.#writing = [];
        } catch (err) {
          // Only the "retry" policy gets here: keep what is not written, in order.
          this.#writing = [];
          this.#queue.unshift(...batch.filter((e) => !e.settled));
          failures++;
          const retryInMs = backoffMs(failures, backoff);
          this.#options.onRetry?.(err, { pending: this.pending, retryInMs });
          await pause(retryInMs, this.#closing.signal);
        }
      }
    } finally {
      if (this.#closing.signal.aborted) this.#rejectQueued();
      this.#running = null;
    }
  }

  /** How many queued items the next batch takes: at least one, and no more than `maxBatch` holds. */
  #batchLength(): number {
    const max = this.#options.maxBatch ?? 500;
    const size = this.#options.size ?? (() => 1);
    let total = 0;
    let n = 0;
    for (const entry of this.#queue) {
      total += size(entry.item);
      if (n > 0 && total > max) break;
      n++;
    }
    return n;
  }

  /** Writes `batch`; throws only a failure the "retry" policy keeps the batch for. */
  async #write(batch: Entry<T, R>[]): Promise<void> {
    let results: R[];
    try {
      results = await this.#options.write(batch.map((e) => e.item));
    } catch (err) {
      if (isDataError(err)) {
        if (batch.length === 1) return settle(batch[0]!, { err });
        const half = Math.ceil(batch.length / 2);
        await this.#write(batch.slice(0, half));
        await this.#write(batch.slice(half));
        return;
      }
      if (this.#options.onFailure === "retry") throw err;
      for (const e of batch) settle(e, { err });
      return;
    }
    batch.forEach((e, i) => settle(e, { result: results[i]! }));
  }

  #rejectQueued(): void {
    const error = new QueueClosedError("The writer closed before this item was written");
    for (const e of this.#queue.splice(0)) settle(e, { err: error });
  }
}

function settle<T, R>(entry: Entry<T, R>, outcome: { result: R } | { err: unknown }): void {
  entry.settled = true;
  if ("err" in outcome) entry.reject(outcome.err);
  else entry.resolve(outcome.result);
}
