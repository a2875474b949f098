import postgres from "postgres";
import { backoffMs } from "../backoff.ts";

export type Sql = postgres.Sql;

export interface PoolOptions {
  /** Connections in the pool. */
  max?: number;
  /** Schema to work in (tests use one each); defaults to the server's search_path. */
  schema?: string;
  /** Name shown in pg_stat_activity. */
  applicationName?: string;
  /** The server cancels any statement that runs longer (`statement_timeout`); 0 never does. */
  statementTimeoutMs?: number;
  /**
   * Prepared statements (default true). Their names belong to the pool, so a
   * server whose one session every connection shares (the embedded PGlite)
   * needs false: two connections would prepare the same name there.
   */
  prepare?: boolean;
}

/**
 * The delay before a connection closed by an error reconnects, in seconds.
 * postgres.js counts errors for the whole pool and by default waits up to
 * 20 s, so a short outage used to stall every query for that long after the
 * database was back. Capped at half a second: a refused connection costs
 * next to nothing, and work resumes within a second of the server's return.
 */
export function reconnectDelay(retries: number): number {
  return backoffMs(retries + 1, { baseMs: 25, maxMs: 500, jitter: "half" }) / 1000;
}

/** Opens a postgres.js pool. Connections are lazy and reconnect by themselves. */
export function connect(url: string, options: PoolOptions = {}): Sql {
  const connection: Record<string, string | number> = {
    application_name: options.applicationName ?? "dispatch",
    // Compiling a costly plan took 80 to 115 ms of a console read at 1M events; short OLTP
    // statements never win it back.
    jit: "off",
  };
  if (options.schema) connection.search_path = options.schema;
  if (options.statementTimeoutMs !== undefined) {
    connection.statement_timeout = options.statementTimeoutMs;
  }
  return postgres(url, {
    max: options.max ?? 10,
    prepare: options.prepare ?? true,
    onnotice: () => {},
    connection,
    backoff: reconnectDelay,
    // A server that accepts the connection but never answers is as good as down.
    connect_timeout: 5,
    // Timestamps come back as Date; bigint ids as JS numbers (safe below 2^53).
    types: {
      bigint: {
        to: 20,
        from: [20],
        serialize: (x: number | bigint) => String(x),
        parse: (x: string) => Number(x),
      },
    },
  });
}

/** A URL safe to log: the password replaced. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparsable URL)";
  }
}

/**
 * Makes sure queries run in `schema`. A real server applies the search_path
 * sent at connection start-up; the embedded PGlite ignores it, and since its
 * one session is shared by every connection, a single SET covers them all.
 */
export async function useSchema(sql: Sql, schema: string): Promise<void> {
  const [row] = await sql<{ schema: string | null }[]>`SELECT current_schema() AS schema`;
  if (row?.schema !== schema) await sql.unsafe(`SET search_path TO "${schema}"`);
}
