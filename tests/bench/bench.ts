/**
 * `deno task bench`: end-to-end throughput and latency of a real Dispatch
 * process on PostgreSQL (REST ingest → PostgreSQL → signed delivery → 2xx),
 * with a counting receiver and a keep-alive load generator in this process.
 * Prints one JSON line per run. Bounded: every run has a deadline.
 *
 * Modes: `--mode burst --events E --subs S --producers K [--batch N]`,
 * `--mode rate --rate R --seconds T --subs S`, `--mode single`; no mode runs
 * the whole target set. `--fanout [--repeat N]` compares fan-out among many
 * subscriptions with the matching ones alone, side by side: 10,000
 * subscriptions that do not match plus 1 that does, and 10,000 tenants × 2
 * subscriptions with events spread over the tenants. `--dead [--repeat N]`
 * puts a dead endpoint (connection refused) with 10,000 retrying
 * deliveries beside a healthy one at 500 events/s, with the circuit breaker
 * on and off, and compares the healthy one's latency with a run without it.
 * `--fifo [--repeat N]` measures a subscription with `ordering: "fifo"` and
 * events spread over 1, 10 and 1,000 ordering keys beside one without
 * ordering (each key's deliveries go one at a time, so 1 key is one queue).
 * `--sql [--repeat N]` compares ingest through `dispatch_publish()` (32
 * connections, each call its own transaction, then 10 calls a transaction)
 * with `POST /events` (32 producers), side by side.
 * `--filters [--repeat N]` compares ingest (API only, no workers) with 1,000
 * subscriptions that match the type, each with a payload filter the events
 * pass, with the same subscriptions without filters.
 * `--schema [--repeat N]` compares ingest of events whose `data` has 20
 * properties, validated against a 20-property schema of the event-type
 * catalog, with the same events without a schema.
 * `--bare [--events E --subs S --producers K] [--repeat N]` runs a bare
 * minimum of the same work (bare.ts) just before Dispatch's burst of that
 * shape. `--peer [--bare] [--events E --subs S --producers K] [--repeat N]`
 * runs a webhook dispatcher built on graphile-worker (peer.ts; with its
 * defaults, or its batching options with `--peer-batching`), and with
 * `--bare` the bare minimum, just before Dispatch's burst of that shape;
 * `--peer --batch N` compares ingest alone (no workers): the peer's
 * `POST /events` with Dispatch's, one event a request and N a request
 * (`POST /events/batch`). Every run prints its CPU-ms per delivery, the
 * process under test's and PostgreSQL's, read from /proc (cpu.ts).
 * `--processes [--repeat N]` runs bursts (20,000 events × 1 subscription,
 * 5,000 × 4) with one `api` and 1, 2 and 4 `worker` processes, and with two
 * `serve` processes (the producers split across both), each beside one
 * `serve` before them; CPU is counted per kind of process.
 * `--replica URL [--readers K --events E]` runs a burst while K clients (default 8)
 * list events and deliveries, with lists read from the primary, then from
 * the replica at URL (DATABASE_READ_URL).
 * `--pg` adds, to any of these, what PostgreSQL spent on each run
 * (pg_limits.ts): statements, WAL and wait events.
 * `--tail [--rate R --seconds T] [--repeat N]` runs the bare prototype and
 * Dispatch at the same low rate (default 200 events/s), one after the
 * other, and prints each one's p50, p99 and their ratio, with where the
 * slowest 1 % spent its time (stages.ts). Every rate run prints its stages.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { connect } from "../../src/db/pool.ts";
import { EventCatalog } from "../../src/http/event_types/catalog.ts";
import { databaseOf, perDelivery, startCpuMeter } from "./cpu.ts";
import { startBare } from "./bare.ts";
import { formatPgFigures, openPgProbe, startPgProbe } from "./pg_limits.ts";
import { startPeer, workerSchemaOf } from "./peer.ts";
import { breakdown, fillFromDatabase, startLagMeter, type Timeline, wallClock } from "./stages.ts";
import {
  denoFlags,
  freePort,
  pct,
  round,
  rssMb,
  sleep,
  startDispatch,
  stop,
  waitForHealth,
} from "./harness.ts";

const url = Deno.env.get("DATABASE_URL");
if (!url) {
  console.error(
    "DATABASE_URL is unset: the benchmark needs a real PostgreSQL server, not the embedded one",
  );
  Deno.exit(2);
}

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    mode: { type: "string" },
    events: { type: "string", default: "20000" },
    subs: { type: "string", default: "1" },
    producers: { type: "string", default: "32" },
    batch: { type: "string", default: "1" },
    rate: { type: "string", default: "200" },
    seconds: { type: "string", default: "20" },
    concurrency: { type: "string", default: "64" },
    fanout: { type: "boolean", default: false },
    dead: { type: "boolean", default: false },
    fifo: { type: "boolean", default: false },
    sql: { type: "boolean", default: false },
    filters: { type: "boolean", default: false },
    schema: { type: "boolean", default: false },
    bare: { type: "boolean", default: false },
    processes: { type: "boolean", default: false },
    replica: { type: "string" },
    readers: { type: "string", default: "8" },
    pg: { type: "boolean", default: false },
    peer: { type: "boolean", default: false },
    "peer-batching": { type: "boolean", default: false },
    tail: { type: "boolean", default: false },
    repeat: { type: "string", default: "2" },
  },
});

interface Run {
  name: string;
  mode: "burst" | "rate" | "single";
  events: number;
  subs: number;
  producers?: number;
  batch?: number;
  rate?: number;
  /** Subscriptions besides the matching ones, that no event matches. */
  nonMatching?: number;
  /** `subs` subscriptions for each of this many tenants, events spread over them in turn. */
  tenants?: number;
  /** The scenarios whose figures this run is compared with. */
  baselines?: string[];
  /** Retrying deliveries of a dead endpoint (connection refused), due at the start. */
  deadBacklog?: number;
  /** Dispatch's environment for this run, beside the bench's own. */
  env?: Record<string, string>;
  /** The subscriptions' ordering fifo, the events spread over this many ordering keys in turn. */
  fifoKeys?: number;
  /** Each producer publishes through its own connection with `dispatch_publish()`, not HTTP. */
  viaSql?: boolean;
  /** The matching subscriptions' payload filter. */
  filter?: string;
  /** Only the API runs: ingest is measured alone, nothing is delivered. */
  apiOnly?: boolean;
  /** Events' `data` has this many properties (default one). */
  dataProperties?: number;
  /** The catalog has a schema for the events' type that names each of their properties. */
  schema?: boolean;
  /** The bare prototype (bare.ts) runs instead of Dispatch. */
  bare?: boolean;
  /** One `api` process and this many `worker` processes instead of one `serve`. */
  workers?: number;
  /** This many `serve` processes, the producers spread over them in turn. */
  serves?: number;
  /** Clients that list events and deliveries over and over during the run. */
  readers?: number;
  /** The graphile-worker peer (peer.ts) runs instead of Dispatch. */
  peer?: boolean;
}

