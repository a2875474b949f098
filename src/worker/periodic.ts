import { type Pause, pause as realPause } from "../async.ts";

export interface Periodic {
  /** Interrupts any pause, waits for the running pass to finish, and runs no more. */
  stop(): Promise<void>;
}

/**
 * Runs `task` now and then every `intervalMs` until stopped. The task
 * handles its own errors and should check `signal` between steps of a long pass.
 * `pause` waits out each interval; a test passes its own to run passes on demand.
 */
export function runEvery(
  intervalMs: number,
  task: (signal: AbortSignal) => Promise<void>,
  options: { pause?: Pause } = {},
): Periodic {
  const { pause = realPause } = options;
  const stopping = new AbortController();
  const loop = (async () => {
    while (!stopping.signal.aborted) {
      await task(stopping.signal);
      await pause(intervalMs, stopping.signal);
    }
  })();
  return {
    async stop() {
      stopping.abort();
      await loop;
    },
  };
}
