import { rescueExpired } from "../db/queue.ts";
import type { Sql } from "../db/pool.ts";
import type { Logger } from "../observability/log.ts";
import { Wakeup } from "./wakeup.ts";

export interface Rescuer {
  stop(): Promise<void>;
}

/** Periodically returns deliveries whose worker died (lease expired) to the queue. */
export function startRescuer(
  deps: { sql: Sql; log: Logger; channel: string },
  options: { intervalMs: number; maxAttempts: number },
): Rescuer {
  const tick = new Wakeup();
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        let n: number;
        do {
          n = await rescueExpired(deps.sql, {
            maxAttempts: options.maxAttempts,
            limit: 500,
            channel: deps.channel,
          });
          if (n > 0) deps.log.warn("Rescued deliveries with an expired lease", { count: n });
        } while (n === 500 && !stopped);
      } catch (err) {
        deps.log.warn("Rescuing expired leases failed; will retry", { error: err });
      }
      await tick.wait(options.intervalMs);
    }
  })();
  return {
    async stop() {
      stopped = true;
      tick.notify();
      await loop;
    },
  };
}
