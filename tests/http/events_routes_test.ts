import assert from "node:assert/strict";
import { assertInvalidField, json, testApp } from "../helpers/app.ts";
import { countRows } from "../helpers/db.ts";

const event = { type: "order.created", source: "billing", data: { order_id: 42 } };

Deno.test("POST /events stores an event and answers 201 with a generated id", async () => {
  const t = await testApp();
  try {
    const res = await t.call("POST", "/events", event);
    assert.equal(res.status, 201);
    const body = await json(res);
    assert.match(body.id, /^evt_[0-9a-z]{25}$/);
    assert.equal(body.type, "order.created");
    assert.deepEqual(body.data, { order_id: 42 });
    assert.equal(body.status, "no_subscribers");
    const got = await json(await t.call("GET", `/events/${body.id}`));
    assert.equal(got.id, body.id);
    assert.equal(got.source, "billing");
  } finally {
    await t.close();
  }
});

Deno.test("POST /events with the same id and content replays with 200 and creates nothing", async () => {
  const t = await testApp();
  try {
    await t.call("POST", "/subscriptions", { url: "http://127.0.0.1:9/x" });
    const first = await t.call("POST", "/events", { id: "evt_1", ...event });
    assert.equal(first.status, 201);
    await first.body?.cancel();
    // Same content with keys in another order is the same event.
    const again = await t.call("POST", "/events", {
      data: { order_id: 42 },
      source: "billing",
      type: "order.created",
      id: "evt_1",
    });
    assert.equal(again.status, 200);
    assert.equal(again.headers.get("idempotent-replayed"), "true");
    assert.equal((await json(again)).id, "evt_1");
    assert.equal(await countRows(t.db.sql, "deliveries"), 1);
  } finally {
    await t.close();
  }
});

Deno.test("POST /events with a reused id and different content answers 409 and keeps the original", async () => {
  const t = await testApp();
  try {
    await (await t.call("POST", "/events", { id: "evt_2", ...event })).body?.cancel();
    const res = await t.call("POST", "/events", { id: "evt_2", ...event, data: { order_id: 43 } });
    assert.equal(res.status, 409);
    const body = await json(res);
    assert.equal(body.error.code, "conflict");
    assert.match(body.error.message, /evt_2/);
    const stored = await json(await t.call("GET", "/events/evt_2"));
    assert.deepEqual(stored.data, { order_id: 42 });
  } finally {
    await t.close();
  }
});

Deno.test("POST /events rejects invalid input with 400 naming the field", async () => {
  const t = await testApp();
  try {
    const cases: [unknown, string][] = [
      [{ data: {} }, "type"],
      [{ type: "a b", data: {} }, "type"],
      [{ type: "x", data: [1] }, "data"],
      [{ type: "x" }, "data"],
      [{ type: "x", data: {}, id: "no spaces" }, "id"],
      [{ type: "x", data: {}, id: "a".repeat(256) }, "id"],
      [{ type: "x", data: {}, extra: 1 }, "extra"],
      [{ type: 5, data: {} }, "type"],
      [[], "body"],
    ];
    for (const [body, field] of cases) {
      await assertInvalidField(await t.call("POST", "/events", body), field, JSON.stringify(body));
    }
    assert.equal(await countRows(t.db.sql, "events"), 0);
  } finally {
    await t.close();
  }
});

Deno.test("POST /events answers 400 for malformed JSON, 415 for another type, 413 when too large", async () => {
  const t = await testApp({ maxPayloadBytes: 2048 });
  try {
    const bad = await t.call("POST", "/events", '{"type":');
    assert.equal(bad.status, 400);
    assert.equal((await json(bad)).error.code, "bad_request");

    const text = await t.call("POST", "/events", "type=x", { "content-type": "text/plain" });
    assert.equal(text.status, 415);
    assert.equal((await json(text)).error.code, "unsupported_media_type");

    const big = await t.call("POST", "/events", { type: "x", data: { s: "a".repeat(4096) } });
    assert.equal(big.status, 413);
    const { error } = await json(big);
    assert.equal(error.code, "payload_too_large");
    assert.match(error.message, /2048 bytes/);
  } finally {
    await t.close();
  }
});

Deno.test("POST /events answers 400, not 500, for a NUL character that PostgreSQL cannot store", async () => {
  const t = await testApp();
  try {
    const res = await t.call("POST", "/events", { type: "x", data: { s: "a\u0000b" } });
    assert.equal(res.status, 400);
    assert.equal((await json(res)).error.code, "validation_failed");
  } finally {
    await t.close();
  }
});

Deno.test("GET /events/:id answers 404 with an error body for an unknown id", async () => {
  const t = await testApp();
  try {
    for (const path of ["/events/nope", "/events/nope/attempts", "/events/nope/deliveries"]) {
      const res = await t.call("GET", path);
      assert.equal(res.status, 404, path);
      const { error } = await json(res);
      assert.equal(error.code, "not_found");
      assert.match(error.message, /"nope"/);
    }
  } finally {
    await t.close();
  }
});

