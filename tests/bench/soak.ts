/**
 * `deno task bench:soak [--minutes N] [--rate R]`: does Dispatch's cost stay
 * flat when it runs for a long time? A real Dispatch process (`serve`, in a
 * schema of its own, with a retention of 3 minutes for events and the audit
 * log, so 1-minute partitions) delivers to a receiver on
 * 127.0.0.1 while producers post one event at a time at a steady rate: `R`
 * events/s, or 70 % of what a short burst (`--calibrate E` events, 32
 * producers) delivers at the start. Bounded: it stops by itself after N
 * minutes (30 by default) and a drain of at most 60 s.
 *
 * Every minute it prints one JSON line: events sent, deliveries received,
 * p50/p99 send-to-arrival of the deliveries that arrived in that minute,
 * Dispatch's RSS, the size of its tables (pg_total_relation_size, indexes
 * and TOAST included) and of their indexes, and their dead tuples. At the
 * end, each series' least-squares slope from minute 5 to the end, whether it
 * is flat (|slope| at most 1 % of the series' mean over that window, per
 * minute), and the lost and duplicate deliveries.
 *
 * From about minute 5 on, each minute's partitions are dropped as a new one
 * fills, so the sizes saw up and down by a partition around a flat line.
 *
 * Ctrl+C (or SIGTERM) ends it early, with the same summary and cleanup:
 * Dispatch stopped, the receiver closed, its schema dropped.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { connect } from "../../src/db/pool.ts";
import { databaseUrl, freePort, rssMb, startDispatch, stop, waitForHealth } from "./harness.ts";
import { pct, round, sleep } from "./harness.ts";

const url = databaseUrl("the soak");

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    minutes: { type: "string", default: "30" },
    rate: { type: "string" },
    calibrate: { type: "string", default: "6000" },
    concurrency: { type: "string", default: "64" },
  },
});
const minutes = Number(args.minutes);
const calibrationEvents = Number(args.calibrate);
if (!Number.isInteger(minutes) || minutes < 1 || !(calibrationEvents >= 100)) {
  console.error("--minutes takes a whole number from 1, --calibrate a number of events from 100");
  Deno.exit(2);
}
/** Minutes from which each series must be flat. */
const steadyFrom = 5;
/** A series is flat when its slope per minute is at most this share of its mean. */
const flatShare = 0.01;
/** 3 minutes (0.0021 days): 1-minute partitions, the narrowest. */
const retentionDays = "0.0021";

const stopping = new AbortController();
const onSignal = () => {
  if (!stopping.signal.aborted) console.error("Stopping early: summary and cleanup follow");
  stopping.abort();
};
Deno.addSignalListener("SIGINT", onSignal);
Deno.addSignalListener("SIGTERM", onSignal);

// --- what was sent and what arrived, by event number ---
const prefix = `soak_${Date.now()}_`;
const calibrationPrefix = `calibrate_${Date.now()}_`;
const sentAt: number[] = [];
/** 1 accepted (201 or 200), 2 refused or failed. */
const outcome: number[] = [];
const arrivals: number[] = [];
let calibrationArrivals = 0;
let minute = { sent: 0, received: 0, rejected: 0, latencies: [] as number[] };

const receiver = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
  const now = performance.now();
  const id = req.headers.get("webhook-id") ?? "";
  if (id.startsWith(prefix)) {
    const n = Number(id.slice(prefix.length));
    arrivals[n] = (arrivals[n] ?? 0) + 1;
    minute.received++;
    if (arrivals[n] === 1 && sentAt[n] !== undefined) minute.latencies.push(now - sentAt[n]);
  } else if (id.startsWith(calibrationPrefix)) calibrationArrivals++;
  return new Response(null, { status: 204 });
});

const schema = `soak_${Date.now()}`;
const admin = connect(url, { max: 1 });
await admin.unsafe(`CREATE SCHEMA ${schema}`);
const port = freePort();
const base = `http://127.0.0.1:${port}`;
let dispatch: Deno.ChildProcess | null = null;
let stoppingDispatch = false;
const series: Record<string, number>[] = [];

