import type { Pause } from "../async.ts";
import type { Lease } from "../db/queue.ts";
import type { Logger } from "../observability/log.ts";
import { type Periodic, runEvery } from "./periodic.ts";

/**
 * Renews the leases a live worker holds, every `intervalMs`, so the rescuer
 * never takes a delivery from a holder that is still sending it or writing
 * its result. A renewal that fails (the database is away) is tried again at
 * the next interval; the lease is sized to outlast a few of them.
 */
export function startLeaseKeeper(
  deps: { renew: (leases: Lease[]) => Promise<number>; log: Logger },
  options: { intervalMs: number; held: () => Lease[]; pause?: Pause },
): Periodic {
  let first = true;
  return runEvery(options.intervalMs, async () => {
    // The claim itself set a full lease.
    if (first) return void (first = false);
    const held = options.held();
    if (held.length === 0) return;
    try {
      // Fewer may be renewed than asked: results written meanwhile end their claims.
      await deps.renew(held);
    } catch (err) {
      deps.log.warn("Renewing leases failed; will retry", { error: err });
    }
  }, options);
}
