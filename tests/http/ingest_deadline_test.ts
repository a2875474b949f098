import assert from "node:assert/strict";
import { json, testApp } from "../helpers/app.ts";
import { countRows } from "../helpers/db.ts";

const event = { type: "order.created", data: { order_id: 42 } };

Deno.test("POST /events answered 503 at its deadline never stores the event, once the table is free either", async () => {
  const t = await testApp({ requestTimeoutMs: 300 });
  const lock = await t.db.sql.reserve();
  try {
    // Another session holds the table: the first insert waits on it, the second queues behind.
    await lock`BEGIN`;
    await lock`LOCK TABLE events IN SHARE MODE`;
    const answers = await Promise.all([
      t.call("POST", "/events", event),
      t.call("POST", "/events", event),
    ]);
    for (const res of answers) {
      assert.equal(res.status, 503);
      assert.equal((await json(res)).error.code, "unavailable");
    }
    await lock`COMMIT`;
    // The writer writes in order: once this one is stored, whatever was queued before it was too.
    const after = await t.call("POST", "/events", { id: "evt_after", ...event });
    assert.equal(after.status, 201);
    await after.body?.cancel();
    assert.equal(await countRows(t.db.sql, "events", "id <> 'evt_after'"), 0);
  } finally {
    lock.release();
    await t.close();
  }
});
