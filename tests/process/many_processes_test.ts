import assert from "node:assert/strict";
import { testDatabase } from "../helpers/db.ts";
import { spawnDispatch } from "../helpers/process.ts";
import { startReceiver } from "../helpers/receiver.ts";

// MULTI_PROCESS_EVENTS raises the load for a longer run by hand.
const events = Number(Deno.env.get("MULTI_PROCESS_EVENTS") ?? 400);
const subscriptions = 2;

Deno.test("two processes on one database deliver every event to every subscription exactly once", async () => {
  const db = await testDatabase();
  const receiver = startReceiver();
  try {
    const env = { WORKER_CONCURRENCY: "8" };
    const procs = [await spawnDispatch(db, { env }), await spawnDispatch(db, { env })];
    for (let s = 0; s < subscriptions; s++) {
      await procs[0]!.api("POST", "/subscriptions", { url: `${receiver.url}?s=${s}` });
    }
    // Producers post through both APIs at once, 8 at a time.
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async (_, k) => {
      while (next < events) {
        const i = next++;
        const res = await fetch(`${procs[k % 2]!.url}/events`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ id: `evt_${i}`, type: "load", data: { i } }),
        });
        assert.equal(res.status, 201);
        await res.body?.cancel();
      }
    }));
    await receiver.waitFor(events * subscriptions, 60_000);
    // Give any duplicate a moment to show up before counting.
    await new Promise((r) => setTimeout(r, 300));
    const seen = new Map<string, number>();
    for (const r of receiver.received) {
      const key = `${r.headers.get("webhook-id")} ${r.headers.get("x-dispatch-subscription-id")}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
    const duplicates = [...seen.values()].filter((n) => n > 1).length;
    const lost = events * subscriptions - seen.size;
    const [row] = await db.sql`
      SELECT count(*) FILTER (WHERE status = 'delivered')::int AS delivered,
        count(DISTINCT locked_by)::int AS lockers FROM deliveries`;
    const byWorker = await db.sql`
      SELECT count(DISTINCT a.id)::int AS n FROM delivery_attempts a GROUP BY a.subscription_id`;
    console.log(JSON.stringify({
      processes: 2,
      events,
      deliveries: events * subscriptions,
      received: receiver.received.length,
      duplicates,
      lost,
      delivered: row!.delivered,
      attempts: byWorker.reduce((n, r) => n + r.n, 0),
    }));
    assert.equal(duplicates, 0);
    assert.equal(lost, 0);
    assert.equal(row!.delivered, events * subscriptions);
    for (const p of procs) p.child.kill("SIGTERM");
    for (const p of procs) assert.equal(await p.exited, 0);
    // Both processes did deliveries, or this test proved nothing about sharing.
    const workers = new Set(
      procs.flatMap((p) =>
        p.logs.filter((l) => l.msg === "Delivery attempt").length > 0 ? [p] : []
      ),
    );
    assert.equal(workers.size, 2);
  } finally {
    await receiver.close();
    await db.close();
  }
});
