import assert from "node:assert/strict";
import { CloudEvent, HTTP } from "cloudevents";
import { Webhook } from "standardwebhooks";
import { createLogger } from "../../src/observability/log.ts";
import { testDatabase } from "../helpers/db.ts";
import { startReceiver } from "../helpers/receiver.ts";
import { eventually, startTestService } from "../helpers/service.ts";

const secretsKey = () => crypto.getRandomValues(new Uint8Array(32)).toBase64();
const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

Deno.test("custom headers arrive as configured on every attempt, sealed at rest and never shown or logged", async () => {
  const lines: string[] = [];
  const log = createLogger({ level: "debug", write: (line) => lines.push(line) });
  const db = await testDatabase();
  // The first attempt fails, so the headers are seen on a retry too.
  const receiver = startReceiver((_r, i) => new Response(null, { status: i === 0 ? 500 : 200 }));
  const svc = await startTestService(db, {
    log,
    env: { DISPATCH_SECRETS_KEY: secretsKey(), LOG_LEVEL: "debug" },
  });
  let stopping: Promise<void> | undefined;
  const stop = () => stopping ??= svc.stop();
  try {
    const plain = ["Bearer tok-9f8e7d-hidden", "k-4b3a2c-hidden", "sess=c0ffee-hidden"];
    const headers = {
      Authorization: plain[0]!,
      "X-Api-Key": plain[1]!,
      Cookie: plain[2]!,
      "X-Region": "eu-west-1",
      "X-Tag": "Ünïcode latin-1 \t tabbed",
    };
    const sub = await svc.api("POST", "/subscriptions", { url: receiver.url, headers, secret });
    // A PATCH that sends back what it read keeps the sealed values.
    const read = await svc.api("GET", `/subscriptions/${sub.id}`);
    await svc.api("PATCH", `/subscriptions/${sub.id}`, { headers: read.headers });
    await svc.api("POST", "/events", { id: "evt_h", type: "a", data: { n: 1 } });
    const got = await receiver.waitFor(2);
    for (const [i, r] of got.entries()) {
      assert.equal(r.headers.get("authorization"), plain[0], `attempt ${i + 1}`);
      assert.equal(r.headers.get("x-api-key"), plain[1]);
      assert.equal(r.headers.get("cookie"), plain[2]);
      assert.equal(r.headers.get("x-region"), "eu-west-1");
      assert.equal(r.headers.get("x-tag"), "Ünïcode latin-1 \t tabbed");
      // Next to Dispatch's own.
      assert.equal(r.headers.get("x-dispatch-attempt"), String(i + 1));
      assert.ok(new Webhook(secret).verify(r.body, Object.fromEntries(r.headers)));
    }
    await eventually(async () => {
      const e = await svc.api("GET", "/events/evt_h");
      return e.status === "delivered" ? e : undefined;
    }, { what: "the event to be delivered" });

    // Sealed at rest: no row of any table of the schema holds a plaintext value.
    const tables = await db.sql<{ name: string }[]>`
      SELECT table_name AS name FROM information_schema.tables
      WHERE table_schema = ${db.schema} AND table_type = 'BASE TABLE'`;
    const dump: { t: string }[] = [];
    for (const { name } of tables) {
      dump.push(...await db.sql<{ t: string }[]>`SELECT t::text AS t FROM ${db.sql(name)} t`);
    }
    const everything = dump.map((r) => r.t).join("\n");
    assert.ok(everything.includes("eu-west-1"), "the dump has the subscription");
    const [row] = await db.sql<{ headers: Record<string, string> }[]>`
      SELECT headers FROM subscriptions`;
    for (const name of ["authorization", "x-api-key", "cookie"]) {
      assert.match(row!.headers[name]!, /^enc:v1:/, name);
    }
    for (const path of ["/subscriptions", `/subscriptions/${sub.id}`, "/openapi.json"]) {
      const text = await (await fetch(`${svc.url}${path}`)).text();
      for (const p of plain) assert.ok(!text.includes(p), `${path} shows a header value`);
    }
    await stop();
    assert.ok(lines.some((l) => l.includes('"Delivery attempt"')), "the test captured logs");
    for (const p of plain) {
      assert.ok(!everything.includes(p), "the database holds a plaintext value");
      assert.ok(!lines.join("\n").includes(p), "a log line shows a header value");
    }
  } finally {
    await stop();
    await receiver.close();
    await db.close();
  }
});

