/**
 * A webhook dispatcher built the obvious way on graphile-worker, for
 * `deno task bench --peer`: the peer that issue 22 states Dispatch's targets
 * against, measured in the same run. Bench-only; the product never imports it.
 *
 * `Deno.serve` takes `POST /events` (JSON `{id?, type, data}`) and, in one
 * transaction on graphile-worker's own pool, inserts the event row and one
 * job per subscription (`add_jobs`, graphile-worker's SQL API, so the jobs
 * commit or roll back with the event). graphile-worker runs the `deliver`
 * task with its defaults (LISTEN for new jobs, 2 s poll, 25 attempts with
 * its exponential backoff) and `WORKER_CONCURRENCY` jobs at a time; the
 * task signs the body (Standard Webhooks, HMAC-SHA256 by Web Crypto) and
 * posts it by keep-alive `fetch` with a timeout, throwing on a non-2xx
 * answer so that graphile-worker retries it.
 *
 * With `batching`, graphile-worker's batching options are on, as its
 * performance page sets them for throughput: a local queue (one more job than
 * `WORKER_CONCURRENCY`, fetched in one query) and completions and failures
 * written in batches (`completeJobBatchDelay` and `failJobBatchDelay` 0).
 *
 * Run as a process of its own (`startPeer()`), so /proc counts its CPU apart.
 * Without `worker` the worker is left out: the jobs wait, ingest is measured alone.
 *
 * @module
 */
import { Logger, run, runMigrations, type Task } from "graphile-worker";
import pg from "pg";
import {
  prototypeEnv,
  type PrototypeOptions,
  startPrototype,
  type Webhook,
  webhookSender,
} from "./prototype.ts";

/** Where graphile-worker keeps its tables for a bench schema: dropped with it. */
export function workerSchemaOf(schema: string): string {
  return `${schema}_worker`;
}

/** Starts the peer as a child process; without `worker` its jobs wait (API only). */
export function startPeer(
  options: PrototypeOptions & { worker: boolean; batching: boolean },
): Deno.ChildProcess {
  return startPrototype(import.meta.url, options, {
    PEER_WORKER: options.worker ? "1" : "0",
    PEER_BATCHING: options.batching ? "1" : "0",
  });
}

if (import.meta.main) await serve();

/** A job's payload: a webhook whose data is the event's, as JSON. */
type Job = Omit<Webhook, "data"> & { data: unknown };

async function serve() {
  const { url, schema, addr, hook, subs, concurrency } = prototypeEnv();
  const workerSchema = workerSchemaOf(schema);
  // graphile-worker asks for one connection per concurrent job (64 in the bench), but the shared
  // server's max_connections (100) cannot hold that beside other work: 20, Dispatch's most.
  const pool = new pg.Pool({
    connectionString: url,
    max: Math.min(concurrency, 20),
    application_name: "peer",
  });
  // graphile-worker asks for both handlers: a lost connection is logged, not fatal.
  const lost = (error: Error) => console.error(`Connection failed: ${error.message}`);
  pool.on("error", lost);
  pool.on("connect", (client) => client.on("error", lost));
  // Warnings and errors only, as Dispatch runs in the bench (LOG_LEVEL=warn).
  const logger = new Logger(() => (level, message) => {
    if (level === "warning" || level === "error") console.error(`${level}: ${message}`);
  });

  await pool.query(`
    DROP SCHEMA IF EXISTS "${workerSchema}" CASCADE;
    DROP TABLE IF EXISTS "${schema}".peer_events;
    CREATE TABLE "${schema}".peer_events (
      id text PRIMARY KEY, type text NOT NULL, data jsonb,
      created_at timestamptz NOT NULL DEFAULT now())`);
  await runMigrations({ pgPool: pool, schema: workerSchema, logger });

  const send = await webhookSender(hook);
  const deliver: Task = async (payload) => {
    const job = payload as Job;
    const webhook = { ...job, data: JSON.stringify(job.data) };
    const status = await send(webhook, AbortSignal.timeout(10_000));
    if (status < 200 || status > 299) throw new Error(`Receiver answered ${status}`);
  };
  if (Deno.env.get("PEER_WORKER") === "1") {
    // SIGTERM ends the process at once, as it does the bare prototype.
    await run({
      pgPool: pool,
      schema: workerSchema,
      concurrency,
      noHandleSignals: true,
      logger,
      taskList: { deliver },
      ...(Deno.env.get("PEER_BATCHING") === "1"
        ? {
          preset: {
            worker: {
              localQueue: { size: concurrency + 1 },
              completeJobBatchDelay: 0,
              failJobBatchDelay: 0,
            },
          },
        }
        : {}),
    });
  }

  const insertEvent = `INSERT INTO "${schema}".peer_events (id, type, data)
    VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING`;
  const addJobs = `SELECT FROM "${workerSchema}".add_jobs(ARRAY(
    SELECT ROW('deliver', p, NULL, NULL, NULL, NULL, NULL, NULL)::"${workerSchema}".job_spec
    FROM json_array_elements($1::json) p))`;
  const [host, port] = addr.split(":");
  Deno.serve({ hostname: host!, port: Number(port), onListen() {} }, async (req) => {
    if (req.method === "GET") return new Response("ok");
    const e = await req.json() as { id?: unknown; type?: unknown; data?: unknown };
    if (typeof e.type !== "string" || (e.id !== undefined && typeof e.id !== "string")) {
      return new Response(null, { status: 422 });
    }
    const id = e.id ?? crypto.randomUUID();
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      const inserted = await client.query(insertEvent, [id, e.type, JSON.stringify(e.data)]);
      if (inserted.rowCount) {
        const jobs: Job[] = subs.map((subscriptionId) => ({
          eventId: id,
          subscriptionId,
          type: e.type as string,
          data: e.data ?? null,
        }));
        await client.query(addJobs, [JSON.stringify(jobs)]);
      }
      await client.query("COMMIT");
      return Response.json({ id }, { status: inserted.rowCount ? 201 : 200 });
    } catch (error) {
      await client.query("ROLLBACK");
      throw error;
    } finally {
      client.release();
    }
  });
}