Deno.test("events fan out to every subscription whose pattern matches", async () => {
  const t = await testApp();
  try {
    const subs = {
      all: ["*"],
      orders: ["order.*"],
      exact: ["order.created"],
      other: ["invoice.*", "order.updated"],
      prefixOnly: ["order"],
      deep: ["order.created.*"],
    };
    for (const [id, event_types] of Object.entries(subs)) {
      const res = await t.call("POST", "/subscriptions", {
        id,
        url: "http://127.0.0.1:9/x",
        event_types,
      });
      assert.equal(res.status, 201);
      await res.body?.cancel();
    }
    const expect: Record<string, string[]> = {
      "order.created": ["all", "exact", "orders"],
      "order.created.v2": ["all", "deep", "orders"],
      "order": ["all", "prefixOnly"],
      "invoice.paid": ["all", "other"],
      "orderly.thing": ["all"],
    };
    for (const [type, want] of Object.entries(expect)) {
      const created = await json(await t.call("POST", "/events", { type, data: {} }));
      assert.equal(created.deliveries.total, want.length, type);
      const { data } = await json(await t.call("GET", `/events/${created.id}/deliveries`));
      const got = data.map((d: { subscription_id: string }) => d.subscription_id).sort();
      assert.deepEqual(got, want, type);
      assert.ok(data.every((d: { status: string }) => d.status === "pending"));
    }
  } finally {
    await t.close();
  }
});

Deno.test("inactive subscriptions get no deliveries", async () => {
  const t = await testApp();
  try {
    await (await t.call("POST", "/subscriptions", {
      url: "http://127.0.0.1:9/x",
      active: false,
    })).body?.cancel();
    const created = await json(await t.call("POST", "/events", { type: "a", data: {} }));
    assert.equal(created.status, "no_subscribers");
    assert.equal(created.deliveries.total, 0);
  } finally {
    await t.close();
  }
});

Deno.test("GET /events lists newest first, filters by type and status, and pages with a cursor", async () => {
  const t = await testApp();
  try {
    await (await t.call("POST", "/subscriptions", {
      url: "http://127.0.0.1:9/x",
      event_types: ["b"],
    })).body?.cancel();
    for (let i = 0; i < 5; i++) {
      const type = i % 2 ? "b" : "a";
      await (await t.call("POST", "/events", { id: `e${i}`, type, data: { i } })).body?.cancel();
    }
    const page1 = await json(await t.call("GET", "/events?limit=2"));
    assert.deepEqual(page1.data.map((e: { id: string }) => e.id), ["e4", "e3"]);
    assert.ok(page1.next_cursor);
    const page2 = await json(await t.call("GET", `/events?limit=2&cursor=${page1.next_cursor}`));
    assert.deepEqual(page2.data.map((e: { id: string }) => e.id), ["e2", "e1"]);
    const page3 = await json(await t.call("GET", `/events?limit=2&cursor=${page2.next_cursor}`));
    assert.deepEqual(page3.data.map((e: { id: string }) => e.id), ["e0"]);
    assert.equal(page3.next_cursor, null);

    const typed = await json(await t.call("GET", "/events?type=b"));
    assert.deepEqual(typed.data.map((e: { id: string }) => e.id), ["e3", "e1"]);
    const pending = await json(await t.call("GET", "/events?status=pending"));
    assert.deepEqual(pending.data.map((e: { id: string }) => e.id), ["e3", "e1"]);
    const none = await json(await t.call("GET", "/events?status=no_subscribers"));
    assert.deepEqual(none.data.map((e: { id: string }) => e.id), ["e4", "e2", "e0"]);

    for (const q of ["limit=0", "limit=abc", "status=nope", "cursor=zzz"]) {
      await assertInvalidField(await t.call("GET", `/events?${q}`), q.split("=")[0]!, q);
    }
  } finally {
    await t.close();
  }
});

Deno.test("POST /events takes a body of exactly MAX_PAYLOAD_BYTES and refuses one byte more", async () => {
  const limit = 4096;
  const t = await testApp({ maxPayloadBytes: limit });
  try {
    const body = (bytes: number) => {
      const frame = '{"type":"x","data":{"s":""}}';
      return `{"type":"x","data":{"s":"${"a".repeat(bytes - frame.length)}"}}`;
    };
    assert.equal(new TextEncoder().encode(body(limit)).length, limit);
    const fits = await t.call("POST", "/events", body(limit));
    assert.equal(fits.status, 201);
    await fits.body?.cancel();
    const over = await t.call("POST", "/events", body(limit + 1));
    assert.equal(over.status, 413);
    await over.body?.cancel();
  } finally {
    await t.close();
  }
});

