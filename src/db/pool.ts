import postgres from "postgres";

export type Sql = postgres.Sql;

export interface PoolOptions {
  /** Connections in the pool. */
  max?: number;
  /** Schema to work in (tests use one each); defaults to the server's search_path. */
  schema?: string;
  /** Name shown in pg_stat_activity. */
  applicationName?: string;
}

/** Opens a postgres.js pool. Connections are lazy and reconnect by themselves. */
export function connect(url: string, options: PoolOptions = {}): Sql {
  const connection: Record<string, string> = {
    application_name: options.applicationName ?? "dispatch",
  };
  if (options.schema) connection.search_path = options.schema;
  return postgres(url, {
    max: options.max ?? 10,
    onnotice: () => {},
    connection,
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
