import type { Engine } from "../engine/engine.ts";
import type { Logger } from "../observability/log.ts";
import { type Periodic, runEvery } from "./periodic.ts";

export type Rescuer = Periodic;

const batch = 500;

/** Periodically returns deliveries whose worker died (lease expired) to the queue. */
export function startRescuer(
  deps: { engine: Engine; log: Logger },
  options: { intervalMs: number; maxAttempts: number },
): Rescuer {
  return runEvery(options.intervalMs, async (signal) => {
    try {
      let n: number;
      do {
        n = await deps.engine.rescue({ maxAttempts: options.maxAttempts, limit: batch });
        if (n > 0) deps.log.warn("Rescued deliveries with an expired lease", { count: n });
      } while (n === batch && !signal.aborted);
    } catch (err) {
      deps.log.warn("Rescuing expired leases failed; will retry", { error: err });
    }
  });
}
