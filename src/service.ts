import { settlesWithin } from "./async.ts";
import { type Config, ConfigError } from "./config.ts";
import { migrate } from "./db/migrate.ts";
import { type Database, openDatabase } from "./db/open.ts";
import type { Sql } from "./db/pool.ts";
import { queueStats } from "./db/stats.ts";
import type { HealthSettings } from "./db/subscription_health.ts";
import { listSecretsWithPrefix } from "./db/subscriptions.ts";
import { createApp, createOpsApp } from "./http/app.ts";
import type { Logger } from "./observability/log.ts";
import { createMetrics } from "./observability/metrics.ts";
import { loggableSettings } from "./observability/settings.ts";
import { serve } from "./http/serve.ts";
import { resolveWithDeno } from "./security/dns.ts";
import { createSecretCipher, SEALED_PREFIX, type SecretCipher } from "./security/secret_cipher.ts";
import { listen } from "./worker/notifier.ts";
import { startRescuer } from "./worker/rescuer.ts";
import { startRetention } from "./worker/retention.ts";
import { startWorker, type Worker } from "./worker/worker.ts";

export type Role = "serve" | "api" | "worker";

export interface Service {
  /** Base URL of this process's listener: the API, or in the worker role probes and metrics. */
  url: string;
  db: Database;
  worker: Worker | null;
  /** Graceful stop: no new requests or claims, drain, hand back, close. */
  stop(): Promise<void>;
}

/**
 * What shutdown may take beyond SHUTDOWN_TIMEOUT_MS, whatever the database
 * does: writing the drained deliveries' results and handing back what was
 * not sent (up to 3 s), then closing the pool (1 s). `main.ts` exits by
 * force once this has passed too.
 */
export const SHUTDOWN_GRACE_MS = 5000;
const PARTS_GRACE_MS = 3000;

/**
 * Starts the API and/or the delivery workers against one database. The
 * listener is bound before any worker starts, and whatever has started is
 * stopped again if a later step fails.
 */