try {
  dispatch = startDispatch({
    url,
    schema,
    port,
    role: "serve",
    env: {
      WORKER_CONCURRENCY: args.concurrency!,
      RETENTION_DAYS: retentionDays,
      AUDIT_RETENTION_DAYS: retentionDays,
    },
  });
  dispatch.status.then((s) => {
    if (stoppingDispatch) return;
    console.error(`Dispatch exited on its own (code ${s.code}): stopping the soak`);
    stopping.abort();
  });
  await waitForHealth(base);
  await admin`INSERT INTO ${admin(`${schema}.subscriptions`)} (id, url, event_types, secret)
    VALUES ('sub_soak', ${`http://127.0.0.1:${receiver.addr.port}/hook`}, '{*}', 'soak-secret')`;

  // With autovacuum off (a server's setting) nothing removes dead tuples: the soak says so.
  const [pg] = await admin<{ version: string; autovacuum: string }[]>`
    SELECT current_setting('server_version') AS version,
      current_setting('autovacuum') AS autovacuum`;
  const burst = args.rate ? null : await calibrate();
  const rate = args.rate ? Number(args.rate) : Math.round(burst! * 0.7);
  console.log(JSON.stringify({
    soak: "start",
    minutes,
    rate,
    rate_from: burst
      ? `70 % of a ${calibrationEvents}-event burst: ${burst} deliveries/s`
      : "--rate",
    retention_days: Number(retentionDays),
    worker_concurrency: Number(args.concurrency),
    postgres: pg!.version,
    autovacuum: pg!.autovacuum,
    cores: navigator.hardwareConcurrency,
    load_average: Deno.loadavg().map((l) => round(l, 2)),
  }));

  const t0 = performance.now();
  await Promise.all([produce(t0, rate), report(t0)]);
  const drained = await drain();
  summarize(rate, drained);
} finally {
  stoppingDispatch = true;
  if (dispatch) await stop(dispatch);
  await receiver.shutdown();
  await admin.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.end();
  Deno.removeSignalListener("SIGINT", onSignal);
  Deno.removeSignalListener("SIGTERM", onSignal);
}

/** Deliveries per second of a burst from 32 producers, up to the last arrival. */
async function calibrate(): Promise<number> {
  const t = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (next < calibrationEvents && !stopping.signal.aborted) {
      await post(`${calibrationPrefix}${next++}`);
    }
  }));
  const deadline = performance.now() + 60_000;
  while (calibrationArrivals < next && performance.now() < deadline && !stopping.signal.aborted) {
    await sleep(5);
  }
  return Math.round(calibrationArrivals / ((performance.now() - t) / 1000));
}

