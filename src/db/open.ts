import { backoffMs } from "../backoff.ts";
import type { DatabaseSettings } from "../config.ts";
import type { Logger } from "../observability/log.ts";
import { DatabaseOutage } from "../observability/outage.ts";
import { connect, redactUrl, type Sql, useSchema } from "./pool.ts";

export interface Database {
  sql: Sql;
  /**
   * The pool of reads that may lag the primary: DATABASE_READ_URL's replica,
   * or `sql` itself when it is unset.
   */
  readSql: Sql;
  url: string;
  kind: "external" | "embedded";
  /** NOTIFY channel for this database schema's workers. */
  channel: string;
  /** False for PGlite, whose socket server cannot LISTEN. */
  canListen: boolean;
  /** Where refused requests report the database unreachable. */
  outage: DatabaseOutage;
  close(): Promise<void>;
}

/** The external server from DATABASE_URL, or an embedded one under DISPATCH_DATA_DIR. */
export async function openDatabase(
  config: DatabaseSettings,
  log: Logger,
): Promise<Database> {
  let url: string;
  let stopEmbedded = async () => {};
  if (config.url !== null) {
    url = config.url;
  } else {
    log.warn(
      "DATABASE_URL is unset: using the embedded database, which is for trying Dispatch out, not for production",
      { data_dir: config.dataDir },
    );
    // Loaded only when used: PGlite is tens of MB that a real server never needs.
    const { startEmbedded } = await import("./embedded.ts");
    const embedded = await startEmbedded({ dataDir: config.dataDir });
    url = embedded.url;
    stopEmbedded = () => embedded.stop();
  }
  const options = {
    max: config.poolSize,
    // Names the installation in pg_stat_activity when several share a server.
    applicationName: config.schema ? `dispatch:${config.schema}` : "dispatch",
    statementTimeoutMs: config.statementTimeoutMs,
  };
  const pool = (prepare: boolean) =>
    connect(url, { ...options, prepare, ...(config.schema ? { schema: config.schema } : {}) });
  let sql = pool(true);
  let version: string;
  try {
    version = await waitForServer(sql, { log, url });
    // PGlite's one session is every connection's: the pool's prepared statements would
    // collide there, and it ignores start-up parameters.
    if (version.includes("PGlite")) {
      await sql.end();
      sql = pool(false);
      await sql.unsafe(`SET statement_timeout = ${config.statementTimeoutMs}`);
    }
    if (config.schema) await useSchema(sql, config.schema);
  } catch (err) {
    // Nothing may outlive a failed start, the embedded database's lock included.
    await sql.end({ timeout: 1 });
    await stopEmbedded();
    throw err;
  }
  const outage = new DatabaseOutage(log, { probe: () => sql`SELECT 1` });
  // Not waited for: a replica that is down fails the reads that use it, not start-up.
  const readSql = config.readUrl === null ? sql : connect(config.readUrl, {
    ...options,
    applicationName: `${options.applicationName}:read`,
    ...(config.schema ? { schema: config.schema } : {}),
  });
  return {
    sql,
    readSql,
    url: redactUrl(url),
    kind: config.url === null ? "embedded" : "external",
    channel: `dispatch_${config.schema ?? "public"}`,
    canListen: !version.includes("PGlite"),
    outage,
    async close() {
      outage.close();
      // Every role has drained by now: a query still open here is stuck on a dead connection.
      await sql.end({ timeout: 1 });
      if (readSql !== sql) await readSql.end({ timeout: 1 });
      await stopEmbedded();
    },
  };
}

/**
 * The server's answers that waiting cannot change: the database does not
 * exist (3D000), the role or its password is refused (class 28), or the
 * role may not connect (42501).
 */
const finalErrors = /^(3D000|28\w{3}|42501)$/;

/** The server's version string; retries for a minute so Dispatch can start before its database. */
async function waitForServer(sql: Sql, options: { log: Logger; url: string }): Promise<string> {
  const deadline = Date.now() + 60_000;
  for (let attempt = 1;; attempt++) {
    try {
      const [row] = await sql<{ version: string }[]>`SELECT version()`;
      return row?.version ?? "";
    } catch (err) {
      const { code, message } = err as { code?: unknown; message: string };
      if (typeof code === "string" && finalErrors.test(code)) {
        const url = redactUrl(options.url);
        throw new Error(
          `The database at "${url}" refused Dispatch: ${message} (SQLSTATE ${code}). Check DATABASE_URL`,
        );
      }
      if (Date.now() > deadline) {
        throw new Error(`Cannot reach the database: ${message}. Check DATABASE_URL`);
      }
      options.log.warn("Waiting for the database", { attempt, error: err });
      const delay = backoffMs(attempt, { baseMs: 250, maxMs: 5000, growth: "linear" });
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
