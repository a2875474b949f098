import assert from "node:assert/strict";
import { assertInvalidField, testApp } from "../helpers/app.ts";
import { handBack, rescueExpired } from "../../src/engine/lease.ts";
import { insertEvents } from "../../src/engine/publish.ts";
import {
  countRows,
  oneSession,
  type TestDatabase,
  testDatabase,
  waitsForLock,
  withTestDatabase,
} from "../helpers/db.ts";
import { claim, complete, outcome } from "../helpers/queue.ts";
import { type Received, startReceiver } from "../helpers/receiver.ts";
import { eventually, startTestService } from "../helpers/service.ts";

const eventIds = (received: Received[]) => received.map((r) => r.headers.get("webhook-id"));

/** A receiver that holds its answer to the events of `held` until `letGo()`; 200 otherwise. */
function holdingReceiver(held: readonly string[]) {
  const gate = Promise.withResolvers<void>();
  const receiver = startReceiver(async (r) => {
    if (held.includes(r.headers.get("webhook-id")!)) await gate.promise;
    return new Response("ok");
  });
  return { ...receiver, letGo: () => gate.resolve() };
}

/** The waiting deliveries of `subscription` parked behind their queue's head, by event id. */
async function parkedForOrder(db: TestDatabase, subscription: string) {
  const rows = await db.sql<{ event_id: string }[]>`
    SELECT event_id FROM deliveries
    WHERE subscription_id = ${subscription} AND held_by = 'ordering'
      AND next_attempt_at = 'infinity' AND status = 'pending'
    ORDER BY id`;
  return rows.map((r) => r.event_id);
}

async function setup(env: Record<string, string> = {}) {
  const db = await testDatabase();
  const svc = await startTestService(db, { env });
  return {
    db,
    api: svc.api,
    publish: async (id: string, ordering_key?: string) =>
      await svc.api("POST", "/events", { id, type: "order.updated", data: {}, ordering_key }),
    async close() {
      await svc.stop();
      await db.close();
    },
  };
}

Deno.test("a fifo subscription sends a key's deliveries one at a time in ingest order while another key flows past a held head", async () => {
  const t = await setup();
  const r = holdingReceiver(["a1"]);
  try {
    const sub = await t.api("POST", "/subscriptions", { id: "fifo", url: r.url, ordering: "fifo" });
    assert.equal(sub.ordering, "fifo");
    for (const i of [1, 2, 3]) await t.publish(`a${i}`, "a");
    for (const i of [1, 2, 3]) await t.publish(`b${i}`, "b");
    // Key b's three all arrive while a1's answer is held; a2 and a3 wait behind it, parked.
    await r.waitFor(4);
    assert.deepEqual(eventIds(r.received).sort(), ["a1", "b1", "b2", "b3"]);
    assert.deepEqual(eventIds(r.received).filter((id) => id!.startsWith("b")), ["b1", "b2", "b3"]);
    assert.deepEqual(await parkedForOrder(t.db, "fifo"), ["a2", "a3"]);
    assert.deepEqual(eventIds(r.received).filter((id) => id!.startsWith("a")), ["a1"]);
    r.letGo();
    await r.waitFor(6);
    assert.deepEqual(eventIds(r.received).filter((id) => id!.startsWith("a")), ["a1", "a2", "a3"]);
    // Every queue is gone once nothing waits in it.
    await eventually(async () => await countRows(t.db.sql, "delivery_queues") === 0 || undefined, {
      what: "the queues to go",
    });
  } finally {
    r.letGo();
    await t.close();
    await r.close();
  }
});

