import assert from "node:assert/strict";
import { loadConfig } from "../../src/config.ts";
import { silentLogger } from "../../src/observability/log.ts";
import { startService } from "../../src/service.ts";
import { type TestDatabase, testDatabase } from "../helpers/db.ts";
import { startReceiver } from "../helpers/receiver.ts";
import { eventually, serviceEnv } from "../helpers/service.ts";
import { startTcpProxy, throughProxy } from "../helpers/tcp_proxy.ts";

/** Posts until the API accepts: a producer's retry, safe because ingest is idempotent. */
async function postEvent(url: string, id: string) {
  for (let attempt = 0;; attempt++) {
    const res = await fetch(`${url}/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id, type: "a", data: {} }),
    });
    await res.body?.cancel();
    if (res.status === 201 || res.status === 200) return;
    if (attempt > 50) throw new Error(`POST /events kept answering ${res.status}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Runs the service against `databaseUrl`, cuts its connections while
 * deliveries are in flight and again after more events, and checks that all
 * 40 events end delivered without anyone stepping in.
 */
async function survivesCuts(
  db: TestDatabase,
  options: { databaseUrl: string; cut: () => unknown },
) {
  const receiver = startReceiver(async () => {
    await new Promise((r) => setTimeout(r, 30));
    return new Response("ok");
  });
  const config = loadConfig(serviceEnv({ ...db, url: options.databaseUrl }));
  const svc = await startService(config, { role: "serve", log: silentLogger });
  try {
    const res = await fetch(`${svc.url}/subscriptions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ url: receiver.url }),
    });
    await res.body?.cancel();
    for (let i = 0; i < 20; i++) await postEvent(svc.url!, `before_${i}`);
    await receiver.waitFor(1);
    // Deliveries are in flight: claims, completions and LISTEN all lose their connection.
    await options.cut();
    for (let i = 0; i < 20; i++) await postEvent(svc.url!, `after_${i}`);
    await options.cut();
    await eventually(async () => {
      const [r] = await db.sql`
        SELECT count(*) FILTER (WHERE status = 'delivered')::int AS n FROM deliveries`;
      return r!.n === 40 ? true : undefined;
    }, { timeoutMs: 30_000, what: "all 40 deliveries to be delivered" });
    // Every request counted, not a set of ids: a result lost with its connection would show
    // as a lease_expired attempt and a second request after the lease.
    const counts = new Map<string, number>();
    for (const r of receiver.received) {
      const id = r.headers.get("webhook-id")!;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    assert.equal(counts.size, 40);
    assert.deepEqual([...counts.values()].filter((n) => n !== 1), []);
    const attempts = await db.sql`
      SELECT count(*)::int AS n, count(*) FILTER (WHERE error_class IS NOT NULL)::int AS failed
      FROM delivery_attempts`;
    assert.deepEqual(attempts[0], { n: 40, failed: 0 });
  } finally {
    await svc.stop();
    await receiver.close();
  }
}

Deno.test("when every database connection is cut mid-flight, the service recovers by itself and loses nothing", async () => {
  const db = await testDatabase();
  const target = new URL(db.url);
  const proxy = startTcpProxy({ hostname: target.hostname, port: Number(target.port || 5432) });
  try {
    await survivesCuts(db, { databaseUrl: throughProxy(db.url, proxy), cut: () => proxy.cut() });
  } finally {
    await proxy.close();
    await db.close();
  }
});

Deno.test({
  name: "when PostgreSQL terminates the service's backends, it reconnects and loses nothing",
  // PGlite has one backend for every connection: terminating it ends the test's own session.
  ignore: Deno.env.get("DISPATCH_TEST_EMBEDDED") === "1",
  async fn() {
    const db = await testDatabase();
    try {
      await survivesCuts(db, {
        databaseUrl: db.url,
        async cut() {
          const killed = await db.sql`
            SELECT pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE application_name = ${`dispatch:${db.schema}`}`;
          assert.ok(killed.length > 0, "the service had no backend to terminate");
        },
      });
    } finally {
      await db.close();
    }
  },
});
