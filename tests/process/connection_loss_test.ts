import assert from "node:assert/strict";
import { type TestDatabase, testDatabase } from "../helpers/db.ts";
import { type DispatchProcess, spawnDispatch } from "../helpers/process.ts";
import { startReceiver } from "../helpers/receiver.ts";
import { eventually } from "../helpers/service.ts";
import { startTcpProxy, throughProxy } from "../helpers/tcp_proxy.ts";

// CONNECTION_LOSS_RUNS repeats the whole scenario, each run with a fresh schema and process
// (the acceptance check runs it 30 times); the suite runs it once.
const runs = Number(Deno.env.get("CONNECTION_LOSS_RUNS") ?? 1);
const subscriptions = 3;
const cuts = 4;

/**
 * Holds every subscription row for 150 ms at a time, on the test's own
 * connection, until `stop` resolves: the worker's result writes that update
 * a subscription's health wait inside their transactions, so a cut finds
 * transactions in flight.
 */
async function holdSubscriptions(db: TestDatabase, stop: Promise<void>) {
  let stopped = false;
  stop.then(() => stopped = true);
  while (!stopped) {
    await db.sql.begin(async (tx) => {
      await tx`SELECT seq FROM subscriptions FOR UPDATE`;
      await new Promise((r) => setTimeout(r, 150));
    });
  }
}

/** Posts `count` events, 4 at a time; returns the ids the API accepted. */
async function produce(url: string, prefix: string, count: number): Promise<string[]> {
  const accepted: string[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (next < count) {
      const id = `${prefix}_${next++}`;
      const res = await fetch(`${url}/events`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ id, type: "cut", data: { id } }),
      }).catch(() => null);
      // Nothing listens any more: the process is gone, which the caller reports.
      if (res === null) return;
      await res.body?.cancel();
      if (res.status === 201) accepted.push(id);
      else assert.equal(res.status, 503, `POST /events answered ${res.status}`);
    }
  }));
  return accepted;
}

/** Cuts every connection of the process both ways at once: from the server and on the wire. */
async function cutEverything(db: TestDatabase, proxy: ReturnType<typeof startTcpProxy>) {
  await db.sql`
    SELECT pg_terminate_backend(pid) FROM pg_stat_activity
    WHERE application_name = ${`dispatch:${db.schema}`}`;
  proxy.cut();
}

async function oneRun(run: number) {
  const db = await testDatabase();
  const target = new URL(db.url);
  const proxy = startTcpProxy({ hostname: target.hostname, port: Number(target.port || 5432) });
  // Every first attempt fails, so each result also writes the subscription's health in a
  // transaction; the second attempt succeeds.
  const tries = new Map<string, number>();
  const receiver = startReceiver((r) => {
    const key = `${r.headers.get("webhook-id")} ${r.headers.get("x-dispatch-subscription-id")}`;
    const n = (tries.get(key) ?? 0) + 1;
    tries.set(key, n);
    return new Response(null, { status: n === 1 ? 500 : 200 });
  });
  let p: DispatchProcess | null = null;
  const stopHolding = Promise.withResolvers<void>();
  let holding: Promise<void> | null = null;
  try {
    p = await spawnDispatch(db, {
      env: {
        DATABASE_URL: throughProxy(db.url, proxy),
        WORKER_CONCURRENCY: "8",
        MAX_ATTEMPTS: "20",
        CIRCUIT_FAILURE_THRESHOLD: "0",
        RETRY_BASE_DELAY_MS: "10",
        RETRY_MAX_DELAY_MS: "100",
      },
    });
    let exit: number | null = null;
    p.exited.then((code) => exit = code);
    const alive = (when: string) =>
      assert.equal(exit, null, `the process exited (${exit}) ${when}: ${p!.stderr()}`);
    for (let s = 0; s < subscriptions; s++) {
      await p.api("POST", "/subscriptions", { url: `${receiver.url}?s=${s}` });
    }
    holding = holdSubscriptions(db, stopHolding.promise);
    const accepted: string[] = [];
    for (let c = 0; c < cuts; c++) {
      const producing = produce(p.url, `r${run}_c${c}`, 40);
      // Cut once results are being written: the receiver has answered a few.
      const seen = receiver.received.length;
      await eventually(
        () =>
          Promise.resolve(exit !== null || receiver.received.length >= seen + 5 ? true : undefined),
        {
          what: "deliveries in flight before the cut",
        },
      );
      alive(`before cut ${c + 1}`);
      await cutEverything(db, proxy);
      accepted.push(...await producing);
      alive(`after cut ${c + 1}`);
    }
    stopHolding.resolve();
    await holding;
    holding = null;
    assert.ok(accepted.length > 0, "no event was accepted");
    const expected = accepted.length * subscriptions;
    // Every delivery ends delivered, those of accepted events included (an event answered
    // 503 may still have been stored: its answer was what the cut lost).
    await eventually(async () => {
      const [r] = await db.sql`
        SELECT count(*) FILTER (WHERE d.status <> 'delivered')::int AS waiting,
          count(*) FILTER (WHERE d.status = 'delivered' AND d.event_id IN ${
        db.sql(accepted)
      })::int AS n
        FROM deliveries d`;
      return r!.waiting === 0 && r!.n === expected ? true : undefined;
    }, { timeoutMs: 60_000, what: `all ${expected} deliveries of run ${run} to be delivered` });
    const answered = new Set(
      receiver.received.map((r) => r.headers.get("webhook-id")).filter((id) => id !== null),
    );
    assert.deepEqual(accepted.filter((id) => !answered.has(id)), []);
    console.log(JSON.stringify({
      run,
      cuts,
      posted: cuts * 40,
      accepted: accepted.length,
      deliveries: expected,
      requests_received: receiver.received.length,
    }));
    alive("after the cuts");
    assert.equal(p.stderr(), "", "the process wrote to stderr");
    p.child.kill("SIGTERM");
    assert.equal(await p.exited, 0);
    p = null;
  } finally {
    stopHolding.resolve();
    await holding?.catch(() => {});
    if (p) {
      try {
        p.child.kill("SIGKILL");
      } catch { /* it already exited */ }
      await p.exited;
    }
    await receiver.close();
    await proxy.close();
    await db.close();
  }
}

Deno.test({
  name:
    "a process survives every connection cut while transactions and small writes are in flight, and delivers everything it accepted",
  // PGlite has one backend for every connection: terminating it ends the test's own session.
  ignore: Deno.env.get("DISPATCH_TEST_EMBEDDED") === "1",
  async fn() {
    for (let run = 1; run <= runs; run++) await oneRun(run);
  },
});
