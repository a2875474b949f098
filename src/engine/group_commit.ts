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
import { isDataError, isTimeoutError } from "../db/errors.ts";

/** Options for {@linkcode GroupCommit}. */
export interface GroupCommitOptions<T, R> {
  /**
   * Writes the items in one statement and answers one result per item, in
   * order. `deadline` (a `Date.now()` time) is the earliest of the batch's
   * submissions: a write that cannot commit by then must fail without
   * committing (the database aborts it, with a timeout error).
   */
  write: (items: T[], deadline: number | undefined) => Promise<R[]>;
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
  /**
   * Bytes per statement, as {@linkcode GroupCommitOptions.sizeOf} counts
   * them; default: no bound. An item larger than this is written alone.
   */
  maxBatchBytes?: number;
  /** An item's size in bytes, for {@linkcode GroupCommitOptions.maxBatchBytes}. */
  sizeOf?: (item: T) => number;
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

/** Options for {@linkcode GroupCommit.submit}. */
export interface SubmitOptions {
  /**
   * Withdraws the item when it aborts (its request was answered): one still
   * queued is rejected with the signal's reason at once and never written.
   * One being written settles with what its write did, by `deadline`.
   */
  signal?: AbortSignal;
  /**
   * The `Date.now()` time by which the item is written or not at all: its
   * batch's write gets the earliest deadline of its items, and when that
   * write times out, the items past their deadline fail and the rest are
   * written again.
   */
  deadline?: number;
}

interface Entry<T, R> {
  item: T;
  settled: boolean;
  resolve(result: R): void;
  reject(err: unknown): void;
  signal?: AbortSignal | undefined;
  deadline?: number | undefined;
  withdraw?: (() => void) | undefined;
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
  submit(item: T, options: SubmitOptions = {}): Promise<R> {
    if (this.#closing.signal.aborted) {
      return Promise.reject(new QueueClosedError("The writer is closed"));
    }
    if (this.pending >= this.maxPending) {
      return Promise.reject(
        new QueueFullError(`${this.pending} items are waiting to be written, the most allowed`),
      );
    }
    const { signal, deadline } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const { promise, resolve, reject } = Promise.withResolvers<R>();
    const entry: Entry<T, R> = { item, settled: false, resolve, reject, signal, deadline };
    if (signal) {
      entry.withdraw = () => this.#withdraw(entry);
      signal.addEventListener("abort", entry.withdraw, { once: true });
    }
    this.#queue.push(entry);
    this.#running ??= this.#run();
    return promise;
  }

  #withdraw(entry: Entry<T, R>): void {
    const at = this.#queue.indexOf(entry);
    if (at >= 0) {
      this.#queue.splice(at, 1);
      settle(entry, { err: entry.signal!.reason });
    }
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
          this.#writing = [];
          const unwritten = batch.filter((e) => !e.settled);
          if (timedOut(err, unwritten)) {
            // Those past their deadline fail alone, the rest is written next.
            const [late, kept] = partition(unwritten, pastDeadline);
            for (const e of late) settle(e, { err: e.signal?.aborted ? e.signal.reason : err });
            this.#queue.unshift(...kept);
            continue;
          }
          // Only the "retry" policy gets here: keep what is not written, in order.
          this.#queue.unshift(...unwritten);
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

  /**
   * How many queued items the next batch takes: at least one, and no more
   * than `maxBatch` (counted by `size`) and `maxBatchBytes` hold.
   */
  #batchLength(): number {
    const { maxBatch = 500, maxBatchBytes = Infinity, size = () => 1, sizeOf } = this.#options;
    let total = 0;
    let bytes = 0;
    let n = 0;
    for (const entry of this.#queue) {
      total += size(entry.item);
      bytes += sizeOf?.(entry.item) ?? 0;
      if (n > 0 && (total > maxBatch || bytes > maxBatchBytes)) break;
      n++;
    }
    return n;
  }

  /**
   * Writes `batch`; throws only a failure the "retry" policy keeps the batch
   * for, or a timeout once an item of the batch is past its deadline.
   */
  async #write(batch: Entry<T, R>[]): Promise<void> {
    const deadlines = batch.flatMap((e) => e.deadline ?? []);
    const deadline = deadlines.length > 0 ? Math.min(...deadlines) : undefined;
    let results: R[];
    try {
      results = await this.#options.write(batch.map((e) => e.item), deadline);
    } catch (err) {
      if (timedOut(err, batch)) throw err;
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
  if (entry.withdraw) entry.signal!.removeEventListener("abort", entry.withdraw);
  if ("err" in outcome) entry.reject(outcome.err);
  else entry.resolve(outcome.result);
}

function pastDeadline<T, R>(entry: Entry<T, R>): boolean {
  return entry.deadline !== undefined && entry.deadline <= Date.now();
}

/** The write was aborted because an item of the batch could not be written by its deadline. */
function timedOut<T, R>(err: unknown, batch: Entry<T, R>[]): boolean {
  return isTimeoutError(err) && batch.some(pastDeadline);
}

function partition<T>(items: T[], test: (item: T) => boolean): [T[], T[]] {
  return [items.filter(test), items.filter((i) => !test(i))];
}