export async function startService(
  config: Config,
  options: { role: Role; log: Logger },
): Promise<Service> {
  const { log, role } = options;
  const db = await openDatabase(config, log);
  // Stop functions of what has started, in start order.
  const started: (() => Promise<unknown>)[] = [];
  try {
    const status = await migrate(db.sql);
    if (status.applied.length > 0) log.info("Applied migrations", { applied: status.applied });
    const secrets = createSecretCipher(config.secretsKey);
    await checkSecretsKey(db.sql, secrets);

    let worker: Worker | null = null;
    const metrics = createMetrics({
      inFlight: () => worker?.inFlight ?? 0,
      queueStats: () => queueStats(db.sql),
      log,
    });
    const deps = {
      sql: db.sql,
      log,
      outage: db.outage,
      config,
      channel: db.channel,
      metrics,
      secrets,
      // The API wakes this process's own workers without a round trip.
      ...(role === "serve" ? { wake: () => worker?.wake() } : {}),
    };
    // The worker role serves only probes and metrics, so it can be watched like the API.
    const app = role === "worker" ? createOpsApp(deps) : createApp(deps);
    const server = await serve(config, app.fetch);
    started.push(() => server.shutdown());

    if (role !== "api") {
      const leaseMs = config.deliveryTimeoutMs * 2 + 5000;
      const w = worker = startWorker({
        sql: db.sql,
        log,
        metrics,
        secrets,
        resolve: resolveWithDeno,
      }, {
        workerId: `${Deno.hostname()}:${Deno.pid}:${crypto.randomUUID().slice(0, 8)}`,
        concurrency: config.workerConcurrency,
        deliveryTimeoutMs: config.deliveryTimeoutMs,
        leaseMs,
        pollIntervalMs: config.pollIntervalMs,
        maxAttempts: config.maxAttempts,
        retryBaseDelayMs: config.retryBaseDelayMs,
        retryMaxDelayMs: config.retryMaxDelayMs,
        allowPrivateTargets: config.allowPrivateTargets,
        allowedTargetCidrs: config.allowedTargetCidrs,
        channel: db.channel,
        health: healthSettings(config),
      });
      started.push(() =>
        w.stop({ drainMs: config.shutdownTimeoutMs, resultsMs: PARTS_GRACE_MS - 500 })
      );
      // PGlite cannot LISTEN: the API wakes this process's workers directly,
      // and polling covers other processes and retries.
      if (db.canListen) {
        const listener = await listen({ sql: db.sql, log }, db.channel, () => w.wake());
        // UNLISTEN is a courtesy: ending the pool drops the subscription anyway.
        started.push(() => settlesWithin(listener.close(), 1000));
      }
      const rescuer = startRescuer({ sql: db.sql, log, channel: db.channel }, {
        intervalMs: Math.max(1000, Math.min(leaseMs / 4, 30_000)),
        maxAttempts: config.maxAttempts,
      });
      started.push(() => rescuer.stop());
      if (config.retentionDays !== null) {
        const retention = startRetention({ sql: db.sql, log }, { days: config.retentionDays });
        started.push(() => retention.stop());
      }
    }

    const { hostname, port } = server.addr;
    const url = `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
    log.info("Dispatch started", {
      role,
      url,
      ...(/^(127\.|::1$|localhost$)/.test(hostname)
        ? { reachable: "from this machine only: set ADDR=:8080 to listen on every interface" }
        : {}),
      database: db.kind,
      database_url: db.url,
      settings: loggableSettings(config),
    });
    if (config.apiKeys.length === 0 && role !== "worker") {
      log.warn("DISPATCH_API_KEYS is unset: the API is open to anyone who can reach it");
    }
    if (config.allowPrivateTargets && config.env === "production") {
      log.warn("ALLOW_PRIVATE_TARGETS=true: deliveries may reach loopback and internal addresses");
    }

    return {
      url,
      db,
      worker,
      async stop() {
        log.info("Shutting down", { drain_ms: config.shutdownTimeoutMs });
        const parts = stopAll(started);
        if (!(await settlesWithin(parts, config.shutdownTimeoutMs + PARTS_GRACE_MS))) {
          log.warn("The database did not answer in time: closing it under what still waits");
        }
        // Ending the pool fails any statement still waiting, so every part finishes.
        await db.close();
        await settlesWithin(parts, 500);
        log.info("Stopped");
      },
    };
  } catch (err) {
    await stopAll(started);
    await db.close();
    throw err;
  }
}

/** The circuit breaker's and auto-disable's settings. */
export function healthSettings(config: Config): HealthSettings {
  return {
    failureThreshold: config.circuitFailureThreshold,
    cooldownMs: config.circuitCooldownMs,
    maxCooldownMs: config.circuitMaxCooldownMs,
    autoDisableAfterMs: config.autoDisableAfterMs,
  };
}

/**
 * Stops everything at once: the listener stops accepting while the workers
 * drain, so neither waits for the other.
 */
async function stopAll(started: (() => Promise<unknown>)[]): Promise<void> {
  await Promise.allSettled(started.map((stop) => stop()));
}

/**
 * A key that cannot open the stored secrets would fail every delivery of
 * theirs: every encrypted secret in use is opened once, and start-up is
 * refused if any cannot be.
 */
async function checkSecretsKey(sql: Sql, secrets: SecretCipher): Promise<void> {
  const sealed = await listSecretsWithPrefix(sql, SEALED_PREFIX);
  const failures: { subscription_id: string; error: Error }[] = [];
  for (let i = 0; i < sealed.length; i += 100) {
    await Promise.all(
      sealed.slice(i, i + 100).map(async (s) => {
        try {
          await secrets.open(s.secret);
        } catch (error) {
          failures.push({ subscription_id: s.subscription_id, error: error as Error });
        }
      }),
    );
  }
  const [first] = failures;
  if (first !== undefined) {
    throw new ConfigError(
      `${first.error.message} (${failures.length} of ${sealed.length} encrypted secrets cannot be opened, e.g. that of subscription "${first.subscription_id}")`,
    );
  }
}