const fanoutBurst = { mode: "burst" as const, events: 10000, producers: 32, batch: 1 };
const fanoutRuns: Run[] = [
  { name: "fanout-1-alone", ...fanoutBurst, subs: 1 },
  {
    name: "fanout-1-among-10000",
    ...fanoutBurst,
    subs: 1,
    nonMatching: 10000,
    baselines: ["fanout-1-alone"],
  },
  { name: "fanout-2-one-tenant", ...fanoutBurst, subs: 2, tenants: 1 },
  {
    name: "fanout-10000-tenants-x2",
    ...fanoutBurst,
    subs: 2,
    tenants: 10000,
    baselines: ["fanout-2-one-tenant"],
  },
];

const healthyRate = { mode: "rate" as const, events: 500 * 10, subs: 1, rate: 500 };
const deadRuns: Run[] = [
  { name: "healthy-500", ...healthyRate },
  {
    name: "beside-dead-breaker-off",
    ...healthyRate,
    deadBacklog: 10000,
    env: { CIRCUIT_FAILURE_THRESHOLD: "0" },
    baselines: ["healthy-500"],
  },
  {
    name: "beside-dead-breaker-on",
    ...healthyRate,
    deadBacklog: 10000,
    env: { CIRCUIT_FAILURE_THRESHOLD: "10" },
    baselines: ["healthy-500"],
  },
];

const fifoBurst = { mode: "burst" as const, events: 3000, subs: 1, producers: 32, batch: 1 };
const fifoRuns: Run[] = [
  { name: "ordering-none", ...fifoBurst },
  ...[1, 10, 1000].map((keys) => ({
    name: `fifo-${keys}-keys`,
    ...fifoBurst,
    // One key is one queue, a delivery at a time: fewer events, so it ends within the deadline.
    ...(keys === 1 ? { events: 1000 } : {}),
    fifoKeys: keys,
    baselines: ["ordering-none"],
  })),
];

const ingestBurst = { mode: "burst" as const, events: 10000, subs: 1, producers: 32, batch: 1 };
const sqlRuns: Run[] = [
  { name: "ingest-rest", ...ingestBurst },
  { name: "ingest-sql", ...ingestBurst, viaSql: true, baselines: ["ingest-rest"] },
  {
    name: "ingest-sql-10-per-tx",
    ...ingestBurst,
    batch: 10,
    viaSql: true,
    baselines: ["ingest-rest"],
  },
];

const filterBurst = {
  mode: "burst" as const,
  events: 500,
  subs: 1000,
  producers: 32,
  batch: 1,
  apiOnly: true,
};
const filterRuns: Run[] = [
  { name: "ingest-1000-unfiltered", ...filterBurst },
  {
    name: "ingest-1000-filtered",
    ...filterBurst,
    filter: '$.data.n >= 1 && $.type == "bench.event"',
    baselines: ["ingest-1000-unfiltered"],
  },
];

