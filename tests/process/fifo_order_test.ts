import assert from "node:assert/strict";
import { testDatabase } from "../helpers/db.ts";
import { type DispatchProcess, spawnDispatch } from "../helpers/process.ts";
import { startReceiver } from "../helpers/receiver.ts";

const keys = ["k0", "k1", "k2"];
const perKey = 200;
// FIFO_SEED replays another run of the receiver's failures.
const seed = Number(Deno.env.get("FIFO_SEED") ?? 19);

/** mulberry32: a small seeded generator, so a failing run can be replayed. */
function seeded(state: number) {
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The sequence without a delivery repeated right after itself (at least once: an answer lost). */
const withoutRepeats = (ids: string[]) => ids.filter((id, i) => id !== ids[i - 1]);

Deno.test("a fifo subscription's 2xx answers per key follow ingest order across two processes, retries, a SIGKILL, the rescuer and a restart", async () => {
  const db = await testDatabase();
  const random = seeded(seed);
  const answered = new Map(keys.map((k) => [k, [] as string[]]));
  let oks = 0;
  const receiver = startReceiver((r) => {
    if (random() < 0.2) return new Response(null, { status: 500 });
    const id = r.headers.get("webhook-id")!;
    answered.get(id.split("_")[0]!)!.push(id);
    oks++;
    return new Response("ok");
  });
  const env = {
    MAX_ATTEMPTS: "3",
    RETRY_BASE_DELAY_MS: "10",
    RETRY_MAX_DELAY_MS: "40",
    // A lease of 7 s: the killed process's claims are rescued within the test.
    DELIVERY_TIMEOUT_MS: "1000",
    WORKER_CONCURRENCY: "8",
  };
  const procs: DispatchProcess[] = [];
  try {
    procs.push(await spawnDispatch(db, { env }), await spawnDispatch(db, { env }));
    await procs[0]!.api("POST", "/subscriptions", {
      id: "ordered",
      url: receiver.url,
      ordering: "fifo",
    });
    // One producer per key, each waiting for its answer, alternating between the live APIs;
    // a request cut off by the kill is sent again (ingest is idempotent).
    const ingest = new Map(keys.map((k) => [k, [] as string[]]));
    const dead = new Set<DispatchProcess>();
    const live = () => procs.filter((p) => !dead.has(p));
    const producing = Promise.all(keys.map(async (k) => {
      for (let i = 0; i < perKey; i++) {
        const id = `${k}_${i}`;
        const body = { id, type: "order.updated", data: { i }, ordering_key: k };
        for (let tries = 0;; tries++) {
          const api = live()[(i + tries) % live().length]!.api;
          try {
            await api("POST", "/events", body);
            break;
          } catch (err) {
            if (tries === 3) throw err;
          }
        }
        ingest.get(k)!.push(id);
      }
    }));
    // A third of the way, one process dies without a word and another takes its place.
    while (oks < (keys.length * perKey) / 3) await new Promise((r) => setTimeout(r, 10));
    dead.add(procs[0]!);
    procs[0]!.child.kill("SIGKILL");
    await procs[0]!.exited;
    procs.push(await spawnDispatch(db, { env }));
    await producing;
    const deadline = Date.now() + 45_000;
    let waiting = Infinity;
    while (waiting > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      const [row] = await db.sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM deliveries WHERE status NOT IN ('delivered', 'failed')`;
      waiting = row!.n;
    }
    assert.equal(waiting, 0, "every delivery delivered or failed for good");
    const failed = await db.sql<{ event_id: string; last_class: string }[]>`
      SELECT d.event_id, (SELECT a.error_class FROM delivery_attempts a
        WHERE a.delivery_id = d.id ORDER BY a.attempt DESC LIMIT 1) AS last_class
      FROM deliveries d WHERE d.status = 'failed' ORDER BY d.id`;
    const rescued = await db.sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM delivery_attempts WHERE error_class = 'lease_expired'`;
    console.log(JSON.stringify({
      seed,
      events: keys.length * perKey,
      answers_2xx: oks,
      requests: receiver.received.length,
      rescued: rescued[0]!.n,
      failed_for_good: failed.map((f) => f.event_id),
    }));
    const gaveUp = new Set(failed.map((f) => f.event_id));
    for (const k of keys) {
      const got = withoutRepeats(answered.get(k)!);
      // One that failed for good after a 2xx whose answer was lost with the killed process
      // (its last attempt rescued) was answered all the same, in its place.
      const expected = ingest.get(k)!.filter((id) => !gaveUp.has(id) || got.includes(id));
      assert.deepEqual(got, expected, `key ${k}`);
    }
    const everyAnswer = [...answered.values()].flat();
    for (const f of failed.filter((f) => everyAnswer.includes(f.event_id))) {
      assert.equal(f.last_class, "lease_expired", f.event_id);
    }
    // The killed process had claims of its own, or this proved nothing about rescue.
    assert.ok(procs[0]!.logs.some((l) => l.msg === "Delivery attempt"));
  } finally {
    for (const p of procs.slice(1)) p.child.kill("SIGTERM");
    for (const p of procs) await p.exited;
    await receiver.close();
    await db.close();
  }
});
