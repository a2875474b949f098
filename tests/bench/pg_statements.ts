/**
 * Where PostgreSQL's time goes during a bench run, by statement, without
 * pg_stat_statements (which needs a preload on the server): samples
 * `pg_stat_activity` every few milliseconds and counts, per application and
 * statement, the samples that found a backend active, on the CPU (no wait
 * event) or waiting (lock, WAL flush, client…). Run it beside
 * `deno task bench …` with the same DATABASE_URL; it reads through the
 * `postgres` database so its own backend is not counted as the run's.
 *
 *     deno run --allow-all tests/bench/pg_statements.ts --seconds 60 [--every-ms 5]
 *
 * Prints one JSON line: per application and statement (its first 80
 * characters, whitespace folded), samples on the CPU and waiting, and the
 * waits by name. Multiply a statement's share of the CPU samples by
 * PostgreSQL's CPU per delivery for its µs per delivery.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { connect } from "../../src/db/pool.ts";
import { databaseUrl, sleep } from "./harness.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    seconds: { type: "string", default: "60" },
    "every-ms": { type: "string", default: "5" },
  },
});

const url = new URL(databaseUrl("pg_statements"));
const database = decodeURIComponent(url.pathname.slice(1));
url.pathname = "/postgres";
const sql = connect(url.href, { max: 1, applicationName: "pg_statements" });

interface Tally {
  cpu: number;
  waiting: number;
  waits: Record<string, number>;
}
const tallies = new Map<string, Tally>();
let samples = 0;
const until = performance.now() + Number(args.seconds) * 1000;
while (performance.now() < until) {
  const rows = await sql<
    { app: string; query: string; wait: string | null }[]
  >`SELECT application_name AS app, left(regexp_replace(query, '\\s+', ' ', 'g'), 80) AS query,
      CASE WHEN wait_event IS NULL THEN NULL ELSE wait_event_type || ':' || wait_event END AS wait
    FROM pg_stat_activity
    WHERE datname = ${database} AND state = 'active' AND pid <> pg_backend_pid()`;
  samples++;
  for (const r of rows) {
    // Dispatch's pools are named after the schema of the run; one name per kind is enough here.
    const key = `${r.app.replace(/:.*/, "")} | ${r.query}`;
    const t = tallies.get(key) ?? { cpu: 0, waiting: 0, waits: {} };
    if (r.wait === null) t.cpu++;
    else {
      t.waiting++;
      t.waits[r.wait] = (t.waits[r.wait] ?? 0) + 1;
    }
    tallies.set(key, t);
  }
  await sleep(Number(args["every-ms"]));
}
await sql.end();
const statements = [...tallies].sort((a, b) => b[1].cpu - a[1].cpu)
  .map(([statement, t]) => ({ statement, ...t }));
console.log(JSON.stringify({ samples, statements }));
