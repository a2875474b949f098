import type { Config } from "../config.ts";
import type { DatabaseOutage } from "../db/outage.ts";
import type { Sql } from "../db/pool.ts";
import type { Logger } from "../observability/log.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { SecretCipher } from "../security/secret_cipher.ts";

/** What route handlers need; built once by the composition root. */
export interface AppDeps {
  sql: Sql;
  log: Logger;
  /** Reports the database unreachable and back again, for the requests refused meanwhile. */
  outage: DatabaseOutage;
  config: Pick<
    Config,
    | "env"
    | "hostname"
    | "maxPayloadBytes"
    | "apiKeys"
    | "rotationGraceMs"
    | "metricsPublic"
    | "allowPrivateTargets"
    | "allowedTargetCidrs"
    | "requestTimeoutMs"
    | "actionRateLimit"
  >;
  /** Encrypts subscription secrets before they are stored. */
  secrets: SecretCipher;
  metrics: Metrics;
  /** NOTIFY channel that wakes workers of this database schema. */
  channel: string;
  /** Wakes this process's own workers without a round trip, if it runs any. */
  wake?: () => void;
}