Deno.test("a fifo subscription's held head does not delay a subscription without ordering", async () => {
  const t = await setup();
  const fifo = holdingReceiver(["e0"]);
  const plain = startReceiver();
  try {
    await t.api("POST", "/subscriptions", { id: "fifo", url: fifo.url, ordering: "fifo" });
    const other = await t.api("POST", "/subscriptions", { id: "plain", url: plain.url });
    assert.equal(other.ordering, "none");
    for (let i = 0; i < 10; i++) await t.publish(`e${i}`, "k");
    // All ten reach the other subscription while the fifo one's first answer is held.
    await plain.waitFor(10);
    assert.deepEqual(eventIds(fifo.received), ["e0"]);
    assert.equal((await parkedForOrder(t.db, "fifo")).length, 9);
    fifo.letGo();
    await fifo.waitFor(10);
    assert.deepEqual(eventIds(fifo.received), Array.from({ length: 10 }, (_, i) => `e${i}`));
  } finally {
    fifo.letGo();
    await t.close();
    await fifo.close();
    await plain.close();
  }
});

Deno.test("events without an ordering key form one queue of a fifo subscription", async () => {
  const t = await setup();
  const r = holdingReceiver(["n1"]);
  try {
    await t.api("POST", "/subscriptions", { id: "fifo", url: r.url, ordering: "fifo" });
    for (const id of ["n1", "n2", "n3"]) await t.publish(id);
    await t.publish("k1", "k");
    await r.waitFor(2);
    assert.deepEqual(eventIds(r.received).sort(), ["k1", "n1"]);
    assert.deepEqual(await parkedForOrder(t.db, "fifo"), ["n2", "n3"]);
    r.letGo();
    await r.waitFor(4);
    assert.deepEqual(eventIds(r.received).filter((id) => id!.startsWith("n")), ["n1", "n2", "n3"]);
  } finally {
    r.letGo();
    await t.close();
    await r.close();
  }
});

Deno.test("a batch's events of one key are sent in the order of its items, not of their ids", async () => {
  const t = await setup();
  const r = holdingReceiver(["zz"]);
  try {
    await t.api("POST", "/subscriptions", { id: "fifo", url: r.url, ordering: "fifo" });
    const events = ["zz", "mm", "aa", "yy"].map((id) => ({
      id,
      type: "order.updated",
      data: {},
      ordering_key: "k",
    }));
    await t.api("POST", "/events/batch", { events });
    await r.waitFor(1);
    assert.deepEqual(await parkedForOrder(t.db, "fifo"), ["mm", "aa", "yy"]);
    r.letGo();
    await r.waitFor(4);
    assert.deepEqual(eventIds(r.received), ["zz", "mm", "aa", "yy"]);
  } finally {
    r.letGo();
    await t.close();
    await r.close();
  }
});

Deno.test("a fifo delivery that fails for good lets its queue move on, is listed in the dead letters, and a retry sends it at once", async () => {
  const t = await setup({ MAX_ATTEMPTS: "2" });
  const r = startReceiver((req) =>
    new Response(null, { status: req.headers.get("webhook-id") === "x1" ? 500 : 200 })
  );
  const hold = holdingReceiver(["x4"]);
  try {
    await t.api("POST", "/subscriptions", { id: "fifo", url: r.url, ordering: "fifo" });
    for (const id of ["x1", "x2", "x3"]) await t.publish(id, "x");
    await r.waitFor(4);
    assert.deepEqual(eventIds(r.received), ["x1", "x1", "x2", "x3"]);
    const dead = await t.api("GET", "/deliveries?status=failed");
    assert.deepEqual(dead.data.map((d: { event_id: string }) => d.event_id), ["x1"]);
    // The queue moved on: a retry goes outside it, even while its key's head is held.
    await t.api("PATCH", "/subscriptions/fifo", { url: hold.url });
    await t.publish("x4", "x");
    await hold.waitFor(1);
    await t.api("POST", `/deliveries/${dead.data[0].id}/retry`);
    await hold.waitFor(2);
    assert.deepEqual(eventIds(hold.received), ["x4", "x1"]);
  } finally {
    hold.letGo();
    await hold.close();
    await t.close();
    await r.close();
  }
});

