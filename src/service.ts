import { type Config, ConfigError } from "./config.ts";
import { migrate } from "./db/migrate.ts";
import { type Database, openDatabase } from "./db/open.ts";
import { queueStats } from "./db/stats.ts";
import { findSecretWithPrefix } from "./db/subscriptions.ts";
import { createApp, createOpsApp } from "./http/app.ts";
import type { Logger } from "./observability/log.ts";
import { createMetrics } from "./observability/metrics.ts";
import { loggableSettings } from "./observability/settings.ts";
import { serve } from "./http/serve.ts";
import { resolveWithDeno } from "./security/dns.ts";
import { createSecretCipher, SEALED_PREFIX } from "./security/secret_cipher.ts";
import { listen, type Listener } from "./worker/notifier.ts";
import type { Periodic } from "./worker/periodic.ts";
import { type Rescuer, startRescuer } from "./worker/rescuer.ts";
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

/** Starts the API and/or the delivery workers against one database. */
export async function startService(
  config: Config,
  options: { role: Role; log: Logger },
): Promise<Service> {
  const { log, role } = options;
  const db = await openDatabase(config, log);
  try {
    const status = await migrate(db.sql);
    if (status.applied.length > 0) log.info("Applied migrations", { applied: status.applied });
    const secrets = createSecretCipher(config.secretsKey);
    // A key that cannot open the stored secrets would fail every delivery: refuse to start instead.
    const sealed = await findSecretWithPrefix(db.sql, SEALED_PREFIX);
    if (sealed !== undefined) {
      try {
        await secrets.open(sealed);
      } catch (err) {
        throw new ConfigError((err as Error).message);
      }
    }

    let worker: Worker | null = null;
    let listener: Listener | null = null;
    let rescuer: Rescuer | null = null;
    let retention: Periodic | null = null;
    const metrics = createMetrics({
      inFlight: () => worker?.inFlight ?? 0,
      queueStats: () => queueStats(db.sql),
      log,
    });
    if (role !== "api") {
      const leaseMs = config.deliveryTimeoutMs * 2 + 5000;
      worker = startWorker({ sql: db.sql, log, metrics, secrets, resolve: resolveWithDeno }, {
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
      });
      const w = worker;
      // PGlite cannot LISTEN: the API wakes this process's workers directly,
      // and polling covers other processes and retries.
      if (db.canListen) {
        listener = await listen({ sql: db.sql, log }, db.channel, () => w.wake());
      }
      rescuer = startRescuer({ sql: db.sql, log, channel: db.channel }, {
        intervalMs: Math.max(1000, Math.min(leaseMs / 4, 30_000)),
        maxAttempts: config.maxAttempts,
      });
      if (config.retentionDays !== null) {
        retention = startRetention({ sql: db.sql, log }, { days: config.retentionDays });
      }
    }

    const deps = {
      sql: db.sql,
      log,
      config,
      channel: db.channel,
      metrics,
      secrets,
      ...(worker ? { wake: worker.wake } : {}),
    };
    // The worker role serves only probes and metrics, so it can be watched like the API.
    const app = role === "worker" ? createOpsApp(deps) : createApp(deps);
    const server = serve(config, app.fetch);
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
        await server.shutdown();
        await rescuer?.stop();
        await retention?.stop();
        await worker?.stop({ drainMs: config.shutdownTimeoutMs });
        await listener?.close();
        await db.close();
        log.info("Stopped");
      },
    };
  } catch (err) {
    await db.close();
    throw err;
  }
}