const schemaBurst = { ...fanoutBurst, subs: 1, dataProperties: 20 };
const schemaRuns: Run[] = [
  { name: "data20-no-schema", ...schemaBurst },
  { name: "data20-schema20", ...schemaBurst, schema: true, baselines: ["data20-no-schema"] },
];

// The bare minimum of the same work just before Dispatch's burst, for `--bare`.
const bareBurst = {
  mode: "burst" as const,
  events: Number(args.events),
  subs: Number(args.subs),
  producers: Number(args.producers),
  batch: 1,
};
const bareRuns: Run[] = [
  { name: `bare-s${bareBurst.subs}`, ...bareBurst, bare: true },
  { name: `dispatch-s${bareBurst.subs}`, ...bareBurst, baselines: [`bare-s${bareBurst.subs}`] },
];

// Several processes on one database, each beside one `serve` in the same round.
const processRuns: Run[] = [{ subs: 1, events: 20000 }, { subs: 4, events: 5000 }].flatMap(
  ({ subs, events }) => {
    const burst = { mode: "burst" as const, events, subs, producers: 32, batch: 1 };
    const baseline = `serve-1-s${subs}`;
    return [
      { name: baseline, ...burst },
      ...[1, 2, 4].map((workers) => ({
        name: `api-1-workers-${workers}-s${subs}`,
        ...burst,
        workers,
        baselines: [baseline],
      })),
      { name: `serve-2-s${subs}`, ...burst, serves: 2, baselines: [baseline] },
    ];
  },
);

// Lists read from the primary, then from a streaming replica, under the same burst.
const listBurst = {
  mode: "burst" as const,
  events: Number(args.events),
  subs: 1,
  producers: 32,
  batch: 1,
  readers: Number(args.readers),
};
const replicaRuns: Run[] = [
  { name: "lists-on-primary", ...listBurst },
  {
    name: "lists-on-replica",
    ...listBurst,
    env: { DATABASE_READ_URL: args.replica ?? "" },
    baselines: ["lists-on-primary"],
  },
];

// `--peer`: the graphile-worker peer's burst just before Dispatch's (the bare
// minimum's too with `--bare`); with `--batch N` (N > 1), ingest alone instead:
// the peer's `POST /events` against Dispatch's, one event a request and N.
const shape = `s${bareBurst.subs}`;
const peer = args["peer-batching"] ? "peer-batched" : "peer";
const peerIngest = { ...bareBurst, apiOnly: true };
const peerRuns: Run[] = Number(args.batch) > 1
  ? [
    { name: "peer-ingest", ...peerIngest, peer: true },
    { name: "dispatch-ingest", ...peerIngest, baselines: ["peer-ingest"] },
    {
      name: `dispatch-batch${args.batch}-ingest`,
      ...peerIngest,
      batch: Number(args.batch),
      baselines: ["peer-ingest"],
    },
  ]
  : [
    ...(args.bare ? [{ name: `bare-${shape}`, ...bareBurst, bare: true }] : []),
    { name: `${peer}-${shape}`, ...bareBurst, peer: true },
    {
      name: `dispatch-${shape}`,
      ...bareBurst,
      baselines: [`${peer}-${shape}`, ...(args.bare ? [`bare-${shape}`] : [])],
    },
  ];

// The bare minimum at a low rate just before Dispatch at it, for `--tail`.
const tailRate = {
  mode: "rate" as const,
  rate: Number(args.rate),
  events: Number(args.rate) * Number(args.seconds),
  subs: 1,
};
const tailRuns: Run[] = [
  { name: `bare-rate${tailRate.rate}`, ...tailRate, bare: true },
  { name: `dispatch-rate${tailRate.rate}`, ...tailRate, baselines: [`bare-rate${tailRate.rate}`] },
];

const compared = args.peer
  ? peerRuns
  : args.fanout
  ? fanoutRuns
  : args.dead
  ? deadRuns
  : args.sql
  ? sqlRuns
  : args.fifo
  ? fifoRuns
  : args.filters
  ? filterRuns
  : args.schema
  ? schemaRuns
  : args.bare
  ? bareRuns
  : args.processes
  ? processRuns
  : args.replica
  ? replicaRuns
  : args.tail
  ? tailRuns
  : null;