Deno.test("letting held deliveries go never lets one parked behind its queue's head go", async () => {
  const t = await setup();
  const r = holdingReceiver(["q1"]);
  try {
    await t.api("POST", "/subscriptions", { id: "fifo", url: r.url, ordering: "fifo" });
    for (const id of ["q1", "q2", "q3"]) await t.publish(id, "q");
    await r.waitFor(1);
    // A change of limits lets go what they held: nothing here.
    await t.api("PATCH", "/subscriptions/fifo", { max_in_flight: 5 });
    const [released] = await t.db.sql<{ n: number }[]>`
      SELECT dispatch_release_held(seq, 10) AS n FROM subscriptions WHERE id = 'fifo'`;
    assert.equal(released?.n, 0);
    assert.deepEqual(await parkedForOrder(t.db, "fifo"), ["q2", "q3"]);
    r.letGo();
    await r.waitFor(3);
    assert.deepEqual(eventIds(r.received), ["q1", "q2", "q3"]);
  } finally {
    r.letGo();
    await t.close();
    await r.close();
  }
});

Deno.test("PATCH ordering none lets every delivery parked behind a queue's head go at once", async () => {
  const t = await setup();
  const r = holdingReceiver(["p1"]);
  try {
    await t.api("POST", "/subscriptions", { id: "fifo", url: r.url, ordering: "fifo" });
    for (const id of ["p1", "p2", "p3"]) await t.publish(id, "p");
    await r.waitFor(1);
    assert.deepEqual(await parkedForOrder(t.db, "fifo"), ["p2", "p3"]);
    const patched = await t.api("PATCH", "/subscriptions/fifo", { ordering: "none" });
    assert.equal(patched.ordering, "none");
    // Sent while p1 is still held: they no longer wait for it.
    await r.waitFor(3);
    assert.deepEqual(eventIds(r.received).sort(), ["p1", "p2", "p3"]);
  } finally {
    r.letGo();
    await t.close();
    await r.close();
  }
});

Deno.test("a fifo subscription disabled while a queue waits starts that queue afresh once enabled again", () =>
  withTestDatabase(async (db) => {
    await db.engine.createSubscription({
      id: "s",
      tenant_id: null,
      url: "http://127.0.0.1:9/",
      event_types: ["*"],
      description: null,
      secret: "a-secret",
      active: true,
      max_attempts: null,
      rate_limit: null,
      max_in_flight: null,
      ordering: "fifo",
      metadata: {},
    });
    const publish = (id: string) =>
      db.engine.publish([
        { id, type: "a", source: null, data: {}, tenant_id: null, ordering_key: "d" },
      ]);
    for (const id of ["d1", "d2"]) await publish(id);
    assert.deepEqual(await parkedForOrder(db, "s"), ["d2"]);
    // Both are cancelled, the waiting head with them.
    await db.engine.updateSubscription("s", { active: false });
    await db.engine.updateSubscription("s", { active: true });
    await publish("d3");
    assert.deepEqual((await claim(db.sql)).map((d) => d.event_id), ["d3"]);
  }));

Deno.test("a subscription's ordering defaults to none and anything but none or fifo is refused naming the field", async () => {
  const t = await testApp();
  try {
    const created = await t.call("POST", "/subscriptions", { url: "https://example.com/hook" });
    assert.equal(created.status, 201);
    assert.equal((await created.json()).ordering, "none");
    for (const ordering of ["lifo", "", 1, null]) {
      await assertInvalidField(
        await t.call("POST", "/subscriptions", { url: "https://example.com/h", ordering }),
        "ordering",
      );
    }
    await assertInvalidField(
      await t.call("PATCH", "/subscriptions/nope", { ordering: "FIFO" }),
      "ordering",
    );
  } finally {
    await t.close();
  }
});

