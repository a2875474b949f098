/**
 * How long to wait before retrying a failed delivery attempt.
 *
 * @module
 */
import { backoffMs } from "../backoff.ts";

/** Options for {@linkcode retryDelayMs}. */
export interface RetryDelayOptions {
  /** Backoff cap for the first retry; it doubles with every further attempt. */
  baseMs: number;
  /** Upper bound for any delay, including one asked for by Retry-After. */
  maxMs: number;
  /** What the endpoint asked for in its Retry-After header, if anything. */
  retryAfterMs?: number | null;
  /** Source of randomness in [0, 1); defaults to `Math.random`. */
  random?: () => number;
}

/**
 * Exponential backoff with full jitter: a random delay below
 * `min(maxMs, baseMs * 2 ** (attempt - 1))`. Full jitter spreads out endpoints that failed
 * together, so they do not come back all at once.
 *
 * @param attempt The 1-based number of the attempt that just failed.
 */
export function retryDelayMs(attempt: number, options: RetryDelayOptions): number {
  if (!Number.isSafeInteger(attempt) || attempt < 1) {
    throw new RangeError(`Expected attempt to be a positive integer, got ${attempt}`);
  }
  const { baseMs, maxMs, retryAfterMs = null, random = Math.random } = options;
  for (const [name, value] of [["baseMs", baseMs], ["maxMs", maxMs]] as const) {
    if (!Number.isFinite(value) || value < 0) {
      throw new RangeError(`Expected ${name} to be a finite number >= 0, got ${value}`);
    }
  }
  const jittered = backoffMs(attempt, { baseMs, maxMs, jitter: "full", random });
  if (retryAfterMs === null) return jittered;
  return Math.min(maxMs, Math.max(retryAfterMs, jittered));
}
