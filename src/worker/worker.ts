import { claimDeliveries, type ClaimedDelivery, releaseDeliveries } from "../db/queue.ts";
import type { Sql } from "../db/pool.ts";
import { decideOutcome, type RetrySettings, skippedOutcome } from "../delivery/outcome.ts";
import { send } from "../delivery/send.ts";
import { buildRequest } from "../delivery/webhook_request.ts";
import type { Logger } from "../observability/log.ts";
import type { Metrics } from "../observability/metrics.ts";
import { traceDelivery } from "../observability/tracing.ts";
import type { SecretCipher } from "../security/secret_cipher.ts";
import { type Resolver, targetCheck, type TargetPolicy } from "../security/ssrf.ts";
import { Completer, type Outcome } from "./completer.ts";
import { settlesWithin } from "./deadline.ts";
import { Wakeup } from "./wakeup.ts";

export interface WorkerOptions extends RetrySettings, TargetPolicy {
  workerId: string;
  /** Deliveries in flight at once. */
  concurrency: number;
  deliveryTimeoutMs: number;
  /** How long a claim stays ours; must outlast the delivery timeout. */
  leaseMs: number;
  /** Fallback poll when no notification arrives (retries that come due, lost NOTIFYs). */
  pollIntervalMs: number;
}

export interface Worker {
  /** Claim now: there is new work. */
  wake(): void;
  readonly inFlight: number;
  /**
   * Stops claiming, lets in-flight deliveries finish within `drainMs`, then
   * aborts the rest and hands them back to the queue.
   */
  stop(options: { drainMs: number }): Promise<void>;
}

const maxClaim = 100;
const resultsGraceMs = 5000;

/** The producer: claims due deliveries up to `concurrency` and sends each one. */
export function startWorker(
  deps: { sql: Sql; log: Logger; metrics: Metrics; secrets: SecretCipher; resolve: Resolver },
  options: WorkerOptions,
): Worker {
  const { sql, log, metrics } = deps;
  const checkTarget = targetCheck(options, deps.resolve);
  const inFlight = new Map<number, Promise<void>>();
  const handBack: number[] = [];
  const wakeup = new Wakeup();
  const abort = new AbortController();
  const completer = new Completer(sql, options.workerId, log);
  let stopping = false;

  async function deliver(d: ClaimedDelivery): Promise<Outcome | null> {
    if (d.url === null || d.active === false) return skippedOutcome(d);
    const secrets = await Promise.all(d.secrets.map(deps.secrets.open));
    const request = await buildRequest({ ...d, url: d.url, secrets });
    const result = await traceDelivery(d, () =>
      send(request, {
        timeoutMs: options.deliveryTimeoutMs,
        signal: abort.signal,
        checkTarget,
      }));
    if (result.errorClass === "aborted") return null;
    const outcome = decideOutcome(d, result, options);
    metrics.attemptFinished(result);
    log.info("Delivery attempt", {
      delivery_id: d.id,
      event_id: d.event_id,
      subscription_id: d.subscription_id,
      attempt: d.attempt,
      outcome: outcome.status,
      status_code: result.statusCode,
      error_class: result.errorClass,
      duration_ms: result.durationMs,
      error: result.error,
      retry_in_ms: outcome.status === "retrying" ? outcome.retryInMs : null,
    });
    return outcome;
  }

  function start(d: ClaimedDelivery) {
    const job = deliver(d)
      .then((outcome) => {
        if (outcome === null) return void handBack.push(d.id);
        if (outcome.status !== "retrying") metrics.deliveryFinished(outcome.status);
        completer.push(outcome);
      })
      .catch((err) => {
        // Unexpected (a bug, not an endpoint failure): leave it to the lease rescuer.
        log.error("Delivery crashed", { event_id: d.event_id, error: err });
      })
      .finally(() => {
        inFlight.delete(d.id);
        wakeup.notify();
      });
    inFlight.set(d.id, job);
  }

  const loop = (async () => {
    let failures = 0;
    let orphans = false;
    while (!stopping) {
      if (orphans) {
        try {
          const held = [...inFlight.keys(), ...completer.heldIds(), ...handBack];
          const n = await releaseDeliveries(sql, options.workerId, { except: held });
          if (n > 0) log.info("Handed back deliveries whose claim answer was lost", { count: n });
          orphans = false;
        } catch { /* still down: the claim below fails and backs off */ }
      }
      const free = options.concurrency - inFlight.size;
      if (free <= 0) {
        await wakeup.wait(options.pollIntervalMs);
        continue;
      }
      const limit = Math.min(free, maxClaim);
      let claimed: ClaimedDelivery[];
      try {
        claimed = await claimDeliveries(sql, {
          workerId: options.workerId,
          limit,
          leaseMs: options.leaseMs,
        });
        failures = 0;
      } catch (err) {
        // The claim may have committed even though its answer was lost.
        orphans = true;
        failures++;
        const delay = Math.min(5000, 50 * 2 ** failures);
        log.warn("Claiming deliveries failed; retrying", { error: err, retry_in_ms: delay });
        await wakeup.wait(delay);
        continue;
      }
      if (stopping) {
        handBack.push(...claimed.map((d) => d.id));
        break;
      }
      for (const d of claimed) start(d);
      if (claimed.length < limit) await wakeup.wait(options.pollIntervalMs);
    }
  })();

  return {
    wake: () => wakeup.notify(),
    get inFlight() {
      return inFlight.size;
    },
    async stop({ drainMs }) {
      stopping = true;
      wakeup.notify();
      await loop;
      if (inFlight.size > 0) {
        log.info("Draining in-flight deliveries", { count: inFlight.size, drain_ms: drainMs });
        await settlesWithin(Promise.allSettled([...inFlight.values()]), drainMs);
      }
      if (inFlight.size > 0) {
        log.warn("Aborting deliveries still in flight after the drain timeout", {
          count: inFlight.size,
        });
        abort.abort();
        await Promise.allSettled([...inFlight.values()]);
      }
      // Results are worth a few more seconds; past that the rescuer takes over.
      if (!(await settlesWithin(completer.drain(), resultsGraceMs))) {
        log.warn("Could not write some delivery results in time; their leases will expire", {
          count: completer.pending,
        });
        completer.close();
        await completer.drain();
      }
      try {
        const n = await releaseDeliveries(sql, options.workerId, { only: handBack });
        if (n > 0) log.info("Handed back unsent deliveries", { count: n });
      } catch (err) {
        log.warn("Handing back unsent deliveries failed; their leases will expire", {
          error: err,
        });
      }
    },
  };
}
