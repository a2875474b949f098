import type { Config } from "./config.ts";
import { migrate } from "./db/migrate.ts";
import { type Database, openDatabase } from "./db/open.ts";
import { createApp } from "./http/app.ts";
import type { Logger } from "./observability/log.ts";
import { listen, type Listener } from "./worker/notifier.ts";
import { type Rescuer, startRescuer } from "./worker/rescuer.ts";
import { startWorker, type Worker } from "./worker/worker.ts";

export type Role = "serve" | "api" | "worker";

export interface Service {
  /** Base URL of the API, when this process serves it. */
  url: string | null;
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

    let worker: Worker | null = null;
    let listener: Listener | null = null;
    let rescuer: Rescuer | null = null;
    if (role !== "api") {
      const leaseMs = config.deliveryTimeoutMs * 2 + 5000;
      worker = startWorker({ sql: db.sql, log }, {
        workerId: `${Deno.hostname()}:${Deno.pid}:${crypto.randomUUID().slice(0, 8)}`,
        concurrency: config.workerConcurrency,
        deliveryTimeoutMs: config.deliveryTimeoutMs,
        leaseMs,
        pollIntervalMs: config.pollIntervalMs,
        maxAttempts: config.maxAttempts,
        retryBaseDelayMs: config.retryBaseDelayMs,
        retryMaxDelayMs: config.retryMaxDelayMs,
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
    }

    let server: Deno.HttpServer<Deno.NetAddr> | null = null;
    if (role !== "worker") {
      const app = createApp({
        sql: db.sql,
        log,
        config,
        channel: db.channel,
        ...(worker ? { wake: worker.wake } : {}),
      });
      server = Deno.serve({
        hostname: config.hostname,
        port: config.port,
        onListen: () => {},
      }, app.fetch);
    }
    const addr = server?.addr;
    const url = addr
      ? `http://${addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname}:${addr.port}`
      : null;
    log.info("Dispatch started", {
      role,
      url,
      database: db.kind,
      database_url: db.url,
      worker_concurrency: worker ? config.workerConcurrency : 0,
    });
    if (config.apiKeys.length === 0 && role !== "worker") {
      log.warn("DISPATCH_API_KEYS is unset: the API is open to anyone who can reach it");
    }

    return {
      url,
      db,
      worker,
      async stop() {
        log.info("Shutting down", { drain_ms: config.shutdownTimeoutMs });
        await server?.shutdown();
        await rescuer?.stop();
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
