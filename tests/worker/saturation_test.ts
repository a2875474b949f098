import assert from "node:assert/strict";
import type { Worker } from "../../src/worker/worker.ts";
import { testDatabase } from "../helpers/db.ts";
import { seedDeliveries } from "../helpers/queue.ts";
import { startReceiver } from "../helpers/receiver.ts";
import { worker } from "../helpers/worker.ts";

/** A receiver that answers each request only when the test lets it. */
function heldReceiver() {
  const gates: (() => void)[] = [];
  const receiver = startReceiver(() =>
    new Promise<Response>((resolve) => gates.push(() => resolve(new Response("ok"))))
  );
  return {
    ...receiver,
    ids: () => receiver.received.map((r) => r.headers.get("x-dispatch-event-id")),
    /** Answers the `i`th request once it has arrived. */
    async answer(i: number) {
      await receiver.waitFor(i + 1);
      while (gates.length <= i) await new Promise((r) => setTimeout(r, 1));
      gates[i]!();
    },
    answerAll: () => gates.forEach((open) => open()),
  };
}

Deno.test("a saturated worker (concurrency 1) sends new events before due retries, and every fourth is a retry", async () => {
  const db = await testDatabase();
  const slow = heldReceiver();
  let w: Worker | undefined;
  try {
    await seedDeliveries(db.sql, 20, { id: "r", prefix: "r", url: slow.url });
    // Retries due for an hour, r1 first.
    await db.sql`UPDATE deliveries SET status = 'retrying', attempts = 1,
      next_attempt_at = now() - interval '1 hour' + id * interval '1 millisecond'`;
    w = worker(db, { concurrency: 1 });
    await slow.waitFor(1);
    // New events arrive while the worker is busy with r1.
    await seedDeliveries(db.sql, 5, { id: "n", prefix: "n", url: slow.url });
    await db.sql`UPDATE deliveries SET next_attempt_at = now() + id * interval '1 millisecond'
      - interval '1 minute' WHERE subscription_id = 'n'`;
    for (let i = 0; i < 10; i++) await slow.answer(i);
    await slow.waitFor(11);
    assert.deepEqual(slow.ids().slice(0, 11), [
      "r1",
      "n1",
      "n2",
      "r2",
      "n3",
      "n4",
      "n5",
      "r3",
      "r4",
      "r5",
      "r6",
    ]);
  } finally {
    slow.answerAll();
    await w?.stop({ drainMs: 5_000, resultsMs: 5_000 });
    await slow.close();
    await db.close();
  }
});

Deno.test("subscriptions of a tenant whose endpoints hang hold at most its share of the worker: another tenant's deliveries go meanwhile", async () => {
  const db = await testDatabase();
  const hanging = heldReceiver();
  const healthy = startReceiver();
  let w: Worker | undefined;
  try {
    for (let i = 1; i <= 20; i++) {
      await seedDeliveries(db.sql, 1, {
        id: `a${i}`,
        prefix: `a${i}_`,
        tenant: "a",
        url: hanging.url,
      });
    }
    await seedDeliveries(db.sql, 3, { id: "b", prefix: "b", tenant: "b", url: healthy.url });
    // Tenant a's deliveries are the oldest.
    await db.sql`UPDATE deliveries SET next_attempt_at = now() - interval '1 minute'
      WHERE subscription_id LIKE 'a%'`;
    w = worker(db, { concurrency: 4, deliveryTimeoutMs: 120_000 });
    await healthy.waitFor(3);
    // While a's three (of four slots) still hang.
    assert.equal(hanging.received.length, 3);
  } finally {
    hanging.answerAll();
    await w?.stop({ drainMs: 5_000, resultsMs: 5_000 });
    await hanging.close();
    await healthy.close();
    await db.close();
  }
});
