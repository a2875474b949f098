import { settlesWithin } from "../async.ts";
import type { ClaimedDelivery, Lease } from "../engine/shapes.ts";
import type { Engine } from "../engine/engine.ts";
import type { HealthSettings } from "../engine/health.ts";
import type { Logger } from "../observability/log.ts";
import { startClaimLoop } from "./claim_loop.ts";
import { Completer } from "./completer.ts";
import { startLeaseKeeper } from "./lease_keeper.ts";
import { createSender, type Sender, type SenderOptions } from "./sender.ts";

export interface WorkerOptions extends SenderOptions {
  workerId: string;
  /** Deliveries in flight at once. */
  concurrency: number;
  maxAttempts: number;
  /** How long a claim stays this worker's without a renewal; renewed every quarter of it. */
  leaseMs: number;
  /** Fallback poll when no notification arrives (retries that come due, lost NOTIFYs). */
  pollIntervalMs: number;
  /**
   * Results waiting to be written at most; at the bound the worker stops
   * claiming until the database takes them. Default: 4 × concurrency, at least 1,000.
   */
  maxPendingResults?: number;
  health: HealthSettings;
}

/**
 * Held deliveries are parked until their subscription lets them go; but a
 * circuit that cannot probe yet because a claim of it is out keeps one
 * delivery due, looked at again after this long.
 */
const PROBE_RECHECK_MS = 5000;

/**
 * A subscription, or a tenant's subscriptions together, holds at most this
 * many of `concurrency` slots: the rest stay for the others, so endpoints
 * that hang cost only their own share (at least one slot).
 */
export function fairShare(concurrency: number): number {
  return Math.max(1, concurrency - Math.ceil(concurrency / 4));
}

export interface Worker {
  /** Claim now: there is new work. */
  wake(): void;
  readonly inFlight: number;
  /**
   * Stops claiming, lets in-flight deliveries finish within `drainMs`, then
   * aborts the rest (recorded as `aborted`: they may have arrived), writes
   * the results within `resultsMs`, and hands back what was never sent.
   */
  stop(options: { drainMs: number; resultsMs: number }): Promise<void>;
}

/**
 * A worker: the claim loop (producer) starts each claimed delivery on the
 * sender, results go to the completer, and the lease keeper renews what is
 * held. `sender` can be replaced in tests.
 */