const runs: Run[] = compared
  ? Array.from({ length: Number(args.repeat) }, () => compared).flat()
  : args.mode
  ? [{
    name: "custom",
    mode: args.mode as Run["mode"],
    events: args.mode === "rate" ? Number(args.rate) * Number(args.seconds) : Number(args.events),
    subs: Number(args.subs),
    ...(args.mode === "burst"
      ? { producers: Number(args.producers), batch: Number(args.batch) }
      : {}),
    ...(args.mode === "rate" ? { rate: Number(args.rate) } : {}),
  }]
  : [
    { name: "single-idle", mode: "single", events: 20, subs: 1 },
    { name: "burst-s1", mode: "burst", events: 20000, subs: 1, producers: 32, batch: 1 },
    { name: "burst-s4", mode: "burst", events: 5000, subs: 4, producers: 32, batch: 1 },
    { name: "burst-batch100", mode: "burst", events: 20000, subs: 1, producers: 4, batch: 100 },
    { name: "rate-200", mode: "rate", events: 200 * 20, subs: 1, rate: 200 },
    { name: "rate-1000", mode: "rate", events: 1000 * 20, subs: 1, rate: 1000 },
  ];

// --- receiver: counts and timestamps arrivals, verifies nothing ---
const arrivals = new Map<string, number[]>();
let received = 0;
let onArrival = () => {};
const receiver = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
  const key = `${req.headers.get("webhook-id")} ${req.headers.get("x-dispatch-subscription-id")}`;
  const list = arrivals.get(key);
  if (list) list.push(performance.now());
  else arrivals.set(key, [performance.now()]);
  received++;
  onArrival();
  return new Response(null, { status: 204 });
});

// --- Dispatch under test, in a schema of its own ---
const schema = `bench_${Date.now()}`;
const admin = connect(url, { max: 1 });
await admin.unsafe(`CREATE SCHEMA ${schema}`);
const [pg] = await admin<{ version: string; sync: string }[]>`
  SELECT current_setting('server_version') AS version,
    current_setting('synchronous_commit') AS sync`;
const probe = args.pg ? await openPgProbe(url) : null;
/** Dispatch's processes of the current run; the first takes /readyz before the others start. */
let processes: { kind: string; child: Deno.ChildProcess }[] = [];

const results: (Awaited<ReturnType<typeof execute>> & CpuPerDelivery)[] = [];
try {
  for (const run of runs) {
    // Fresh processes per run, so each run's peak RSS is its own.
    await emptyQueue();
    const bases = await startProcesses(run);
    if (!run.bare && !run.peer) await resetSubscriptions(run);
    const byKind = Object.groupBy(processes, (p) => p.kind);
    const cpu = startCpuMeter(
      processes.length === 1 ? processes[0]!.child.pid : Object.fromEntries(
        Object.entries(byKind).map(([k, ps]) => [k, ps!.map((p) => p.child.pid)]),
      ),
      databaseOf(url),
    );
    const pgProbe = probe ? await startPgProbe(probe) : null;
    const executed = await execute(run, bases);
    const pgFigures = await pgProbe?.stop();
    const cpuMs = cpu.stop();
    // Per event where nothing is delivered (API-only runs).
    const result = {
      ...executed,
      cpu_ms_per_delivery: perDelivery(cpuMs, executed.deliveries || executed.events),
    };
    results.push(result);
    const peaks = processes.map((p) => rssMb(p.child, "VmHWM"));
    console.log(JSON.stringify({
      ...result,
      cpu_ms: cpuMs,
      machine: { cores: navigator.hardwareConcurrency, load_average: loadAverage() },
      deno: Deno.version.deno,
      postgres: pg!.version,
      synchronous_commit: pg!.sync,
      worker_concurrency: Number(args.concurrency),
      dispatch_rss_mb: rssMb(processes[0]!.child, "VmRSS"),
      dispatch_peak_rss_mb: Math.max(...peaks),
      ...(processes.length > 1
        ? { processes: processes.map((p) => p.kind).join(" + "), peak_rss_mb: peaks }
        : {}),
    }));
    if (pgFigures) {
      console.log(formatPgFigures(run.name, pgFigures, executed.deliveries || executed.events));
    }
    await stopProcesses();
  }
  if (args.tail) printTail(results);
  else if (compared) printComparison(results);
  if (args.schema) await printValidationCost(20);
} finally {
  await stopProcesses();
  await receiver.shutdown();
  await probe?.end();
  await admin.unsafe(`DROP SCHEMA ${schema} CASCADE`);
  await admin.unsafe(`DROP SCHEMA IF EXISTS ${workerSchemaOf(schema)} CASCADE`);
  await admin.end();
}

/**
 * The run's processes: one `serve` (or `api`, or the bare prototype), one
 * `api` and `run.workers` workers, or `run.serves` serve processes. The
 * first migrates the schema alone before the others start. Returns the
 * base URLs that take events.
 */
