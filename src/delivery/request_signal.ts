/**
 * The abort signal of one outbound request: aborted when its timeout passes,
 * or when `stop` (shutdown) aborts.
 *
 * It is `AbortSignal.any([AbortSignal.timeout(ms), stop])` without that
 * pair's cost per request (a timer left to fire and build a `TimeoutError`
 * long after the answer came, a weak reference from the long-lived `stop`
 * to every request's signal): its timer and listener go at `dispose()`.
 *
 * @module
 */

export interface RequestSignal {
  readonly signal: AbortSignal;
  /** Whether the timeout, not `stop`, aborted it. */
  readonly timedOut: boolean;
  /** Once the request is over, answered or not. */
  dispose(): void;
}

export function requestSignal(timeoutMs: number, stop?: AbortSignal): RequestSignal {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new DOMException("Signal timed out.", "TimeoutError"));
  }, timeoutMs);
  const stopped = () => controller.abort(stop!.reason);
  if (stop?.aborted) stopped();
  else stop?.addEventListener("abort", stopped, { once: true });
  return {
    signal: controller.signal,
    get timedOut() {
      return timedOut;
    },
    dispose() {
      clearTimeout(timer);
      stop?.removeEventListener("abort", stopped);
    },
  };
}
