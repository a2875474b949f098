import type { MiddlewareHandler } from "hono";

/** A request's deadline, as a handler sees it. */
export interface Deadline {
  /** Aborts, with the deadline's error as its reason, when the deadline passes. */
  readonly signal: AbortSignal;
  /** When it passes, as a `Date.now()` time: work the database does can be bounded by it. */
  readonly at: number;
  /**
   * Runs `work`, which follows `signal` itself, to its end: a deadline that
   * passes meanwhile waits for it (for as long again at most), so the request
   * answers what `work` did: a write that was stored is not answered with 503.
   * Once `work` ends the handler answers without a deadline.
   */
  hold<T>(work: Promise<T>): Promise<T>;
}

declare module "hono" {
  interface ContextVariableMap {
    /** Unset on routes that have no deadline. */
    deadline: Deadline | undefined;
  }
}

/**
 * A request that waits longer than `ms` (for an unreachable database, say)
 * is answered with `error()` instead of hanging; what it started may still
 * complete unless it follows {@linkcode Deadline.signal}. Work a handler
 * holds gets as long again to end: a database that answers nothing (its
 * own timeout cannot reach us) still gets the request answered, its outcome
 * unknown.
 */
export function deadline(options: { ms: number; error: () => Error }): MiddlewareHandler {
  return async (c, next) => {
    const controller = new AbortController();
    const at = Date.now() + options.ms;
    const expired = Promise.withResolvers<never>();
    const expire = () => expired.reject(controller.signal.reason);
    let holding = false;
    let timer = setTimeout(() => {
      controller.abort(options.error());
      if (holding) timer = setTimeout(expire, options.ms);
      else expire();
    }, options.ms);
    c.set("deadline", {
      signal: controller.signal,
      at,
      async hold(work) {
        holding = true;
        try {
          return await work;
        } finally {
          holding = false;
          if (controller.signal.aborted) clearTimeout(timer);
        }
      },
    });
    try {
      await Promise.race([next(), expired.promise]);
    } finally {
      clearTimeout(timer);
    }
  };
}
