import type { Config } from "../config.ts";
import type { Logger } from "../observability/log.ts";
import { startEmbedded } from "./embedded.ts";
import { connect, redactUrl, type Sql, useSchema } from "./pool.ts";

export interface Database {
  sql: Sql;
  url: string;
  kind: "external" | "embedded";
  /** NOTIFY channel for this database schema's workers. */
  channel: string;
  close(): Promise<void>;
}

/** The external server from DATABASE_URL, or an embedded one under DISPATCH_DATA_DIR. */
export async function openDatabase(
  config: Pick<Config, "databaseUrl" | "dataDir" | "schema" | "workerConcurrency">,
  log: Logger,
): Promise<Database> {
  let url: string;
  let stopEmbedded = async () => {};
  if (config.databaseUrl !== null) {
    url = config.databaseUrl;
  } else {
    log.warn(
      "DATABASE_URL is unset: using the embedded database, which is for trying Dispatch out, not for production",
      { data_dir: config.dataDir },
    );
    const embedded = await startEmbedded({ dataDir: config.dataDir });
    url = embedded.url;
    stopEmbedded = () => embedded.stop();
  }
  const options = { max: Math.min(20, 4 + Math.ceil(config.workerConcurrency / 16)) };
  const sql = connect(url, config.schema ? { ...options, schema: config.schema } : options);
  if (config.schema) await useSchema(sql, config.schema);
  return {
    sql,
    url: redactUrl(url),
    kind: config.databaseUrl === null ? "embedded" : "external",
    channel: `dispatch_${config.schema ?? "public"}`,
    async close() {
      await sql.end({ timeout: 5 });
      await stopEmbedded();
    },
  };
}
