import type { ClaimedDelivery, Lease } from "../engine/shapes.ts";
import { backoffMs } from "../backoff.ts";
import type { Logger } from "../observability/log.ts";
import { Wakeup } from "./wakeup.ts";

/** The queue's side of the claim loop; the worker binds it to the database. */
export interface ClaimSource {
  /**
   * **claim**: up to `limit` due deliveries, leased to this worker; `scanned`
   * counts those it looked at (some a limit holds back), so `limit` of them means more may be due.
   */
  claim(limit: number): Promise<{ deliveries: ClaimedDelivery[]; scanned: number }>;
  /** **hand back** every claim of this worker except `leases`. */
  handBackExcept(leases: Lease[]): Promise<number>;
}

export interface ClaimLoopOptions {
  /** How many more deliveries the worker can take now. */
  capacity(): number;
  /** Leases the worker holds: being sent, being written, waiting to be handed back. */
  leases(): Lease[];
  /** Starts sending a claimed delivery; must not throw. */
  start(delivery: ClaimedDelivery): void;
  /** Fallback poll when no wake-up comes (retries that come due, other processes' events). */
  pollIntervalMs: number;
  /** Deliveries per claim statement; default 100. */
  maxClaim?: number;
}

export interface ClaimLoop {
  /** Claim now: there is new work, or capacity came free. */
  wake(): void;
  /**
   * Stops claiming and resolves once the loop has ended, with the
   * deliveries claimed after the stop was asked for (never started: hand them back).
   */
  stop(): Promise<ClaimedDelivery[]>;
}

// Short, so a claim succeeds within a second once the database is back.
const backoff = { baseMs: 50, maxMs: 500 };

/**
 * The producer: claims due deliveries while the worker has capacity and
 * starts each one. A claim that fails may have committed with its answer
 * lost, so the next round first hands back whatever this worker holds but
 * does not know of (orphans), uncounted.
 */
export function startClaimLoop(
  deps: { source: ClaimSource; log: Logger },
  options: ClaimLoopOptions,
): ClaimLoop {
  const wakeup = new Wakeup();
  const maxClaim = options.maxClaim ?? 100;
  let stopping = false;
  const leftovers: ClaimedDelivery[] = [];

  let orphans = false;
  const handBackOrphans = async () => {
    try {
      const n = await deps.source.handBackExcept(options.leases());
      if (n > 0) deps.log.info("Handed back deliveries whose claim answer was lost", { count: n });
      orphans = false;
    } catch { /* still down: the claim below fails and backs off */ }
  };

  const loop = (async () => {
    let failures = 0;
    while (!stopping) {
      if (orphans) await handBackOrphans();
      const free = options.capacity();
      if (free <= 0) {
        await wakeup.wait(options.pollIntervalMs);
        continue;
      }
      const limit = Math.min(free, maxClaim);
      let claimed: ClaimedDelivery[];
      let scanned: number;
      try {
        ({ deliveries: claimed, scanned } = await deps.source.claim(limit));
        failures = 0;
      } catch (err) {
        orphans = true;
        failures++;
        const delay = backoffMs(failures, backoff);
        deps.log.warn("Claiming deliveries failed; retrying", { error: err, retry_in_ms: delay });
        await wakeup.wait(delay);
        continue;
      }
      if (stopping) {
        leftovers.push(...claimed);
        break;
      }
      for (const d of claimed) options.start(d);
      if (scanned < limit) await wakeup.wait(options.pollIntervalMs);
    }
    if (orphans) await handBackOrphans();
  })();

  return {
    wake: () => wakeup.notify(),
    async stop() {
      stopping = true;
      wakeup.notify();
      await loop;
      return leftovers;
    },
  };
}
