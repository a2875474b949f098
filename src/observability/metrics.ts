/**
 * Prometheus metrics of one service. Each service has a registry of its own,
 * so several services in one process (tests) never share counts.
 *
 * @module
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { QueueStats } from "../views/stats.ts";
import type { Logger } from "./log.ts";

export interface Metrics {
  readonly registry: Registry;
  /** A new event was stored (replays are not counted). */
  eventIngested(type: string): void;
  /** An HTTP attempt ended; `errorClass` null means the endpoint answered 2xx. */
  attemptFinished(result: { errorClass: string | null; durationMs: number }): void;
  /** A delivery reached its final state in this process. */
  deliveryFinished(outcome: "delivered" | "failed"): void;
}

export interface MetricsOptions {
  /** Deliveries this process is sending right now. */
  inFlight: () => number;
  /** Read at scrape time, at most once per `statsTtlMs`. */
  queueStats: () => Promise<QueueStats>;
  log: Logger;
  statsTtlMs?: number;
  /** Distinct `type` label values; later types are counted as "other". */
  maxTypeLabels?: number;
  /** When each subscription's client certificate expires, read at scrape time. */
  certificateExpiries?: () => Promise<{ subscription_id: string; not_after: Date }[]>;
}

const queueStatuses = ["pending", "retrying", "processing"] as const;

/** A fresh registry with every Dispatch metric; recording is a counter increment. */
export function createMetrics(options: MetricsOptions): Metrics {
  const registry = new Registry();
  const registers = [registry];
  const maxTypes = options.maxTypeLabels ?? 200;
  // A failed read leaves the gauges at their last values until the next read.
  const readStats = cachedFor(options.statsTtlMs ?? 5000, async () => {
    try {
      return await options.queueStats();
    } catch (err) {
      options.log.warn("Reading queue metrics failed", { error: err });
      return null;
    }
  });

  const ingested = new Counter({
    name: "dispatch_events_ingested_total",
    help: `Events stored, by type (the first ${maxTypes} types seen; the rest as "other")`,
    labelNames: ["type"] as const,
    registers,
  });
  const finished = new Counter({
    name: "dispatch_deliveries_finished_total",
    help: "Deliveries that reached a final state in this process, by outcome",
    labelNames: ["outcome"] as const,
    registers,
  });
  const attempts = new Counter({
    name: "dispatch_delivery_attempts_total",
    help: "HTTP delivery attempts made by this process, by result class",
    labelNames: ["result"] as const,
    registers,
  });
  const duration = new Histogram({
    name: "dispatch_delivery_attempt_duration_seconds",
    help: "Duration of HTTP delivery attempts, until the response or the failure",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers,
  });
  new Gauge({
    name: "dispatch_deliveries_in_flight",
    help: "Deliveries this process is sending right now",
    registers,
    collect() {
      this.set(options.inFlight());
    },
  });
  new Gauge({
    name: "dispatch_deliveries",
    help: "Deliveries waiting or in flight in the database, by status",
    labelNames: ["status"] as const,
    registers,
    async collect() {
      const s = await readStats();
      if (s) { for (const status of queueStatuses) this.set({ status }, s[status]); }
    },
  });
  // One gauge per figure of the queue statistics, read once per scrape.
  const figures: { name: string; help: string; figure: keyof QueueStats }[] = [{
    name: "dispatch_oldest_due_delivery_age_seconds",
    help: "How long the most overdue waiting delivery has been due (0 when none is)",
    figure: "oldestDueAgeSeconds",
  }, {
    name: "dispatch_circuits_open",
    help: "Subscriptions whose circuit breaker is open or half open (deliveries held)",
    figure: "openCircuits",
  }, {
    name: "dispatch_subscriptions_disabled",
    help: "Subscriptions that are disabled (by the API, after 410 Gone, or failing for too long)",
    figure: "disabledSubscriptions",
  }];
  for (const { name, help, figure } of figures) {
    new Gauge({
      name,
      help,
      registers,
      async collect() {
        const s = await readStats();
        if (s) this.set(s[figure]);
      },
    });
  }

  const { certificateExpiries } = options;
  if (certificateExpiries !== undefined) {
    new Gauge({
      name: "dispatch_client_certificate_expiry_seconds",
      help: "Seconds until a subscription's client certificate expires (negative once it has)",
      labelNames: ["subscription_id"] as const,
      registers,
      async collect() {
        try {
          const expiries = await certificateExpiries();
          // Removed certificates drop out: only the current ones are set.
          this.reset();
          for (const e of expiries) {
            this.set(
              { subscription_id: e.subscription_id },
              Math.round((e.not_after.getTime() - Date.now()) / 1000),
            );
          }
        } catch (err) {
          options.log.warn("Reading client certificate expiries failed", { error: err });
        }
      },
    });
  }

  const types = new Set<string>();
  return {
    registry,
    eventIngested(type) {
      if (!types.has(type) && types.size < maxTypes) types.add(type);
      ingested.inc({ type: types.has(type) ? type : "other" });
    },
    attemptFinished(result) {
      attempts.inc({ result: result.errorClass ?? "success" });
      duration.observe(result.durationMs / 1000);
    },
    deliveryFinished(outcome) {
      finished.inc({ outcome });
    },
  };
}

/**
 * `read`'s answer, shared by every caller while it runs and reused for
 * `ttlMs` after it settles: a scrape reads once, however many gauges ask.
 */
function cachedFor<T>(ttlMs: number, read: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | null = null;
  let running = false;
  let settledAt = 0;
  return () => {
    if (value === null || (!running && performance.now() - settledAt >= ttlMs)) {
      running = true;
      value = read().finally(() => {
        running = false;
        settledAt = performance.now();
      });
    }
    return value;
  };
}