/** One event, POST /events; true when Dispatch took it. */
async function post(id: string): Promise<boolean> {
  try {
    const res = await fetch(`${base}/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id, type: "soak.event", data: { n: 1 } }),
    });
    await res.body?.cancel();
    return res.status === 201 || res.status === 200;
  } catch {
    return false;
  }
}

/** Posts event i at t0 + i / rate until the minutes are over, 512 in flight at the most. */
async function produce(t0: number, rate: number) {
  const end = t0 + minutes * 60_000;
  const inflight = new Set<Promise<void>>();
  for (let i = 0; !stopping.signal.aborted; i++) {
    const due = t0 + (i * 1000) / rate;
    if (due >= end) break;
    const wait = due - performance.now();
    if (wait > 1) await nap(wait);
    if (inflight.size >= 512) await Promise.race(inflight);
    sentAt[i] = performance.now();
    minute.sent++;
    const p = post(`${prefix}${i}`).then((ok) => {
      outcome[i] = ok ? 1 : 2;
      if (!ok) minute.rejected++;
      inflight.delete(p);
    });
    inflight.add(p);
  }
  await Promise.all(inflight);
}

/** At each minute's end, that minute's figures and the database's, one JSON line. */
async function report(t0: number) {
  for (let m = 1; m <= minutes; m++) {
    await nap(t0 + m * 60_000 - performance.now());
    if (stopping.signal.aborted) return;
    const { sent, received, rejected, latencies } = minute;
    minute = { sent: 0, received: 0, rejected: 0, latencies: [] };
    latencies.sort((a, b) => a - b);
    const [db] = await admin<{ total: string; indexes: string; dead: string }[]>`
      SELECT
        (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c
          WHERE c.relnamespace = ${schema}::regnamespace AND c.relkind IN ('r', 'p')) AS total,
        (SELECT coalesce(sum(pg_indexes_size(c.oid)), 0) FROM pg_class c
          WHERE c.relnamespace = ${schema}::regnamespace AND c.relkind IN ('r', 'p')) AS indexes,
        (SELECT coalesce(sum(n_dead_tup), 0) FROM pg_stat_user_tables
          WHERE schemaname = ${schema}) AS dead`;
    const line = {
      minute: m,
      sent,
      received,
      p50_ms: round(pct(latencies, 0.5), 1),
      p99_ms: round(pct(latencies, 0.99), 1),
      rss_mb: rssMb(dispatch!, "VmRSS"),
      tables_mb: round(Number(db!.total) / 2 ** 20, 1),
      indexes_mb: round(Number(db!.indexes) / 2 ** 20, 1),
      dead_tuples: Number(db!.dead),
      ...(rejected ? { rejected } : {}),
    };
    series.push(line);
    console.log(JSON.stringify(line));
  }
}

/**
 * Waits for the accepted events' deliveries still on their way: up to 60 s,
 * 5 s when the soak was stopped early. Returns the seconds taken.
 */
async function drain(): Promise<number> {
  const t = performance.now();
  const limit = stopping.signal.aborted ? 5_000 : 60_000;
  const missing = () => outcome.some((o, i) => o === 1 && !arrivals[i]);
  while (performance.now() - t < limit && missing()) await sleep(250);
  return round((performance.now() - t) / 1000, 1);
}

/** Each series' slope from minute 5 on, flat or not, then what was lost or sent twice. */
function summarize(rate: number, drainedS: number) {
  const window = series.filter((s) => s.minute! >= steadyFrom);
  if (window.length < 2) {
    console.log(JSON.stringify({
      series: "none",
      why: `a slope from minute ${steadyFrom} needs --minutes ${steadyFrom + 1} or more`,
    }));
  }
  for (const name of Object.keys(window[0] ?? {})) {
    if (name === "minute" || name === "rejected" || window.length < 2) continue;
    const points = window.map((s) => [s.minute!, s[name] ?? 0] as const);
    const { slope, mean } = leastSquares(points);
    console.log(JSON.stringify({
      series: name,
      from_minute: steadyFrom,
      to_minute: window.at(-1)!.minute,
      slope_per_minute: round(slope, 3),
      mean: round(mean, 1),
      flat: Math.abs(slope) <= flatShare * Math.abs(mean),
    }));
  }
  const accepted = outcome.filter((o) => o === 1).length;
  const refused = outcome.filter((o) => o === 2).length;
  let delivered = 0;
  let duplicates = 0;
  for (const [i, o] of outcome.entries()) {
    if (o !== 1 || !arrivals[i]) continue;
    delivered++;
    duplicates += arrivals[i] - 1;
  }
  console.log(JSON.stringify({
    soak: stopping.signal.aborted ? "stopped early" : "done",
    minutes_reported: series.length,
    target_rate: rate,
    sent: sentAt.length,
    accepted,
    refused,
    delivered,
    lost: accepted - delivered,
    duplicates,
    drained_s: drainedS,
    flat_rule: `|slope| <= ${flatShare * 100} % of the mean per minute, minute ${steadyFrom} on`,
    load_average: Deno.loadavg().map((l) => round(l, 2)),
  }));
}

/** The least-squares slope of y over x, and y's mean. */
function leastSquares(points: readonly (readonly [number, number])[]) {
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return { slope: den === 0 ? 0 : num / den, mean: my };
}

/** Sleeps `ms`, or less when the soak is stopped. */
function nap(ms: number): Promise<void> {
  if (ms <= 0 || stopping.signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      stopping.signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    stopping.signal.addEventListener("abort", done, { once: true });
  });
}