Deno.test("a filtered-out event gets no delivery and a matching one is delivered, one by one, in a batch and for a tenant", async () => {
  const db = await testDatabase();
  const receiver = startReceiver();
  const svc = await startTestService(db);
  try {
    const filter = '$.data.amount >= 100 && $.data.currency == "EUR"';
    const plain = await svc.api("POST", "/subscriptions", {
      url: receiver.url,
      event_types: ["order.*"],
      filter,
    });
    const tenant = await svc.api("POST", "/subscriptions", {
      url: `${receiver.url}?tenant`,
      tenant_id: "acme",
      filter,
    });
    const order = (id: string, data: unknown, tenant_id?: string) => ({
      id,
      type: "order.created",
      data,
      ...(tenant_id ? { tenant_id } : {}),
    });
    await svc.api("POST", "/events", order("evt_yes", { amount: 150, currency: "EUR" }));
    await svc.api("POST", "/events", order("evt_low", { amount: 50, currency: "EUR" }));
    await svc.api("POST", "/events", order("evt_none", { currency: "EUR" }));
    await svc.api("POST", "/events/batch", {
      events: [
        order("evt_b_yes", { amount: 100, currency: "EUR" }),
        order("evt_b_usd", { amount: 500, currency: "USD" }),
        order("evt_b_str", { amount: "500", currency: "EUR" }),
      ],
    });
    await svc.api("POST", "/events", order("evt_t_yes", { amount: 101, currency: "EUR" }, "acme"));
    await svc.api("POST", "/events", order("evt_t_no", { amount: 1, currency: "EUR" }, "acme"));
    await svc.api("POST", "/events/batch", {
      events: [
        order("evt_tb_yes", { amount: 999, currency: "EUR" }, "acme"),
        order("evt_tb_no", { amount: 999, currency: "GBP" }, "acme"),
      ],
    });

    const delivered = ["evt_yes", "evt_b_yes", "evt_t_yes", "evt_tb_yes"];
    const got = await receiver.waitFor(delivered.length);
    const rows = await db.sql<{ event_id: string; subscription_id: string }[]>`
      SELECT event_id, subscription_id FROM deliveries ORDER BY event_id`;
    assert.deepEqual([...rows], [
      { event_id: "evt_b_yes", subscription_id: plain.id },
      { event_id: "evt_t_yes", subscription_id: tenant.id },
      { event_id: "evt_tb_yes", subscription_id: tenant.id },
      { event_id: "evt_yes", subscription_id: plain.id },
    ]);
    const events = await db.sql<{ id: string; fanned_out: number }[]>`
      SELECT id, fanned_out FROM events WHERE fanned_out = 0 ORDER BY id`;
    assert.deepEqual(events.map((e) => e.id), [
      "evt_b_str",
      "evt_b_usd",
      "evt_low",
      "evt_none",
      "evt_t_no",
      "evt_tb_no",
    ]);
    await eventually(async () => {
      const page = await svc.api("GET", "/events?limit=100");
      const done = page.data.filter((e: { status: string }) => e.status === "delivered");
      return done.length === delivered.length ? done : undefined;
    });
    assert.deepEqual(got.map((r) => JSON.parse(r.body).id).sort(), delivered.sort());
  } finally {
    await svc.stop();
    await receiver.close();
    await db.close();
  }
});

