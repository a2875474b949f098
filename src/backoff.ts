/**
 * The one backoff formula: how long to wait before the next try, after
 * some failures. Every retry loop asks it (delivery retries, the writers,
 * the claim loop, reconnection, waiting for the database at start-up).
 *
 * @module
 */

export interface BackoffOptions {
  /** The delay after the first failure. */
  baseMs: number;
  /** No delay is longer. */
  maxMs: number;
  /** How the delay grows with each failure: doubling (default) or by `baseMs` each time. */
  growth?: "exponential" | "linear";
  /**
   * What is taken of the delay: all of it (default), a random part below it
   * (`full`: spreads out callers that failed together), or between half
   * and all of it (`half`).
   */
  jitter?: "none" | "full" | "half";
  /** Source of randomness in [0, 1); defaults to `Math.random`. */
  random?: () => number;
}

// 2 ** 1024 is Infinity, and 0 * Infinity is NaN, so the exponent stops here.
const MAX_EXPONENT = 1023;

/** The delay before the next try after `failures` failures in a row (1 or more). */
export function backoffMs(failures: number, options: BackoffOptions): number {
  const { baseMs, maxMs, growth = "exponential", jitter = "none", random = Math.random } = options;
  const n = Math.max(1, failures);
  const grown = growth === "linear" ? baseMs * n : baseMs * 2 ** Math.min(n - 1, MAX_EXPONENT);
  const cap = Math.min(maxMs, grown);
  if (jitter === "full") return Math.floor(random() * cap);
  if (jitter === "half") return cap * (0.5 + random() / 2);
  return cap;
}
