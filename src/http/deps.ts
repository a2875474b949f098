import type { Config } from "../config.ts";
import type { Engine } from "../engine/engine.ts";
import type { Logger } from "../observability/log.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { SecretCipher } from "../security/secret_cipher.ts";
import type { Views } from "../views/views.ts";

/** What route handlers need; built once by `src/service.ts`. Routes never hold `sql`. */
export interface AppDeps {
  /** Every change: routes write through it, and it wakes the workers. */
  engine: Engine;
  views: Views;
  log: Logger;
  config: Pick<
    Config,
    | "env"
    | "maxPayloadBytes"
    | "apiKeys"
    | "rotationGraceMs"
    | "metricsPublic"
    | "allowPrivateTargets"
    | "allowedTargetCidrs"
    | "requestTimeoutMs"
  >;
  /** Encrypts subscription secrets before they are stored. */
  secrets: SecretCipher;
  metrics: Metrics;
}
