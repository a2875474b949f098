/**
 * A timer the test drives: code given its `pause` waits until the test calls
 * `elapse()`, so a test of something that waits for a timer never sleeps.
 *
 * @module
 */
import type { Pause } from "../../src/async.ts";

export class ManualTimer {
  #waiting: { ms: number; done: () => void }[] = [];
  #onWait: (() => void)[] = [];
  /** Every wait asked for, in ms, in order. */
  readonly asked: number[] = [];

  /** The {@linkcode Pause} to inject: resolves on `elapse()`, or at once when `signal` aborts. */
  pause: Pause = (ms, signal) =>
    new Promise<void>((resolve) => {
      this.asked.push(ms);
      if (signal?.aborted) return resolve();
      const entry = {
        ms,
        done: () => {
          signal?.removeEventListener("abort", entry.done);
          this.#waiting = this.#waiting.filter((w) => w !== entry);
          resolve();
        },
      };
      signal?.addEventListener("abort", entry.done, { once: true });
      this.#waiting.push(entry);
      for (const wake of this.#onWait.splice(0)) wake();
    });

  /** How many are waiting now. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Resolves once someone waits (at once if someone does already); rejects after `timeoutMs`. */
  async waited(timeoutMs = 10_000): Promise<void> {
    if (this.#waiting.length > 0) return;
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const timer = setTimeout(() => reject(new Error("Nobody waited on the timer")), timeoutMs);
    this.#onWait.push(resolve);
    try {
      await promise;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ends every wait under way, as if its time had passed; answers how many. */
  elapse(): number {
    const ended = this.#waiting.splice(0);
    for (const w of ended) w.done();
    return ended.length;
  }
}
