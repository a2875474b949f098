import assert from "node:assert/strict";
import { testDatabase } from "../helpers/db.ts";
import { startReceiver } from "../helpers/receiver.ts";
import { eventually, startTestService } from "../helpers/service.ts";
import { startTcpProxy, throughProxy } from "../helpers/tcp_proxy.ts";

const rate = 100; // events per second
const seconds = 5;

Deno.test("a 2 s database outage under load loses nothing, sends nothing twice and needs no rescue", async () => {
  const db = await testDatabase();
  const target = new URL(db.url);
  const proxy = startTcpProxy({ hostname: target.hostname, port: Number(target.port || 5432) });
  const receiver = startReceiver();
  const svc = await startTestService(db, { env: { DATABASE_URL: throughProxy(db.url, proxy) } });
  try {
    await svc.api("POST", "/subscriptions", { url: receiver.url });
    const accepted: number[] = [];
    // A producer that retries until the API accepts: safe, since ingest is idempotent.
    const produce = async (i: number) => {
      for (;;) {
        const res = await fetch(`${svc.url}/events`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ id: `evt_${i}`, type: "load", data: { i } }),
        }).catch(() => null);
        await res?.body?.cancel();
        if (res?.ok) return void accepted.push(performance.now());
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const start = performance.now();
    const producing: Promise<void>[] = [];
    const ticking = (async () => {
      for (let i = 0; i < rate * seconds; i++) {
        producing.push(produce(i));
        const due = start + ((i + 1) * 1000) / rate;
        await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
      }
    })();
    await new Promise((r) => setTimeout(r, 1500));
    await proxy.down();
    const downAt = performance.now();
    await new Promise((r) => setTimeout(r, 2000));
    proxy.up();
    const upAt = performance.now();
    await ticking;
    await Promise.all(producing);
    await eventually(async () => {
      const [row] = await db.sql`
        SELECT count(*) FILTER (WHERE status = 'delivered')::int AS n FROM deliveries`;
      return row!.n === rate * seconds ? true : undefined;
    }, { what: "every event to be delivered", timeoutMs: 30_000 });

    const counts = new Map<string, number>();
    for (const r of receiver.received) {
      const id = r.headers.get("webhook-id")!;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    const duplicates = [...counts.values()].filter((n) => n > 1).length;
    const firstAfter = (times: number[]) =>
      Math.round(Math.min(...times.filter((t) => t >= upAt)) - upAt);
    console.log(JSON.stringify({
      outage_ms: Math.round(upAt - downAt),
      events: rate * seconds,
      received: receiver.received.length,
      duplicates,
      ingest_resumed_ms: firstAfter(accepted),
      delivery_resumed_ms: firstAfter(receiver.received.map((r) => r.at)),
    }));
    assert.equal(counts.size, rate * seconds);
    assert.equal(duplicates, 0);
    const [attempts] = await db.sql`
      SELECT count(*)::int AS n, count(*) FILTER (WHERE error_class IS NOT NULL)::int AS failed
      FROM delivery_attempts`;
    assert.deepEqual(attempts, { n: rate * seconds, failed: 0 });
  } finally {
    proxy.up();
    await svc.stop();
    await receiver.close();
    await proxy.close();
    await db.close();
  }
});
