/**
 * A value read from the database and kept in memory, read again when it is
 * older than `maxAgeMs`, so a change made by any process is seen by every
 * other within that bound (managed API keys, the event-type catalog). No
 * timer runs: the call that finds the value too old reads it again, and
 * concurrent calls share that read.
 *
 * @module
 */

export interface FreshSnapshotOptions {
  /** A value is never used when its read started this long ago or longer. */
  maxAgeMs: number;
  /** Milliseconds since the epoch; default `Date.now`. */
  now?: () => number;
}

export class FreshSnapshot<T> {
  #load: () => Promise<T>;
  #maxAgeMs: number;
  #now: () => number;
  #value: T | undefined;
  /** When the read that gave the value started; null before the first. */
  #readAt: number | null = null;
  #reading: Promise<void> | null = null;

  constructor(load: () => Promise<T>, options: FreshSnapshotOptions) {
    this.#load = load;
    this.#maxAgeMs = options.maxAgeMs;
    this.#now = options.now ?? Date.now;
  }

  /** The value, from a read that started at most `maxAgeMs` ago. Throws when it cannot be read. */
  async get(): Promise<T> {
    // A read that started too long ago (a slow database) is not fresh enough either.
    while (this.#readAt === null || this.#now() - this.#readAt >= this.#maxAgeMs) {
      await this.read();
    }
    return this.#value!;
  }

  /** The value last read, however old; undefined before the first read. */
  peek(): T | undefined {
    return this.#value;
  }

  /** Reads the value now, or joins the read under way. */
  read(): Promise<void> {
    this.#reading ??= (async () => {
      const startedAt = this.#now();
      try {
        this.#value = await this.#load();
        this.#readAt = startedAt;
      } finally {
        this.#reading = null;
      }
    })();
    return this.#reading;
  }

  /** Settles when the read under way, if any, has (whether it failed or not). */
  settled(): Promise<void> {
    return (this.#reading ?? Promise.resolve()).catch(() => {});
  }

  /** Reads the value again after a change made here: a read under way may have started before it. */
  async refresh(): Promise<void> {
    await this.settled();
    await this.read();
  }
}
