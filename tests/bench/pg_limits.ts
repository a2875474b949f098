/**
 * What one PostgreSQL spends under a bench run (`deno task bench:pg`, or
 * `--pg` with any bench scenario): its statements (pg_stat_statements),
 * its WAL (pg_stat_wal: bytes, records, writes and fsyncs) and what its
 * processes wait for, sampled from pg_stat_activity every 100 ms. Each
 * figure is the difference between the run's start and end, so nothing
 * server-wide is reset; the statements are those of the run's database.
 * Needs `shared_preload_libraries = 'pg_stat_statements'` on the server
 * (docs/scaling.md says how to start a cluster of your own that has it).
 *
 * @module
 */
import { connect, type Sql } from "../../src/db/pool.ts";
import { round } from "./harness.ts";

interface Statement {
  queryid: string;
  query: string;
  calls: number;
  total_ms: number;
  rows: number;
  wal_bytes: number;
}

interface Wal {
  wal_records: number;
  wal_fpi: number;
  wal_bytes: number;
  wal_buffers_full: number;
  wal_write: number;
  wal_sync: number;
}

export interface PgFigures {
  /** The run's statements by total time, with calls and WAL, at most `top`. */
  statements: (Statement & { ms_per_call: number })[];
  /** All statements' time and calls in the run. */
  statements_total: { calls: number; total_ms: number };
  wal: Wal;
  /** Counts of (backend type, wait) over the samples: "CPU" is active without a wait event. */
  waits: { backend: string; wait: string; samples: number }[];
  samples: number;
  /** The largest replay lag and bytes behind of a streaming replica, if there is one. */
  replica?: { max_replay_lag_ms: number; max_bytes_behind: number };
}

/** Opens the probe's connection and checks pg_stat_statements, or says why it cannot. */
export async function openPgProbe(url: string): Promise<Sql> {
  const sql = connect(url, { max: 1, applicationName: "bench-pg-probe" });
  const [row] = await sql<{ loaded: boolean }[]>`
    SELECT 'pg_stat_statements' = ANY(string_to_array(current_setting('shared_preload_libraries'), ', '))
      AS loaded`;
  if (!row?.loaded) {
    await sql.end();
    throw new Error(
      "The server does not preload pg_stat_statements: --pg needs a cluster of your own (docs/scaling.md)",
    );
  }
  await sql`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`;
  return sql;
}

/** Starts sampling; `stop()` returns the run's figures. */
export async function startPgProbe(sql: Sql, sampleMs = 100) {
  const statements0 = await statements(sql);
  const wal0 = await wal(sql);
  const waits = new Map<string, number>();
  let samples = 0;
  let maxLagMs = 0;
  let maxBehind = 0;
  let replicas = false;
  let sampling = Promise.resolve();
  const sample = async () => {
    const rows = await sql<{ backend: string; wait: string; n: number }[]>`
      SELECT backend_type AS backend,
        coalesce(wait_event_type || ':' || wait_event, 'CPU') AS wait, count(*)::int AS n
      FROM pg_stat_activity
      WHERE pid <> pg_backend_pid()
        AND (datname = current_database() OR datname IS NULL)
        AND coalesce(state, 'background') NOT IN ('idle')
        AND coalesce(wait_event_type, '') <> 'Activity'
      GROUP BY 1, 2`;
    for (const r of rows) {
      const key = `${r.backend}\t${r.wait}`;
      waits.set(key, (waits.get(key) ?? 0) + r.n);
    }
    const [lag] = await sql<{ n: number; lag_ms: number | null; behind: number | null }[]>`
      SELECT count(*)::int AS n,
        max(extract(epoch FROM replay_lag) * 1000)::float8 AS lag_ms,
        max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn))::float8 AS behind
      FROM pg_stat_replication`;
    if (lag && lag.n > 0) {
      replicas = true;
      maxLagMs = Math.max(maxLagMs, lag.lag_ms ?? 0);
      maxBehind = Math.max(maxBehind, lag.behind ?? 0);
    }
    samples++;
  };
  // One sample at a time: a slow one delays the next rather than piling up.
  const timer = setInterval(() => {
    sampling = sampling.then(sample, sample);
  }, sampleMs);

  return {
    async stop(top = 12): Promise<PgFigures> {
      clearInterval(timer);
      await sampling;
      const before = new Map(statements0.map((s) => [s.queryid, s]));
      const run = (await statements(sql)).map((s) => {
        const b = before.get(s.queryid);
        const calls = s.calls - (b?.calls ?? 0);
        const total = s.total_ms - (b?.total_ms ?? 0);
        return {
          ...s,
          calls,
          total_ms: round(total, 1),
          rows: s.rows - (b?.rows ?? 0),
          wal_bytes: s.wal_bytes - (b?.wal_bytes ?? 0),
          ms_per_call: calls > 0 ? round(total / calls, 3) : 0,
        };
      }).filter((s) => s.calls > 0);
      const wal1 = await wal(sql);
      return {
        statements: run.sort((a, b) => b.total_ms - a.total_ms).slice(0, top),
        statements_total: {
          calls: run.reduce((a, s) => a + s.calls, 0),
          total_ms: round(run.reduce((a, s) => a + s.total_ms, 0)),
        },
        wal: Object.fromEntries(
          Object.entries(wal1).map(([k, v]) => [k, v - wal0[k as keyof Wal]]),
        ) as unknown as Wal,
        waits: [...waits].map(([key, n]) => {
          const [backend, wait] = key.split("\t");
          return { backend: backend!, wait: wait!, samples: n };
        }).sort((a, b) => b.samples - a.samples),
        samples,
        ...(replicas
          ? { replica: { max_replay_lag_ms: round(maxLagMs, 1), max_bytes_behind: maxBehind } }
          : {}),
      };
    },
  };
}