Deno.test("GET /events?status= finds each derived status, from the deliveries or the event", async () => {
  const t = await testApp();
  try {
    for (const id of ["s1", "s2"]) {
      const res = await t.call("POST", "/subscriptions", {
        id,
        url: `http://127.0.0.1:9/${id}`,
        event_types: ["two.*"],
      });
      await res.body?.cancel();
    }
    // [event, status of its delivery to s1, to s2]; "none" matches no subscription.
    const cases: [string, string, string, string][] = [
      ["e_pending", "pending", "pending", "pending"],
      ["e_processing", "processing", "pending", "processing"],
      ["e_retrying", "retrying", "delivered", "retrying"],
      ["e_failed", "failed", "delivered", "failed"],
      ["e_delivered", "delivered", "delivered", "delivered"],
    ];
    for (const [id] of cases) {
      const res = await t.call("POST", "/events", { id, type: "two.x", data: {} });
      await res.body?.cancel();
    }
    const none = await t.call("POST", "/events", { id: "e_none", type: "other", data: {} });
    await none.body?.cancel();
    for (const [id, s1, s2] of cases) {
      for (const [sub, status] of [["s1", s1], ["s2", s2]] as const) {
        await t.db.sql`UPDATE deliveries SET status = ${status},
          delivered_at = CASE WHEN ${status} = 'delivered' THEN now() END,
          locked_by = CASE WHEN ${status} = 'processing' THEN 'w' END,
          locked_until = CASE WHEN ${status} = 'processing' THEN now() + interval '1 minute' END
          WHERE event_id = ${id} AND subscription_id = ${sub}`;
      }
    }
    const expected = [...cases.map(([id, , , status]) => [status, id]), [
      "no_subscribers",
      "e_none",
    ]];
    for (const [status, id] of expected) {
      const page = await json(await t.call("GET", `/events?status=${status}`));
      assert.deepEqual(page.data.map((e: { id: string }) => e.id), [id], status);
      assert.equal(page.data[0].status, status);
    }
  } finally {
    await t.close();
  }
});

Deno.test("POST /events and batch items refuse the reserved dispatch. type prefix, naming type", async () => {
  const t = await testApp();
  try {
    const forged = { type: "dispatch.subscription.disabled", source: "dispatch", data: {} };
    await assertInvalidField(await t.call("POST", "/events", forged), "type");
    const res = await t.call("POST", "/events/batch", {
      events: [forged, { type: "dispatchers.moved", data: {} }],
    });
    const { results } = await json(res);
    assert.deepEqual(results.map((r: { status: number }) => r.status), [400, 201]);
    assert.match(
      results[0].error.message,
      /^Invalid field "type": must not start with "dispatch\."/,
    );
    assert.equal(await countRows(t.db.sql, "events", "type LIKE 'dispatch.%'"), 0);
  } finally {
    await t.close();
  }
});

Deno.test("GET /events?status= pages are the same whether the newest events are walked or the deliveries read", async () => {
  const t = await testApp();
  try {
    // 3,000 events of two tenants and two types, two deliveries each. The newest 1,000 are
    // failed one in three (a walk fills pages there), the older one in 400 (it stops short
    // and the deliveries answer); one in nine of the newest has a pending delivery beside a
    // failed one, so it is pending, not failed.
    await t.db.sql`
      INSERT INTO events (id, type, data, tenant_id, fanned_out)
      SELECT 'e_' || g, CASE WHEN g % 4 < 2 THEN 'x' ELSE 'y' END, '{}', 't' || g % 2, 2
      FROM generate_series(1, 3000) g ORDER BY g`;
    await t.db.sql`
      INSERT INTO deliveries (event_id, subscription_id, subscription_seq, status, delivered_at)
      SELECT 'e_' || g, 's' || s, s, x.status, CASE WHEN x.status = 'delivered' THEN now() END
      FROM generate_series(1, 3000) g CROSS JOIN generate_series(1, 2) s
      CROSS JOIN LATERAL (SELECT CASE
        WHEN g > 2000 AND g % 9 = 0 AND s = 2 THEN 'pending'
        WHEN g > 2000 AND g % 3 = 0 THEN 'failed'
        WHEN g % 400 = 0 AND s = 1 THEN 'failed'
        ELSE 'delivered' END AS status) x
      ORDER BY g, s`;
    for (
      const filter of [{}, { tenantId: "t0" }, { type: "x" }, { tenantId: "t1", type: "y" }]
    ) {
      const expected = (await t.db.sql<{ id: string }[]>`
        SELECT e.id FROM events e
        WHERE EXISTS (SELECT FROM deliveries d WHERE d.event_id = e.id AND d.status = 'failed')
          AND NOT EXISTS (SELECT FROM deliveries d WHERE d.event_id = e.id
            AND d.status IN ('pending', 'processing', 'retrying'))
          ${
        filter.tenantId !== undefined ? t.db.sql`AND e.tenant_id = ${filter.tenantId}` : t.db.sql``
      }
          ${filter.type !== undefined ? t.db.sql`AND e.type = ${filter.type}` : t.db.sql``}
        ORDER BY e.seq DESC`).map((r) => r.id);
      const got: string[] = [];
      let before: number | undefined;
      do {
        const page = await t.db.views.listEvents({ ...filter, status: "failed", limit: 7, before });
        assert.ok(page.events.every((e) => e.status === "failed"));
        got.push(...page.events.map((e) => e.id));
        before = page.next ?? undefined;
      } while (before !== undefined);
      assert.deepEqual(got, expected, JSON.stringify(filter));
    }
  } finally {
    await t.close();
  }
});
