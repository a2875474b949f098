import type { Config, HttpSettings, SecuritySettings } from "../config.ts";
import type { DatabaseOutage } from "../observability/outage.ts";
import type { Engine } from "../engine/engine.ts";
import type { Logger } from "../observability/log.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { SecretCipher } from "../security/secret_cipher.ts";
import type { Views } from "../views/views.ts";

/** The settings of the config's sections that the API reads, side by side. */
export type ApiSettings =
  & Pick<Config, "env">
  & Pick<
    HttpSettings,
    | "hostname"
    | "apiKeys"
    | "requestTimeoutMs"
    | "maxPayloadBytes"
    | "metricsPublic"
    | "actionRateLimit"
    | "eventTypes"
    | "consoleSessionKey"
    | "consoleFrameAncestors"
  >
  & Pick<SecuritySettings, "allowPrivateTargets" | "allowedTargetCidrs" | "rotationGraceMs">;

/** The API's settings, from the config's sections. */
export function apiSettings(config: Config): ApiSettings {
  return { env: config.env, ...config.http, ...config.security };
}

/** What route handlers need; built once by `src/service.ts`. Routes never hold `sql`. */
export interface AppDeps {
  /** Every change: routes write through it, and it wakes the workers. */
  engine: Engine;
  views: Views;
  log: Logger;
  /** Reports the database unreachable and back again, for the requests refused meanwhile. */
  outage: DatabaseOutage;
  config: ApiSettings;
  /** Encrypts subscription secrets before they are stored. */
  secrets: SecretCipher;
  metrics: Metrics;
}
