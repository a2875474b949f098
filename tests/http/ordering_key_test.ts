import assert from "node:assert/strict";
import { assertInvalidField, json, testApp } from "../helpers/app.ts";
import { countRows } from "../helpers/db.ts";

const event = { type: "order.created", data: { order_id: 42 } };

Deno.test("POST /events stores ordering_key and every event representation shows it", async () => {
  const t = await testApp();
  try {
    const res = await t.call("POST", "/events", {
      id: "evt_k",
      ...event,
      ordering_key: "order-42",
    });
    assert.equal(res.status, 201);
    const created = await json(res);
    assert.equal(created.ordering_key, "order-42");
    // Exactly the fields of the Event schema, as GET shows them.
    assert.deepEqual(
      Object.keys(created).sort(),
      Object.keys(await json(await t.call("GET", "/events/evt_k"))).sort(),
    );
    assert.equal((await json(await t.call("GET", "/events/evt_k"))).ordering_key, "order-42");
    const [listed] = (await json(await t.call("GET", "/events"))).data;
    assert.equal(listed.ordering_key, "order-42");
    const none = await json(await t.call("POST", "/events", event));
    assert.equal(none.ordering_key, null);
    assert.equal((await json(await t.call("GET", `/events/${none.id}`))).ordering_key, null);
  } finally {
    await t.close();
  }
});

Deno.test("POST /events/batch items carry ordering_key", async () => {
  const t = await testApp();
  try {
    const res = await t.call("POST", "/events/batch", {
      events: [{ id: "evt_a", ...event, ordering_key: "k:1" }, { id: "evt_b", ...event }],
    });
    assert.deepEqual((await json(res)).results.map((r: { status: number }) => r.status), [
      201,
      201,
    ]);
    assert.equal((await json(await t.call("GET", "/events/evt_a"))).ordering_key, "k:1");
    assert.equal((await json(await t.call("GET", "/events/evt_b"))).ordering_key, null);
  } finally {
    await t.close();
  }
});

Deno.test("ordering_key follows the id rule and is part of an event's content", async () => {
  const t = await testApp();
  try {
    for (const key of ["", "no spaces", "-leading", "a".repeat(256), 5]) {
      const body = { ...event, ordering_key: key };
      await assertInvalidField(
        await t.call("POST", "/events", body),
        "ordering_key",
        JSON.stringify(key),
      );
    }
    assert.equal(await countRows(t.db.sql, "events"), 0);
    await (await t.call("POST", "/events", { id: "evt_c", ...event, ordering_key: "a" })).body
      ?.cancel();
    const replay = await t.call("POST", "/events", { id: "evt_c", ...event, ordering_key: "a" });
    assert.equal(replay.status, 200);
    await replay.body?.cancel();
    const other = await t.call("POST", "/events", { id: "evt_c", ...event, ordering_key: "b" });
    assert.equal(other.status, 409);
    await other.body?.cancel();
  } finally {
    await t.close();
  }
});
