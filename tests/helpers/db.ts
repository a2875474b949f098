import assert from "node:assert/strict";
import { migrate } from "../../src/db/migrate.ts";
import { connect, type Sql, useSchema } from "../../src/db/pool.ts";
import { createEngine, type Engine } from "../../src/engine/engine.ts";
import { insertSubscription } from "../../src/engine/subscriptions.ts";
import { silentLogger } from "../../src/observability/log.ts";
import { createViews, type Views } from "../../src/views/views.ts";

export interface TestDatabase {
  url: string;
  /** A schema of this test's own, so test files run in parallel on one server. */
  schema: string;
  channel: string;
  sql: Sql;
  /** The engine over `sql`, as the service builds it. */
  engine: Engine;
  views: Views;
  close(): Promise<void>;
}

/** The server every test uses: DATABASE_URL, set by tests/run.ts to an embedded one when absent. */
export function databaseUrl(): string {
  const url = Deno.env.get("DATABASE_URL");
  if (!url) {
    throw new Error(
      "DATABASE_URL is unset: run the suite with `deno task test`, which starts an embedded database",
    );
  }
  return url;
}

// The embedded database's one session is every connection's (see `PoolOptions.prepare`).
const embedded = Deno.env.get("DISPATCH_TEST_EMBEDDED") === "1";

/** A fresh, migrated schema; `close()` drops it and ends the pool. */
export async function testDatabase(
  options: { max?: number; partitionWidthMs?: number } = {},
): Promise<TestDatabase> {
  const url = databaseUrl();
  const schema = `t_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const admin = connect(url, { max: 1 });
  await admin.unsafe(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const sql = connect(url, { schema, max: options.max ?? 4, prepare: !embedded });
  await useSchema(sql, schema);
  await migrate(sql, options);
  const channel = `dispatch_${schema}`;
  const engine = createEngine({ sql, channel, log: silentLogger });
  return {
    url,
    schema,
    channel,
    sql,
    engine,
    views: createViews(sql),
    async close() {
      await engine.close();
      await sql.end({ timeout: 5 });
      const admin = connect(url, { max: 1 });
      await admin.unsafe(`DROP SCHEMA ${schema} CASCADE`);
      await admin.end();
    },
  };
}

/**
 * A pool of one connection in the test's schema, with that connection's
 * backend pid, to see in `pg_locks` or `pg_stat_activity` what it waits for.
 */
export async function oneSession(db: TestDatabase): Promise<{ sql: Sql; pid: number }> {
  const sql = connect(db.url, { schema: db.schema, max: 1 });
  await useSchema(sql, db.schema);
  const [backend] = await sql<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
  return { sql, pid: backend!.pid };
}

/** Rows in a table of the test's schema (table names come from the test, never from input). */
export async function countRows(sql: Sql, table: string, where = "true"): Promise<number> {
  const [row] = await sql.unsafe<{ n: number }[]>(
    `SELECT count(*)::int AS n FROM ${table} WHERE ${where}`,
  );
  return row?.n ?? 0;
}

/** Runs `test` with a fresh schema, dropped afterwards. */
export async function withTestDatabase(test: (db: TestDatabase) => Promise<void>) {
  const db = await testDatabase();
  try {
    await test(db);
  } finally {
    await db.close();
  }
}

/**
 * Runs `action` while another transaction holds what `lock` locks, and says
 * whether `action` waited for it: if it did, only a guard that lets the lock
 * go after `guardMs` would have ended the wait.
 */
/** Whether the session `pid` waits for a lock now. */
export async function waitsForLock(sql: Sql, pid: number): Promise<boolean> {
  const [row] = await sql<{ waits: boolean }[]>`
    SELECT coalesce(bool_or(wait_event_type = 'Lock'), false) AS waits
    FROM pg_stat_activity WHERE pid = ${pid}`;
  return row!.waits;
}

export async function whileLocked<T>(
  sql: Sql,
  lock: (tx: Sql) => Promise<unknown>,
  action: () => Promise<T>,
  guardMs = 5_000,
): Promise<{ value: T; waited: boolean }> {
  const locked = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const holder = sql.begin(async (tx) => {
    await lock(tx as unknown as Sql);
    locked.resolve();
    await release.promise;
  });
  await locked.promise;
  let waited = false;
  const guard = setTimeout(() => {
    waited = true;
    release.resolve();
  }, guardMs);
  try {
    const value = await action();
    return { value, waited };
  } finally {
    clearTimeout(guard);
    release.resolve();
    await holder;
  }
}

/**
 * A subscription to `url` for every event, written straight to the database,
 * as if created before the SSRF guard was on: the API would refuse its url.
 */
export async function insertUncheckedSubscription(sql: Sql, sub: { id: string; url: string }) {
  await insertSubscription(sql, {
    ...sub,
    tenant_id: null,
    event_types: ["*"],
    description: null,
    secret: "a-secret-of-enough-length",
    active: true,
    max_attempts: null,
    rate_limit: null,
    max_in_flight: null,
    metadata: {},
  });
}

/** Every row of every table of the schema as text, and pg_dump's dump of it where there is one. */
export async function databaseDumps(db: TestDatabase): Promise<string[]> {
  const tables = await db.sql<{ name: string }[]>`
    SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()`;
  let rows = "";
  for (const { name } of tables) {
    rows += JSON.stringify(await db.sql.unsafe(`SELECT t::text FROM "${name}" t`));
  }
  if (Deno.env.get("DISPATCH_TEST_EMBEDDED") === "1") return [rows];
  const out = await new Deno.Command("pg_dump", {
    args: ["--dbname", db.url, "--schema", db.schema, "--data-only"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return [rows, new TextDecoder().decode(out.stdout)];
}
