import { loadConfig } from "../../src/config.ts";
import { type Logger, silentLogger } from "../../src/observability/log.ts";
import { type Role, type Service, startService } from "../../src/service.ts";
import type { TestDatabase } from "./db.ts";
import { type Api, apiClient, overHttp } from "./http.ts";

/** Settings that make tests fast; any can be overridden per test. */
export const fastEnv = {
  RETRY_BASE_DELAY_MS: "20",
  RETRY_MAX_DELAY_MS: "200",
  MAX_ATTEMPTS: "3",
  DELIVERY_TIMEOUT_MS: "2000",
  POLL_INTERVAL_MS: "50",
  SHUTDOWN_TIMEOUT_MS: "2000",
  WORKER_CONCURRENCY: "16",
};

/** The environment for a Dispatch process working in the test's schema. */
export function serviceEnv(db: TestDatabase, env: Record<string, string> = {}) {
  return {
    DATABASE_URL: db.url,
    DATABASE_SCHEMA: db.schema,
    ADDR: "127.0.0.1:0",
    ...fastEnv,
    ...env,
  };
}

/** The real service (API on a real socket, workers, rescuer) in this process. */
export async function startTestService(
  db: TestDatabase,
  options: { env?: Record<string, string>; role?: Role; log?: Logger } = {},
): Promise<Service & { api: Api }> {
  const config = loadConfig(serviceEnv(db, options.env));
  const service = await startService(config, {
    role: options.role ?? "serve",
    log: options.log ?? silentLogger,
  });
  return { ...service, api: apiClient(overHttp(service.url)) };
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  options: { timeoutMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(
    `Timed out waiting for ${options.what ?? "a condition"}${last ? `: ${last}` : ""}`,
  );
}
