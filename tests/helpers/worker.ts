/**
 * A worker on a test database, as the service starts one: a 60 s lease, a
 * 20 ms poll, concurrency 4, the breaker off; any option can be replaced.
 *
 * @module
 */
import { createLogger, type Logger } from "../../src/observability/log.ts";
import { createMetrics } from "../../src/observability/metrics.ts";
import { createSecretCipher, type SecretCipher } from "../../src/security/secret_cipher.ts";
import type { Resolver } from "../../src/security/ssrf.ts";
import type { Sender } from "../../src/worker/sender.ts";
import { startWorker, type WorkerOptions } from "../../src/worker/worker.ts";
import type { TestDatabase } from "./db.ts";

export const quiet: Logger = createLogger({ write: () => {} });
const health = {
  failureThreshold: 0,
  cooldownMs: 30_000,
  maxCooldownMs: 60_000,
  autoDisableAfterMs: 0,
};

export function worker(
  db: TestDatabase,
  options: Partial<WorkerOptions> & {
    secrets?: SecretCipher;
    resolve?: Resolver;
    sender?: Sender;
  } = {},
) {
  const {
    secrets = createSecretCipher(null),
    resolve = () => Promise.resolve([]),
    sender,
    ...rest
  } = options;
  return startWorker({
    engine: db.engine,
    log: quiet,
    metrics: createMetrics({
      inFlight: () => 0,
      queueStats: () => db.views.queueStats(),
      log: quiet,
    }),
    secrets,
    resolve,
    ...(sender ? { sender } : {}),
  }, {
    workerId: "w",
    concurrency: 4,
    maxAttempts: 3,
    leaseMs: 60_000,
    pollIntervalMs: 20,
    deliveryTimeoutMs: 5_000,
    retryBaseDelayMs: 20,
    retryMaxDelayMs: 100,
    allowPrivateTargets: true,
    allowedTargetCidrs: [],
    health,
    ...rest,
  });
}
