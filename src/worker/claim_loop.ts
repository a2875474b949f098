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
  claim(
    request: { limit: number; retryReserve: number },
  ): Promise<{ deliveries: ClaimedDelivery[]; scanned: number }>;
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
  /**
   * How long the answer of a claim that failed may still commit (the lease):
   * until then, what this worker holds but does not know of is handed back before each claim.
   */
  orphanWindowMs: number;
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

/** Retries' share of the slots when first attempts are due too. */
const RETRY_SHARE = 1 / 4;

/**
 * First attempts first, and retries never starve, at any claim size: the
 * retries' quarter is earned claim by claim and spent when they take it, so
 * a worker that claims one at a time still gives every fourth to a retry.
 */
class RetryShare {
  #credit = 0;

  /** Slots of a claim of `limit` that due retries take first. */
  reserve(limit: number): number {
    this.#credit = Math.min(this.#credit + limit * RETRY_SHARE, Math.ceil(limit * RETRY_SHARE));
    return Math.floor(this.#credit);
  }

  /** What a claim that reserved `reserved` took: retries beyond it came for lack of first attempts. */
  took(claimed: readonly ClaimedDelivery[], reserved: number): void {
    this.#credit -= Math.min(reserved, claimed.filter((d) => d.attempt > 1).length);
  }
}

/**
 * The producer: claims due deliveries while the worker has capacity and
 * starts each one. A claim that fails may have committed with its answer
 * lost, now or later (while its statement still runs), so until its lease
 * would have run out each round first hands back whatever this worker
 * holds but does not know of (orphans), uncounted.
 */
export function startClaimLoop(
  deps: { source: ClaimSource; log: Logger },
  options: ClaimLoopOptions,
): ClaimLoop {
  const wakeup = new Wakeup();
  const maxClaim = options.maxClaim ?? 100;
  const share = new RetryShare();
  let stopping = false;
  const leftovers: ClaimedDelivery[] = [];

  let orphans = false;
  let suspectUntil = 0;
  const suspect = () => orphans || performance.now() < suspectUntil;
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
      if (suspect()) await handBackOrphans();
      const free = options.capacity();
      if (free <= 0) {
        await wakeup.wait(options.pollIntervalMs);
        continue;
      }
      const limit = Math.min(free, maxClaim);
      const retryReserve = share.reserve(limit);
      let claimed: ClaimedDelivery[];
      let scanned: number;
      try {
        ({ deliveries: claimed, scanned } = await deps.source.claim({ limit, retryReserve }));
        failures = 0;
      } catch (err) {
        orphans = true;
        suspectUntil = performance.now() + options.orphanWindowMs;
        failures++;
        const delay = backoffMs(failures, backoff);
        deps.log.warn("Claiming deliveries failed; retrying", { error: err, retry_in_ms: delay });
        await wakeup.wait(delay);
        continue;
      }
      share.took(claimed, retryReserve);
      if (stopping) {
        leftovers.push(...claimed);
        break;
      }
      for (const d of claimed) options.start(d);
      if (scanned < limit) await wakeup.wait(options.pollIntervalMs);
    }
    if (suspect()) await handBackOrphans();
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