Deno.test("a cloudevents subscription receives a CloudEvent the SDK validates, signed over that body", async () => {
  const db = await testDatabase();
  const receiver = startReceiver();
  const svc = await startTestService(db);
  try {
    await svc.api("POST", "/subscriptions", {
      url: receiver.url,
      format: "cloudevents",
      secret,
      tenant_id: "acme",
    });
    await svc.api("POST", "/subscriptions", {
      url: `${receiver.url}?plain`,
      format: "cloudevents",
    });
    await svc.api("POST", "/subscriptions", { url: `${receiver.url}?std`, secret });
    const data = '{"amount":1e2,"note":"caf\\u00e9","nested":{"a":[1,2]}}';
    const send = (body: string) =>
      fetch(`${svc.url}/events`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      }).then((r) => r.text());
    await send(
      `{"id":"evt_ce","type":"order.created","source":"billing-service","tenant_id":"acme","data":${data}}`,
    );
    await send(`{"id":"evt_nosrc","type":"order.paid","data":{"n":1}}`);
    const got = await receiver.waitFor(3);
    const event = await svc.api("GET", "/events/evt_ce");

    const tenant = got.find((r) => r.body.includes("evt_ce"))!;
    assert.equal(tenant.headers.get("content-type"), "application/cloudevents+json");
    const headers = Object.fromEntries(tenant.headers);
    const ce = HTTP.toEvent({ headers, body: tenant.body }) as CloudEvent<unknown>;
    assert.equal(ce.validate(), true);
    assert.equal(ce.specversion, "1.0");
    assert.equal(ce.id, "evt_ce");
    assert.equal(ce.type, "order.created");
    assert.equal(ce.source, "billing-service");
    assert.equal(ce.time, event.created_at);
    assert.equal(ce.datacontenttype, "application/json");
    assert.equal(ce["tenantid"], "acme");
    assert.deepEqual(ce.data, { amount: 100, note: "café", nested: { a: [1, 2] } });
    // data is sent as the producer wrote it.
    assert.ok(tenant.body.endsWith(`"data":${data}}`), tenant.body);
    // The Standard Webhooks headers and signature, over the body sent.
    assert.equal(headers["webhook-id"], "evt_ce");
    assert.ok(new Webhook(secret).verify(tenant.body, headers));

    const bare = got.find((r) => r.body.includes("evt_nosrc") && !r.body.includes("timestamp"))!;
    const plain = HTTP.toEvent({
      headers: Object.fromEntries(bare.headers),
      body: bare.body,
    }) as CloudEvent<unknown>;
    assert.equal(plain.validate(), true);
    assert.equal(plain.source, "dispatch");
    assert.equal(plain["tenantid"], undefined);
    assert.deepEqual(Object.keys(JSON.parse(bare.body)), [
      "specversion",
      "id",
      "type",
      "source",
      "time",
      "datacontenttype",
      "data",
    ]);

    const standard = got.find((r) => r.body.includes("evt_nosrc") && r.body.includes("timestamp"))!;
    assert.equal(standard.headers.get("content-type"), "application/json");
    assert.deepEqual(Object.keys(JSON.parse(standard.body)), [
      "id",
      "type",
      "source",
      "timestamp",
      "data",
    ]);
  } finally {
    await svc.stop();
    await receiver.close();
    await db.close();
  }
});

Deno.test("the service refuses to start when a key cannot open a sealed header value", async () => {
  const db = await testDatabase();
  try {
    const first = await startTestService(db, { env: { DISPATCH_SECRETS_KEY: secretsKey() } });
    await first.api("POST", "/subscriptions", {
      url: "https://example.com/hook",
      secret,
      headers: { "x-api-key": "sealed-value" },
    });
    await first.stop();
    // The signing secret stored as plaintext: only the header value is sealed now.
    await db.sql`UPDATE subscriptions SET secret = ${secret}`;
    await assert.rejects(
      startTestService(db, { env: { DISPATCH_SECRETS_KEY: secretsKey() } }),
      /DISPATCH_SECRETS_KEY does not decrypt a subscription secret/,
    );
  } finally {
    await db.close();
  }
});
