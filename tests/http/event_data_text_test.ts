import assert from "node:assert/strict";
import { json, testApp } from "../helpers/app.ts";
import { testDatabase } from "../helpers/db.ts";
import { claim } from "../helpers/queue.ts";
import { startReceiver } from "../helpers/receiver.ts";
import { startTestService } from "../helpers/service.ts";

// jsonb prints each of these numbers with 309 digits: 5 bytes accepted, 309 sent before the fix.
const hugeNumbers = `{ "n": [${Array(2000).fill("1e308").join(",")}],\n  "small": 1E2 }`;

Deno.test("an event's data reaches the endpoint byte for byte as accepted, never as jsonb prints it", async () => {
  const db = await testDatabase();
  const receiver = startReceiver();
  const svc = await startTestService(db);
  try {
    await svc.api("POST", "/subscriptions", { url: receiver.url });
    const accepted = `{"type":"big","data":${hugeNumbers}}`;
    const res = await fetch(`${svc.url}/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: accepted,
    });
    assert.equal(res.status, 201);
    const { id } = await res.json();
    const [got] = await receiver.waitFor(1);
    assert.ok(got!.body.endsWith(`,"data":${hugeNumbers}}`), "the data part as sent");
    assert.equal(JSON.parse(got!.body).id, id);
    const envelope =
      `{"id":"${id}","type":"big","source":null,"timestamp":"2026-12-07T00:00:00.000Z"}`;
    assert.ok(got!.body.length <= accepted.length + envelope.length);
  } finally {
    await svc.stop();
    await receiver.close();
    await db.close();
  }
});

Deno.test("POST /events/batch keeps each item's data as written, and a claim hands it out so", async () => {
  const t = await testApp();
  try {
    await (await t.call("POST", "/subscriptions", { url: "http://127.0.0.1:9/x" })).body?.cancel();
    const datas = [hugeNumbers, `{"a" : [1.50, -0.0, 2e-400]}`, `{}`];
    const res = await t.call(
      "POST",
      "/events/batch",
      `{"events": [${datas.map((d, i) => `{"id":"e${i}","data":${d},"type":"t"}`).join(" , ")}]}`,
    );
    assert.deepEqual((await json(res)).results.map((r: { status: number }) => r.status), [
      201,
      201,
      201,
    ]);
    const claimed = await claim(t.db.sql);
    assert.deepEqual(
      Object.fromEntries(claimed.map((d) => [d.event_id, d.data])),
      { e0: datas[0], e1: datas[1], e2: datas[2] },
    );
  } finally {
    await t.close();
  }
});
