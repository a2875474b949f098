import type { Config } from "../config.ts";
import type { Sql } from "../db/pool.ts";
import type { Logger } from "../observability/log.ts";

/** What route handlers need; built once by the composition root. */
export interface AppDeps {
  sql: Sql;
  log: Logger;
  config: Pick<Config, "maxPayloadBytes" | "apiKeys" | "rotationGraceMs">;
  /** NOTIFY channel that wakes workers of this database schema. */
  channel: string;
  /** Wakes this process's own workers without a round trip, if it runs any. */
  wake?: () => void;
}