export function startWorker(
  deps: { engine: Engine; log: Logger; sender?: Sender } & Parameters<typeof createSender>[0],
  options: WorkerOptions,
): Worker {
  const { engine, log, sender = createSender(deps, options) } = deps;
  const { workerId, leaseMs } = options;
  // Keyed by lease, not by delivery: a newer claim of the same delivery never replaces an older one.
  const inFlight = new Map<
    string,
    { lease: Lease; job: Promise<void>; seq: number | null; tenant: string | null }
  >();
  const cap = fairShare(options.concurrency);
  const unsent: Lease[] = [];
  const abort = new AbortController();
  // Room for a result of every delivery in flight, whatever the database does.
  const completer = new Completer({ engine, log }, {
    workerId,
    health: options.health,
    maxPending: options.maxPendingResults ?? Math.max(1000, 4 * options.concurrency),
  });
  // The leases this worker holds (not to be confused with `held_by`, what a limit holds back).
  const ownLeases = () => [...[...inFlight.values()].map((f) => f.lease), ...completer.leases()];

  const loop = startClaimLoop({
    log,
    source: {
      claim: ({ limit, retryReserve }) =>
        engine.claim({
          workerId,
          limit,
          retryReserve,
          fair: { cap, busy: [...inFlight.values()] },
          leaseMs,
          maxAttempts: options.maxAttempts,
          // A rate-limited delivery is claimed up to a poll ahead of its slot and sent at it.
          horizonMs: Math.min(options.pollIntervalMs, 1000),
          recheckMs: PROBE_RECHECK_MS,
        }),
      handBackExcept: (leases) => engine.handBack(workerId, { except: leases }),
    },
  }, {
    capacity: () => Math.min(options.concurrency - inFlight.size, completer.room - inFlight.size),
    leases: () => [...ownLeases(), ...unsent],
    start,
    pollIntervalMs: options.pollIntervalMs,
    orphanWindowMs: leaseMs,
  });
  const keeper = startLeaseKeeper({
    log,
    renew: (leases) => engine.renewLeases({ workerId, leases, leaseMs }),
  }, { intervalMs: Math.max(250, Math.floor(leaseMs / 4)), leases: ownLeases });

  function start(d: ClaimedDelivery) {
    const lease = { id: d.id, attempt: d.attempt };
    const key = `${d.id}:${d.attempt}`;
    const job = sender(d, abort.signal)
      .then((outcome) => outcome === null ? void unsent.push(lease) : completer.push(outcome))
      .catch((err) => {
        // A bug, not an endpoint failure: the lease stops being renewed and the rescuer takes it.
        log.error("Delivery crashed", { delivery_id: d.id, event_id: d.event_id, error: err });
      })
      .finally(() => {
        const held = holdsBack(d);
        inFlight.delete(key);
        if (held) loop.wake();
      });
    inFlight.set(key, { lease, job, seq: d.subscription_seq, tenant: d.tenant_id });
  }

  /**
   * Whether the claim loop may be waiting for what `d` holds: no capacity
   * left, or its subscription's or tenant's whole share. Otherwise its end
   * makes nothing claimable, and a claim for it would find nothing: at a low
   * rate that was a claim a delivery, and the next event waited for it.
   */
  function holdsBack(d: ClaimedDelivery): boolean {
    if (options.concurrency - inFlight.size <= 0 || completer.room - inFlight.size <= 0) {
      return true;
    }
    let seq = 0;
    let tenant = 0;
    for (const f of inFlight.values()) {
      if (d.subscription_seq !== null && f.seq === d.subscription_seq) seq++;
      if (d.tenant_id !== null && f.tenant === d.tenant_id) tenant++;
    }
    return seq >= cap || tenant >= cap;
  }

  return {
    wake: () => loop.wake(),
    get inFlight() {
      return inFlight.size;
    },
    async stop({ drainMs, resultsMs }) {
      const deadline = performance.now() + drainMs;
      const left = () => Math.max(0, deadline - performance.now());
      // A claim stuck on a database that does not answer is not waited for past the drain.
      const stopped = loop.stop().then((leftovers) => {
        unsent.push(...leftovers.map((d) => ({ id: d.id, attempt: d.attempt })));
      });
      if (!(await settlesWithin(stopped, left()))) {
        log.warn(
          "A claim did not return in time; what it claimed goes back when its lease expires",
        );
      }
      const jobs = () => Promise.allSettled([...inFlight.values()].map((f) => f.job));
      if (inFlight.size > 0) {
        log.info("Draining in-flight deliveries", { count: inFlight.size, drain_ms: drainMs });
        await settlesWithin(jobs(), left());
      }
      if (inFlight.size > 0) {
        log.warn("Aborting deliveries still in flight after the drain timeout", {
          count: inFlight.size,
        });
        abort.abort();
        await jobs();
      }
      await sender.close?.();
      // Results are worth a little more time; past that the rescuer takes over.
      if (!(await settlesWithin(completer.drain(), resultsMs))) {
        log.warn("Could not write some delivery results in time; their leases will expire", {
          count: completer.pending,
        });
        completer.close();
      }
      await keeper.stop();
      try {
        const n = await engine.handBack(workerId, { only: unsent });
        if (n > 0) log.info("Handed back unsent deliveries", { count: n });
      } catch (err) {
        log.warn("Handing back unsent deliveries failed; their leases will expire", {
          error: err,
        });
      }
    },
  };
}