async function startProcesses(run: Run): Promise<string[]> {
  const start = (kind: "serve" | "api" | "worker") => {
    const port = freePort();
    const child = startDispatch({
      url: url!,
      schema,
      port,
      role: kind,
      env: { WORKER_CONCURRENCY: args.concurrency!, ...run.env },
    });
    processes.push({ kind, child });
    return `http://127.0.0.1:${port}`;
  };
  if (run.bare || run.peer) {
    const port = freePort();
    const prototype = {
      url: url!,
      schema,
      addr: `127.0.0.1:${port}`,
      hook: `http://127.0.0.1:${receiver.addr.port}/hook/`,
      subs: run.subs,
      concurrency: Number(args.concurrency),
      denoFlags: denoFlags(),
    };
    processes.push(
      run.bare ? { kind: "bare", child: startBare(prototype) } : {
        kind: "peer",
        child: startPeer({ ...prototype, worker: !run.apiOnly, batching: args["peer-batching"] }),
      },
    );
    await waitForHealth(`http://127.0.0.1:${port}`);
    return [`http://127.0.0.1:${port}`];
  }
  const first = start(run.apiOnly || run.workers ? "api" : "serve");
  await waitForHealth(first);
  const others = [
    ...Array.from({ length: run.workers ?? 0 }, () => start("worker")),
    ...Array.from({ length: (run.serves ?? 1) - 1 }, () => start("serve")),
  ];
  await Promise.all(others.map(waitForHealth));
  return [first, ...(run.serves ? others : [])];
}

async function stopProcesses() {
  await Promise.all(processes.map((p) => stop(p.child)));
  processes = [];
}

/** The machine's load average over 1, 5 and 15 minutes (/proc/loadavg). */
function loadAverage(): number[] {
  return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).map(Number);
}