Deno.test("a fifo queue's head stays its head through a retry, a hand-back and a rescue, and only its end lets the next be claimed", () =>
  withTestDatabase(async (db) => {
    const [sub] = await db.sql<{ seq: number }[]>`
      INSERT INTO subscriptions (id, url, event_types, secret, ordering)
      VALUES ('s', 'http://127.0.0.1:9/', '{*}', 'a-secret', 'fifo') RETURNING seq`;
    await db.sql`INSERT INTO events (id, type, data, fanned_out, ordering_key)
      SELECT 'e' || g, 'a', '{}', 1, 'k' FROM generate_series(1, 3) g`;
    await db.sql`INSERT INTO deliveries (event_id, subscription_id, subscription_seq)
      SELECT 'e' || g, 's', ${sub!.seq} FROM generate_series(1, 3) g ORDER BY g`;
    const claimed = async () => (await claim(db.sql)).map((d) => d.event_id);

    const [first] = await claim(db.sql);
    assert.equal(first?.event_id, "e1");
    assert.equal(await handBack(db.sql, "w", { only: [{ id: first.id, attempt: 1 }] }), 1);
    const [again] = await claim(db.sql);
    assert.deepEqual([again?.event_id, again?.attempt], ["e1", 1]);
    await complete(db.sql, "w", [outcome(again!, "retrying")]);
    const [retried] = await claim(db.sql, { maxAttempts: 2 });
    assert.deepEqual([retried?.event_id, retried?.attempt], ["e1", 2]);
    assert.deepEqual(await claimed(), []);
    // Its worker died: the rescue finds its budget spent, fails it, and the queue moves on.
    await db.sql`UPDATE deliveries SET locked_until = now() - interval '1 second'
      WHERE id = ${retried!.id}`;
    assert.equal(await rescueExpired(db.sql, { maxAttempts: 2, limit: 10 }), 1);
    const [second] = await claim(db.sql);
    assert.equal(second?.event_id, "e2");
    assert.deepEqual(await claimed(), []);
    await complete(db.sql, "w", [outcome(second!, "delivered")]);
    assert.deepEqual(await claimed(), ["e3"]);
  }));

Deno.test({
  name:
    "of two transactions that publish to one key at once, the later waits for the first and queues behind it",
  // The embedded database runs one transaction at a time.
  ignore: Deno.env.get("DISPATCH_TEST_EMBEDDED") === "1",
  fn: () =>
    withTestDatabase(async (db) => {
      await db.sql`INSERT INTO subscriptions (id, url, event_types, secret, ordering)
      VALUES ('s', 'http://127.0.0.1:9/', '{*}', 'a-secret', 'fifo')`;
      const event = (id: string) => ({
        id,
        type: "a",
        source: null,
        data: {},
        tenant_id: null,
        ordering_key: "c",
      });
      const inserted = Promise.withResolvers<void>();
      const commit = Promise.withResolvers<void>();
      const first = db.sql.begin(async (tx) => {
        await insertEvents(tx as unknown as typeof db.sql, [event("c1")]);
        inserted.resolve();
        await commit.promise;
      });
      await inserted.promise;
      const session = await oneSession(db);
      try {
        const second = insertEvents(session.sql, [event("c2")]);
        await eventually(async () => await waitsForLock(db.sql, session.pid) || undefined, {
          what: "the second publication to wait for the first's queue",
        });
        commit.resolve();
        await first;
        await second;
        assert.deepEqual(await parkedForOrder(db, "s"), ["c2"]);
        assert.deepEqual((await claim(db.sql)).map((d) => d.event_id), ["c1"]);
      } finally {
        commit.resolve();
        await session.sql.end();
      }
    }),
});

Deno.test("events published from SQL in one transaction join their key's queue in the order of the calls", () =>
  withTestDatabase(async (db) => {
    await db.sql`INSERT INTO subscriptions (id, url, event_types, secret, ordering)
      VALUES ('s', 'http://127.0.0.1:9/', '{*}', 'a-secret', 'fifo')`;
    await db.sql.begin(async (tx) => {
      for (const id of ["sql_z", "sql_a", "sql_m"]) {
        await tx`SELECT dispatch_publish(${id}, 'order.paid', '{}', NULL, NULL, 'k')`;
      }
    });
    assert.deepEqual(await parkedForOrder(db, "s"), ["sql_a", "sql_m"]);
    assert.deepEqual((await claim(db.sql)).map((d) => d.event_id), ["sql_z"]);
  }));
