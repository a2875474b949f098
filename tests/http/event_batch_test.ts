import assert from "node:assert/strict";
import { json, testApp } from "../helpers/app.ts";
import { countRows } from "../helpers/db.ts";

Deno.test("POST /events/batch stores valid events, fans them out, and reports each item", async () => {
  const t = await testApp();
  try {
    await (await t.call("POST", "/subscriptions", { url: "http://127.0.0.1:9/x" })).body?.cancel();
    await (await t.call("POST", "/events", { id: "old", type: "a", data: { v: 1 } })).body
      ?.cancel();
    const res = await t.call("POST", "/events/batch", {
      events: [
        { id: "b1", type: "a", data: { n: 1 } },
        { type: "a", data: { n: 2 } },
        { id: "old", type: "a", data: { v: 1 } },
        { id: "old", type: "a", data: { v: 2 } },
        { id: "bad", type: "no spaces", data: {} },
        { id: "b1", type: "a", data: { n: 1 } },
        { id: "b1", type: "a", data: { n: 9 } },
        "not an object",
      ],
    });
    assert.equal(res.status, 200);
    const { results } = await json(res);
    assert.deepEqual(results.map((r: { status: number }) => r.status), [
      201,
      201,
      200,
      409,
      400,
      200,
      409,
      400,
    ]);
    assert.match(results[1].id, /^evt_/);
    assert.equal(results[4].id, "bad");
    assert.match(results[4].error.message, /"type"/);
    assert.equal(results[3].error.code, "conflict");
    assert.equal(await countRows(t.db.sql, "events"), 3);
    assert.equal(await countRows(t.db.sql, "deliveries"), 3);
    const stored = await json(await t.call("GET", "/events/b1"));
    assert.deepEqual(stored.data, { n: 1 });
  } finally {
    await t.close();
  }
});

Deno.test("POST /events/batch rejects an empty or oversized batch as a whole", async () => {
  const t = await testApp({ maxPayloadBytes: 1024 * 1024 });
  try {
    const empty = await t.call("POST", "/events/batch", { events: [] });
    assert.equal(empty.status, 400);
    assert.match((await json(empty)).error.message, /"events"/);
    const events = Array.from({ length: 1001 }, () => ({ type: "a", data: {} }));
    const big = await t.call("POST", "/events/batch", { events });
    assert.equal(big.status, 400);
    assert.match((await json(big)).error.message, /"events"/);
    assert.equal(await countRows(t.db.sql, "events"), 0);
  } finally {
    await t.close();
  }
});