async function execute(run: Run, bases: string[]) {
  arrivals.clear();
  received = 0;
  const sent = new Map<string, number>();
  const answered = new Map<string, number>();
  const prefix = `${run.name}_${Date.now()}_`;
  // Spread over the tenants in turn, by the event's number.
  const eventOf = (id: string) => ({
    id,
    type: run.tenants ? "order.created" : "bench.event",
    ...(run.tenants
      ? { tenant_id: `tenant_${Number(id.slice(prefix.length)) % run.tenants}` }
      : {}),
    ...(run.fifoKeys
      ? { ordering_key: `key_${Number(id.slice(prefix.length)) % run.fifoKeys}` }
      : {}),
    data: run.dataProperties ? benchData(run.dataProperties) : { n: 1 },
  });
  const expected = run.apiOnly ? 0 : run.events * run.subs;
  let lag: ReturnType<typeof startLagMeter> | null = null;
  const t0 = performance.now();
  let ingestEnd = t0;
  let rejected = 0;
  let listed: Awaited<ReturnType<ReturnType<typeof listOverAndOver>["stop"]>> | null = null;

  // One connection per producer, opened before the clock starts.
  const producers = run.viaSql ? connect(url!, { max: run.producers ?? 32 }) : null;
  if (producers) {
    await Promise.all(Array.from({ length: run.producers ?? 32 }, () => producers`SELECT 1`));
  }
  const publish = `${schema}.dispatch_publish`;

  const post = async (ids: string[], base = bases[0]!) => {
    const now = performance.now();
    for (const id of ids) sent.set(id, now);
    if (producers) {
      // A batch is one transaction's events, as a producer that publishes several at once.
      await producers.begin(async (tx) => {
        for (const e of ids.map(eventOf)) {
          await tx`SELECT ${tx(publish)}(${e.id}, ${e.type},
            ${JSON.stringify(e.data)}::text::jsonb, NULL, ${e.tenant_id ?? null})`;
        }
      });
      return;
    }
    const one = ids.length === 1 && run.batch !== undefined && run.batch <= 1;
    const body = one || run.mode !== "burst"
      ? JSON.stringify(eventOf(ids[0]!))
      : JSON.stringify({ events: ids.map(eventOf) });
    const res = await fetch(`${base}/events${one || run.mode !== "burst" ? "" : "/batch"}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    await res.body?.cancel();
    if (run.mode === "rate") answered.set(ids[0]!, performance.now());
    if (res.status !== 201 && res.status !== 200) rejected += ids.length;
  };

  if (run.mode === "single") {
    for (let i = 0; i < run.events; i++) {
      const before = received;
      await post([`${prefix}${i}`]);
      await arrivalCount(before + run.subs, 5000);
      await sleep(50);
    }
    ingestEnd = performance.now();
  } else if (run.mode === "burst") {
    const per = run.batch ?? 1;
    let next = 0;
    const lists = run.readers ? listOverAndOver(run.readers, bases[0]!) : null;
    await Promise.all(Array.from({ length: run.producers ?? 32 }, async (_, p) => {
      while (next < run.events) {
        const start = next;
        next = Math.min(run.events, next + per);
        const ids = [];
        for (let i = start; i < next; i++) ids.push(`${prefix}${i}`);
        await post(ids, bases[p % bases.length]);
      }
    }));
    ingestEnd = performance.now();
    if (lists) {
      await arrivalCount(expected, 60_000).catch(() => {});
      listed = await lists.stop();
    }
  } else {
    lag = startLagMeter();
    const interval = 1000 / run.rate!;
    const inflight = new Set<Promise<void>>();
    for (let i = 0; i < run.events; i++) {
      const due = t0 + i * interval;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      if (inflight.size >= 512) await Promise.race(inflight);
      const p = post([`${prefix}${i}`]).finally(() => inflight.delete(p));
      inflight.add(p);
    }
    await Promise.all(inflight);
    ingestEnd = performance.now();
  }
  await producers?.end();
  const complete = await arrivalCount(expected, 60_000).then(() => true, () => false);
  const end = performance.now();
  const benchLag = lag?.stop();

  const latencies: number[] = [];
  let duplicates = 0;
  let last = t0;
  for (const [key, times] of arrivals) {
    const at = sent.get(key.split(" ")[0]!);
    if (at !== undefined) latencies.push(times[0]! - at);
    if (times.length > 1) duplicates += times.length - 1;
    last = Math.max(last, times[0]!);
  }
  // The first event also pays for the first connection to the receiver.
  const firstKey = [...arrivals.keys()].find((k) => k.startsWith(`${prefix}0 `));
  const first = firstKey && arrivals.get(firstKey)![0]! - sent.get(`${prefix}0`)!;
  latencies.sort((a, b) => a - b);
  const deliveries = arrivals.size;
  const stages = run.mode === "rate" && run.subs === 1
    ? await stagesOf(prefix, run.bare ?? false, sent, answered)
    : undefined;
  return {
    run: run.name,
    mode: run.mode,
    events: run.events,
    subscriptions: run.subs * (run.tenants ?? 1),
    ...(run.nonMatching ? { non_matching_subscriptions: run.nonMatching } : {}),
    ...(run.tenants ? { tenants: run.tenants } : {}),
    ...(run.fifoKeys ? { ordering: "fifo", ordering_keys: run.fifoKeys } : {}),
    ...(run.producers ? { producers: run.producers } : {}),
    ...(run.batch && run.batch > 1 ? { events_per_request: run.batch } : {}),
    ...(run.rate ? { target_rate: run.rate } : {}),
    complete,
    deliveries,
    lost: expected - deliveries,
    duplicates,
    rejected,
    // Tenths below 100/s, where a whole number is too coarse to compare.
    ingest_events_per_s: round(run.events / ((ingestEnd - t0) / 1000), run.subs >= 1000 ? 1 : 0),
    deliveries_per_s: round(deliveries / ((last - t0) / 1000)),
    elapsed_s: round((end - t0) / 1000, 2),
    latency_ms: {
      p50: round(pct(latencies, 0.5), 1),
      p90: round(pct(latencies, 0.9), 1),
      p99: round(pct(latencies, 0.99), 1),
      max: round(latencies.at(-1) ?? NaN, 1),
      ...(run.mode === "single" && first ? { first: round(first, 1) } : {}),
    },
    ...(listed ? { lists: listed } : {}),
    ...(stages ? { stages_ms: stages } : {}),
    ...(benchLag ? { bench_timer_lag_ms: benchLag } : {}),
  };
}

/**
 * `readers` clients that list the newest events and deliveries, in turn, as
 * fast as they are answered, until `stop()`: what a busy console asks of the
 * database. Returns lists a second and their latency.
 */
function listOverAndOver(readers: number, base: string) {
  const t0 = performance.now();
  const times: number[] = [];
  let failed = 0;
  let stopped = false;
  const paths = ["/events?limit=50", "/deliveries?limit=50"];
  const loops = Array.from({ length: readers }, async (_, r) => {
    for (let i = r; !stopped; i++) {
      const start = performance.now();
      const res = await fetch(`${base}${paths[i % paths.length]}`);
      await res.body?.cancel();
      if (res.ok) times.push(performance.now() - start);
      else failed++;
    }
  });
  return {
    async stop() {
      stopped = true;
      await Promise.all(loops);
      const seconds = (performance.now() - t0) / 1000;
      times.sort((a, b) => a - b);
      return {
        readers,
        per_s: round(times.length / seconds),
        failed,
        p50_ms: round(pct(times, 0.5), 1),
        p99_ms: round(pct(times, 0.99), 1),
      };
    },
  };
}

/** Each delivery's way from send to arrival (one subscription: one delivery an event). */
async function stagesOf(
  prefix: string,
  bare: boolean,
  sent: Map<string, number>,
  answered: Map<string, number>,
) {
  const timelines = new Map<string, Timeline>();
  for (const [key, times] of arrivals) {
    const id = key.split(" ")[0]!;
    const at = sent.get(id);
    if (at === undefined) continue;
    const answer = answered.get(id);
    timelines.set(id, {
      sent: wallClock(at),
      arrived: wallClock(times[0]!),
      ...(answer !== undefined ? { answered: wallClock(answer) } : {}),
    });
  }
  await fillFromDatabase(admin, schema, prefix, bare, timelines);
  return breakdown(timelines.values());
}

/** Each run starts from an empty queue: what an earlier run left is not this one's work. */
async function emptyQueue() {
  const [row] = await admin<{ events: string | null }[]>`
    SELECT to_regclass(${`${schema}.events`})::text AS events`;
  if (row?.events) await admin`TRUNCATE ${admin(`${schema}.events`)} CASCADE`;
}

/**
 * The run's subscriptions, written straight to its schema (20,000 through
 * the API would take longer than the run), then analysed as autovacuum would.
 */
async function resetSubscriptions(run: Run) {
  const sql = admin;
  const hook = `http://127.0.0.1:${receiver.addr.port}/hook/`;
  const table = sql(`${schema}.subscriptions`);
  await sql`DELETE FROM ${table}`;
  const tenants = run.tenants ?? 0;
  await sql`
    INSERT INTO ${table} (id, url, event_types, secret, tenant_id, ordering, filter)
    SELECT 'sub_' || t || '_' || i, ${hook} || t || '_' || i,
      ${tenants ? ["order.*"] : ["*"]}::text[], 'bench-secret',
      CASE WHEN ${tenants} > 0 THEN 'tenant_' || t END, ${run.fifoKeys ? "fifo" : "none"},
      ${run.filter ?? null}::text
    FROM generate_series(0, greatest(${tenants}, 1) - 1) t, generate_series(1, ${run.subs}) i`;
  await sql`
    INSERT INTO ${table} (id, url, event_types, secret)
    SELECT 'sub_other_' || i, ${hook} || 'other', ARRAY['other.type_' || i], 'bench-secret'
    FROM generate_series(1, ${run.nonMatching ?? 0}) i`;
  if (run.deadBacklog) {
    const [dead] = await sql<{ seq: number }[]>`
      INSERT INTO ${table} (id, url, event_types, secret)
      VALUES ('sub_dead', ${`http://127.0.0.1:${freePort()}/dead`}, '{dead.event}', 'bench-secret')
      RETURNING seq`;
    await sql`INSERT INTO ${sql(`${schema}.events`)} (id, type, data, fanned_out)
      SELECT 'dead_' || g, 'dead.event', '{}', 1 FROM generate_series(1, ${run.deadBacklog}) g`;
    await sql`INSERT INTO ${sql(`${schema}.deliveries`)}
        (event_id, subscription_id, subscription_seq, status, attempts)
      SELECT 'dead_' || g, 'sub_dead', ${dead!.seq}, 'retrying', 1
      FROM generate_series(1, ${run.deadBacklog}) g`;
    await sql`ANALYZE ${sql(`${schema}.deliveries`)}`;
  }
  await sql`ANALYZE ${table}`;
  await sql`DELETE FROM ${sql(`${schema}.event_types`)}`;
  if (run.schema) {
    await sql`INSERT INTO ${sql(`${schema}.event_types`)} (name, schema)
      VALUES ('bench.event', ${JSON.stringify(benchSchema(run.dataProperties ?? 1))}::text::json)`;
  }
}

/**
 * What the catalog's check costs an event in this process, with a schema of
 * `n` properties and without one: steadier than the end-to-end ratio on a
 * busy machine.
 */
async function printValidationCost(n: number) {
  const type = (name: string, schema: unknown) => ({
    name,
    description: null,
    schema,
    example: null,
    deprecated: false,
  });
  const catalog = new EventCatalog(() =>
    Promise.resolve({
      version: 1,
      types: [type("with.schema", benchSchema(n)), type("without.schema", null)],
    }), { mode: "open" });
  const data = benchData(n);
  const perEvent = async (name: string) => {
    const count = 100_000;
    const t0 = performance.now();
    for (let i = 0; i < count; i++) await catalog.refusal({ type: name, data });
    return round(((performance.now() - t0) * 1000) / count, 2);
  };
  await perEvent("with.schema");
  console.log(
    `\ncatalog check per event, in process: ${await perEvent(
      "with.schema",
    )} µs with a ${n}-property schema, ${await perEvent("without.schema")} µs without`,
  );
}

/** The kind of the `i`th property, and a value of it: strings, integers, numbers and booleans. */
function kind(i: number) {
  const kinds = [["string", "text"], ["integer", 42], ["number", 9.5], ["boolean", true]] as const;
  return kinds[i % kinds.length]!;
}

/** `n` properties, of the four kinds in turn. */
function benchData(n: number): Record<string, unknown> {
  return Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, kind(i)[1]]));
}

/** A schema that requires each of benchData's properties with its kind, and no other. */
function benchSchema(n: number) {
  const names = Array.from({ length: n }, (_, i) => `p${i}`);
  return {
    type: "object",
    required: names,
    additionalProperties: false,
    properties: Object.fromEntries(
      names.map((name, i) => [name, { type: kind(i)[0] }]),
    ),
  };
}

type CpuPerDelivery = { cpu_ms_per_delivery: ReturnType<typeof perDelivery> };

/** Each compared run beside each of its baselines: the same figures, and their ratio. */
function printComparison(results: (Awaited<ReturnType<typeof execute>> & CpuPerDelivery)[]) {
  console.log(
    "\nscenario | ingest events/s | deliveries/s | p50 / p99 ms | CPU-ms per delivery, Dispatch + PostgreSQL | baseline ingest | baseline deliveries/s | baseline p50 / p99 ms | baseline CPU-ms per delivery | ratio",
  );
  const cpuSum = (r: CpuPerDelivery) =>
    r.cpu_ms_per_delivery.dispatch + r.cpu_ms_per_delivery.postgres;
  const cpu = ({ cpu_ms_per_delivery: c }: CpuPerDelivery) =>
    `${c.dispatch} + ${c.postgres}${
      c.by_kind
        ? ` (${Object.entries(c.by_kind).map(([kind, ms]) => `${kind} ${ms}`).join(", ")})`
        : ""
    }`;
  const ratio = (x: number, y: number) => `${Math.round((x / y) * 100)} %`;
  const sums = new Map<
    string,
    {
      ingest: number;
      baseIngest: number;
      deliveries: number;
      baseDeliveries: number;
      cpu: number;
      baseCpu: number;
      apiOnly: boolean;
    }
  >();
  for (const [i, r] of results.entries()) {
    const run = runs[i]!;
    for (const baseline of run.baselines ?? []) {
      // The baseline run just before this one, so the two share the machine's mood.
      const b = results.slice(0, i).findLast((x) => x.run === baseline)!;
      const pair = `${r.run} vs ${baseline}`;
      console.log(
        `${pair} | ${r.ingest_events_per_s} | ${r.deliveries_per_s} | ${r.latency_ms.p50} / ${r.latency_ms.p99} | ${
          cpu(r)
        } | ${b.ingest_events_per_s} | ${b.deliveries_per_s} | ${b.latency_ms.p50} / ${b.latency_ms.p99} | ${
          cpu(b)
        } | ingest ${ratio(r.ingest_events_per_s, b.ingest_events_per_s)}, deliveries ${
          run.apiOnly ? "none (API only)" : ratio(r.deliveries_per_s, b.deliveries_per_s)
        }, CPU per delivery ${ratio(cpuSum(r), cpuSum(b))}`,
      );
      const sum = sums.get(pair) ?? {
        ingest: 0,
        baseIngest: 0,
        deliveries: 0,
        baseDeliveries: 0,
        cpu: 0,
        baseCpu: 0,
        apiOnly: run.apiOnly ?? false,
      };
      sum.cpu += cpuSum(r);
      sum.baseCpu += cpuSum(b);
      sum.ingest += r.ingest_events_per_s;
      sum.baseIngest += b.ingest_events_per_s;
      sum.deliveries += r.deliveries_per_s;
      sum.baseDeliveries += b.deliveries_per_s;
      sums.set(pair, sum);
    }
  }
  if (Number(args.repeat) < 2) return;
  // A single pair is as noisy as the baseline between repeats; sums over all repeats are steadier.
  for (const [name, sum] of sums) {
    console.log(
      `${name}, all ${args.repeat} repeats | ingest ${
        ratio(sum.ingest, sum.baseIngest)
      }, deliveries ${
        sum.apiOnly ? "none (API only)" : ratio(sum.deliveries, sum.baseDeliveries)
      }, CPU per delivery ${ratio(sum.cpu, sum.baseCpu)}`,
    );
  }
}

/** Each Dispatch run at a low rate beside the bare one just before it: latency, ratio, stages. */
function printTail(results: Awaited<ReturnType<typeof execute>>[]) {
  const ratio = (r: (typeof results)[number]) => round(r.latency_ms.p99 / r.latency_ms.p50, 1);
  const stages = (r: (typeof results)[number]) =>
    Object.entries(r.stages_ms ?? {}).map(([name, s]) => `${name} ${s.median} / ${s.tail}`)
      .join(", ");
  console.log(
    "\nrun | p50 / p90 / p99 / max ms | p99 / p50 | stages, median / mean of the slowest 1 % (ms) | bench timer lag p99 / max ms",
  );
  for (const r of results) {
    console.log(
      `${r.run} | ${r.latency_ms.p50} / ${r.latency_ms.p90} / ${r.latency_ms.p99} / ${r.latency_ms.max} | ${
        ratio(r)
      } | ${stages(r)} | ${r.bench_timer_lag_ms?.p99} / ${r.bench_timer_lag_ms?.max}`,
    );
  }
}

function arrivalCount(n: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    if (received >= n) return resolve();
    const timer = setTimeout(() => {
      onArrival = () => {};
      reject(new Error(`Only ${received} of ${n} deliveries arrived in ${timeoutMs} ms`));
    }, timeoutMs);
    onArrival = () => {
      if (received >= n) {
        clearTimeout(timer);
        onArrival = () => {};
        resolve();
      }
    };
  });
}