function statements(sql: Sql): Promise<Statement[]> {
  return sql<Statement[]>`
    SELECT queryid::text, left(regexp_replace(query, '\\s+', ' ', 'g'), 140) AS query,
      calls::float8 AS calls, total_exec_time::float8 AS total_ms, rows::float8 AS rows,
      wal_bytes::float8 AS wal_bytes
    FROM pg_stat_statements
    WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
      -- The probe's own reads.
      AND query !~ 'pg_stat_(statements|activity|replication|wal)'`;
}

async function wal(sql: Sql): Promise<Wal> {
  const [row] = await sql<Wal[]>`
    SELECT wal_records::float8 AS wal_records, wal_fpi::float8 AS wal_fpi,
      wal_bytes::float8 AS wal_bytes, wal_buffers_full::float8 AS wal_buffers_full,
      wal_write::float8 AS wal_write, wal_sync::float8 AS wal_sync
    FROM pg_stat_wal`;
  return row!;
}

/** The figures as text, per delivery where it says so. */
export function formatPgFigures(name: string, f: PgFigures, deliveries: number): string {
  const per = (n: number, digits = 2) => deliveries > 0 ? round(n / deliveries, digits) : NaN;
  const lines = [
    `\nPostgreSQL under ${name} (${deliveries} deliveries, ${f.samples} samples of pg_stat_activity):`,
    `WAL: ${
      round(f.wal.wal_bytes / 1e6, 1)
    } MB, ${f.wal.wal_records} records (${f.wal.wal_fpi} full pages), ` +
    `${f.wal.wal_write} writes, ${f.wal.wal_sync} fsyncs, ${f.wal.wal_buffers_full} times buffers full; ` +
    `per delivery ${per(f.wal.wal_bytes, 0)} bytes, ${per(f.wal.wal_records, 1)} records, ` +
    `${per(f.wal.wal_sync, 3)} fsyncs`,
    `statements: ${f.statements_total.calls} calls, ${f.statements_total.total_ms} ms; per delivery ` +
    `${per(f.statements_total.calls, 2)} calls, ${per(f.statements_total.total_ms, 3)} ms`,
    "total ms | calls | ms/call | rows | WAL bytes | statement",
    ...f.statements.map((s) =>
      `${s.total_ms} | ${s.calls} | ${s.ms_per_call} | ${s.rows} | ${s.wal_bytes} | ${s.query}`
    ),
    "samples | share | backend | wait",
    ...f.waits.slice(0, 15).map((w) =>
      `${w.samples} | ${
        round(w.samples / Math.max(1, f.samples), 2)
      } per sample | ${w.backend} | ${w.wait}`
    ),
  ];
  if (f.replica) {
    lines.push(
      `replica: replay lag at most ${f.replica.max_replay_lag_ms} ms, ` +
        `${round(f.replica.max_bytes_behind / 1e3, 0)} kB behind at most`,
    );
  }
  return lines.join("\n");
}
