/**
 * The composition root: config → database → migrate → engine and views →
 * HTTP server + workers. `main.ts` adds the command line and the signals.
 *
 * @module
 */
import { settlesWithin } from "./async.ts";
import { type Config, ConfigError, type DeliverySettings } from "./config.ts";
import { migrate } from "./db/migrate.ts";
import { type Database, openDatabase } from "./db/open.ts";
import { createEngine, type Engine } from "./engine/engine.ts";
import type { HealthSettings } from "./engine/health.ts";
import { createApp, createOpsApp } from "./http/app.ts";
import { apiSettings } from "./http/deps.ts";
import type { Logger } from "./observability/log.ts";
import { createMetrics, type Metrics } from "./observability/metrics.ts";
import { loggableSettings } from "./observability/settings.ts";
import { serve } from "./http/serve.ts";
import { readCaFile } from "./security/client_certificate.ts";
import { resolveWithDeno } from "./security/dns.ts";
import { createSecretCipher, SEALED_PREFIX, type SecretCipher } from "./security/secret_cipher.ts";
import { listen } from "./worker/notifier.ts";
import { startCertificateExpiryWarnings } from "./worker/certificate_expiry.ts";
import { startRescuer } from "./worker/rescuer.ts";
import { historyWidthMs, startRetention } from "./worker/retention.ts";
import { createViews, type Views } from "./views/views.ts";
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
  // Read before anything starts, so that a bad file stops start-up with its name.
  const caCerts = await readCaFile(config.delivery.caFile);
  const db = await openDatabase(config.database, log);
  // Stop functions of what has started, in start order.
  const started: (() => Promise<unknown>)[] = [];
  // Once everything that publishes has stopped.
  let closeEngine = () => Promise.resolve();
  try {
    const status = await migrate(db.sql, {
      partitionWidthMs: historyWidthMs(config.worker.retentionDays),
      auditPartitionWidthMs: historyWidthMs(config.worker.auditRetentionDays),
    });
    if (status.applied.length > 0) log.info("Applied migrations", { applied: status.applied });
    const secrets = createSecretCipher(config.security.secretsKey);
    const views = createViews(db.sql, db.readSql);
    await checkSecretsKey(views, secrets);

    // The one writer of deliveries; its wake-ups reach this process's workers directly (the
    // embedded database cannot LISTEN) and other processes through NOTIFY.
    const engine = createEngine({ sql: db.sql, channel: db.channel, log });
    closeEngine = () => engine.close();
    if (role !== "worker") {
      await engine.setSqlPublishRules({
        maxDataBytes: config.http.maxPayloadBytes,
        strictTypes: config.http.eventTypes === "strict",
      });
    }
    // Every process makes partitions ahead; the workers also drop expired ones.
    const retention = startRetention({ engine, log }, {
      days: config.worker.retentionDays,
      auditDays: config.worker.auditRetentionDays,
      partitionsOnly: role === "api",
    });
    started.push(() => retention.stop());
    let worker: Worker | null = null;
    const metrics = createMetrics({
      inFlight: () => worker?.inFlight ?? 0,
      queueStats: () => views.queueStats(),
      certificateExpiries: () => views.clientCertificateExpiries(),
      log,
    });
    const deps = {
      engine,
      views,
      log,
      outage: db.outage,
      config: apiSettings(config),
      metrics,
      secrets,
    };
    // The worker role serves only probes and metrics, so it can be watched like the API.
    const app = role === "worker" ? createOpsApp(deps) : createApp(deps);
    const server = await serve(config.http, app.fetch);
    started.push(() => server.shutdown());

    if (role !== "api") {
      worker = await startWorkers(
        config,
        { db, engine, log, metrics, secrets, caCerts, views },
        started,
      );
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
    if (config.http.apiKeys.length === 0 && role !== "worker") {
      log.warn("DISPATCH_API_KEYS is unset: the API is open to anyone who can reach it");
    }
    if (config.security.secretsKey === null && config.env === "production") {
      log.warn("DISPATCH_SECRETS_KEY is unset: signing secrets are stored unencrypted");
    }
    if (config.security.allowPrivateTargets && config.env === "production") {
      log.warn("ALLOW_PRIVATE_TARGETS=true: deliveries may reach loopback and internal addresses");
    }

    return {
      url,
      db,
      worker,
      async stop() {
        log.info("Shutting down", { drain_ms: config.http.shutdownTimeoutMs });
        const parts = stopAll(started).then(closeEngine);
        if (!(await settlesWithin(parts, config.http.shutdownTimeoutMs + PARTS_GRACE_MS))) {
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
    await closeEngine();
    await db.close();
    throw err;
  }
}

/**
 * The delivery side of a process: the worker (woken by the engine, and by
 * NOTIFY where the database can LISTEN) and the rescuer. Each
 * part's stop is added to `started`.
 */
async function startWorkers(
  config: Config,
  deps: {
    db: Database;
    engine: Engine;
    log: Logger;
    metrics: Metrics;
    secrets: SecretCipher;
    /** DELIVERY_CA_FILE's certificates. */
    caCerts: string[];
    views: Views;
  },
  started: (() => Promise<unknown>)[],
): Promise<Worker> {
  const { db, engine, log } = deps;
  const worker = startWorker({ ...deps, resolve: resolveWithDeno }, {
    workerId: `${Deno.hostname()}:${Deno.pid}:${crypto.randomUUID().slice(0, 8)}`,
    concurrency: config.worker.concurrency,
    deliveryTimeoutMs: config.delivery.deliveryTimeoutMs,
    leaseMs: config.worker.leaseMs,
    pollIntervalMs: config.worker.pollIntervalMs,
    maxAttempts: config.delivery.maxAttempts,
    retryBaseDelayMs: config.delivery.retryBaseDelayMs,
    retryMaxDelayMs: config.delivery.retryMaxDelayMs,
    allowPrivateTargets: config.security.allowPrivateTargets,
    allowedTargetCidrs: config.security.allowedTargetCidrs,
    caCerts: deps.caCerts,
    proxy: config.delivery.proxy,
    health: healthSettings(config.delivery),
  });
  started.push(() =>
    worker.stop({ drainMs: config.http.shutdownTimeoutMs, resultsMs: PARTS_GRACE_MS - 500 })
  );
  const unwake = engine.onWake(() => worker.wake());
  started.push(() => Promise.resolve(unwake()));
  // PGlite cannot LISTEN: the engine wakes this process's workers directly,
  // and polling covers other processes and retries.
  if (db.canListen) {
    const listener = await listen({ sql: db.sql, log }, db.channel, () => worker.wake(), {
      ignore: engine.wakeOrigin,
    });
    // UNLISTEN is a courtesy: ending the pool drops the subscription anyway.
    started.push(() => settlesWithin(listener.close(), 1000));
  }
  const rescuer = startRescuer({ engine, log }, {
    intervalMs: config.worker.rescueIntervalMs,
    maxAttempts: config.delivery.maxAttempts,
  });
  started.push(() => rescuer.stop());
  const expiryWarnings = startCertificateExpiryWarnings({
    expiries: () => deps.views.clientCertificateExpiries(),
    log,
  });
  started.push(() => expiryWarnings.stop());
  return worker;
}

/** The circuit breaker's and auto-disable's settings. */
function healthSettings(config: DeliverySettings): HealthSettings {
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
async function checkSecretsKey(views: Views, secrets: SecretCipher): Promise<void> {
  const sealed = await views.listSecretsWithPrefix(SEALED_PREFIX);
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
