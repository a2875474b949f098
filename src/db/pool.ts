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
  ignoreTypeFetchFailures();
  const connection: Record<string, string | number> = {
    application_name: options.applicationName ?? "dispatch",
  };
  if (options.schema) connection.search_path = options.schema;
  if (options.statementTimeoutMs !== undefined) {
    connection.statement_timeout = options.statementTimeoutMs;
  }
  return postgres(url, {
    max: options.max ?? 10,
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

let ignoring = false;

/**
 * postgres.js 3.4.9 runs a query of its own on every new connection (the
 * array types) and drops its promise, so when that query fails (a backend
 * terminated at that moment, a statement timeout) the rejection is unhandled
 * and would end the process (porsager/postgres#1192, #1223). Only that
 * rejection is ignored: the connection's own queries report the failure.
 */
function ignoreTypeFetchFailures(): void {
  if (ignoring) return;
  ignoring = true;
  globalThis.addEventListener("unhandledrejection", (event) => {
    if (isTypeFetchFailure(event.reason)) event.preventDefault();
  });
}

/** The rejection of postgres.js's own array-type query (its text is on the error). */
export function isTypeFetchFailure(reason: unknown): boolean {
  const query = (reason as { query?: unknown } | null)?.query;
  return typeof query === "string" && query.includes("pg_catalog.pg_type") &&
    query.includes("typarray");
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
