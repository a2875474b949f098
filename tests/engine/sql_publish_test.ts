import assert from "node:assert/strict";
import { connect, type Sql } from "../../src/db/pool.ts";
import { NewEvent } from "../../src/http/schemas.ts";
import { countRows, type TestDatabase, testDatabase } from "../helpers/db.ts";
import { startReceiver } from "../helpers/receiver.ts";
import { eventually, startTestService } from "../helpers/service.ts";
import { worker } from "../helpers/worker.ts";

/** An event as `dispatch_publish` takes it; `data` is JSON text, cast to jsonb. */
interface SqlEvent {
  id?: string | null;
  type?: string | null;
  data?: string | null;
  source?: string | null;
  tenant_id?: string | null;
  ordering_key?: string | null;
}

/** Calls `<schema>.dispatch_publish(...)` on `sql`, a connection whose search_path is not `schema`. */
async function publish(sql: Sql, schema: string, e: SqlEvent): Promise<string> {
  const [row] = await sql<{ id: string }[]>`
    SELECT ${sql(schema)}.dispatch_publish(${e.id ?? null}, ${e.type ?? null},
      ${e.data ?? null}::text::jsonb, ${e.source ?? null}, ${e.tenant_id ?? null},
      ${e.ordering_key ?? null}) AS id`;
  return row!.id;
}

/** What postgres.js puts on an error the server raised. */
interface PgError {
  code: string;
  message: string;
  column_name?: string;
}

/** A producer: a connection of its own, in the server's default search_path, not Dispatch's. */
function producer(db: TestDatabase, max = 1): Sql {
  return connect(db.url, { max });
}

async function addSubscription(db: TestDatabase, id: string, url: string) {
  await db.sql`INSERT INTO subscriptions (id, url, event_types, secret)
    VALUES (${id}, ${url}, '{order.*}', 'whsec_test')`;
}

const order = { type: "order.created", data: '{"order_id": 42}' };
const embedded = Deno.env.get("DISPATCH_TEST_EMBEDDED") === "1";

Deno.test({
  name: "an event published in a transaction that rolls back leaves no event and no delivery",
  // Not on the embedded database (PGlite): a transaction there is every connection's.
  ignore: embedded,
  async fn() {
    const db = await testDatabase();
    const sql = producer(db);
    try {
      await addSubscription(db, "s", "http://127.0.0.1:9/hook");
      await assert.rejects(
        sql.begin(async (tx) => {
          const id = await publish(tx as unknown as Sql, db.schema, { id: "evt_1", ...order });
          assert.equal(id, "evt_1");
          const [seen] = await tx`SELECT count(*)::int AS n FROM ${tx(db.schema)}.deliveries`;
          assert.equal(seen!.n, 1, "the transaction sees its own delivery");
          throw new Error("roll back");
        }),
        /roll back/,
      );
      assert.equal(await countRows(db.sql, "events"), 0);
      assert.equal(await countRows(db.sql, "deliveries"), 0);
    } finally {
      await sql.end();
      await db.close();
    }
  },
});

Deno.test({
  name:
    "an event published in a transaction is delivered once it commits, woken at commit rather than by a poll",
  // Not on the embedded database (PGlite): it cannot LISTEN.
  ignore: embedded,
  async fn() {
    const db = await testDatabase();
    const receiver = startReceiver();
    // Polling once a minute: only the NOTIFY sent at commit can deliver within the wait below.
    const service = await startTestService(db, { env: { POLL_INTERVAL_MS: "60000" } });
    const sql = producer(db);
    try {
      await service.api("POST", "/subscriptions", { id: "s", url: receiver.url });
      await sql.begin(async (tx) => {
        await publish(tx as unknown as Sql, db.schema, { id: "evt_1", ...order, source: "shop" });
        assert.equal(await countRows(db.sql, "events"), 0, "invisible before commit");
      });
      const [got] = await receiver.waitFor(1, 10_000);
      const body = JSON.parse(got!.body);
      assert.equal(body.id, "evt_1");
      assert.deepEqual(body.data, { order_id: 42 });
      assert.equal((await service.api("GET", "/events/evt_1")).source, "shop");
    } finally {
      await sql.end();
      await service.stop();
      await receiver.close();
      await db.close();
    }
  },
});

Deno.test("dispatch_publish() replays the same content, adds nothing, and raises 23505 for other content", async () => {
  const db = await testDatabase();
  const sql = producer(db);
  try {
    await addSubscription(db, "s", "http://127.0.0.1:9/hook");
    // The first copy comes in through the API's path: both share one statement.
    const [first] = await db.engine.publish([{
      id: "evt_1",
      type: "order.created",
      source: null,
      tenant_id: null,
      data: { a: 1, b: 2 },
    }]);
    assert.equal(first!.kind, "created");
    const again = { id: "evt_1", type: "order.created", data: '{"b": 2, "a": 1}' };
    assert.equal(await publish(sql, db.schema, again), "evt_1");
    assert.equal(await countRows(db.sql, "events"), 1);
    assert.equal(await countRows(db.sql, "deliveries"), 1);
    for (
      const other of [
        { ...again, data: '{"a": 1, "b": 3}' },
        { ...again, type: "order.paid" },
        { ...again, source: "elsewhere" },
        { ...again, tenant_id: "acme" },
        { ...again, ordering_key: "k" },
      ]
    ) {
      await assert.rejects(publish(sql, db.schema, other), (err: PgError) => {
        assert.equal(err.code, "23505", JSON.stringify(other));
        assert.match(err.message, /^Event "evt_1" already exists with different content/);
        return true;
      });
    }
    assert.equal(await countRows(db.sql, "deliveries"), 1);
  } finally {
    await sql.end();
    await db.close();
  }
});

const idRule = (field: string) => [
  { [field]: "" },
  { [field]: "no spaces" },
  { [field]: "-leading" },
  { [field]: "é" },
  { [field]: "a".repeat(256) },
];

/** Each is an event (`data` as JSON text), valid or not, with the field the API names if not. */
const cases: [SqlEvent, string | null][] = [
  [{ id: "evt_ok", ...order }, null],
  [{ ...order, id: "a".repeat(255), source: "s", tenant_id: "t", ordering_key: "k.1:2_3-4" }, null],
  ...idRule("id").map((e): [SqlEvent, string] => [{ ...order, ...e }, "id"]),
  ...idRule("tenant_id").map((e): [SqlEvent, string] => [{ ...order, ...e }, "tenant_id"]),
  ...idRule("ordering_key").map((e): [SqlEvent, string] => [{ ...order, ...e }, "ordering_key"]),
  ...idRule("type").map((e): [SqlEvent, string] => [{ ...order, ...e }, "type"]),
  [{ data: "{}" }, "type"],
  [{ type: "dispatch.subscription.disabled", data: "{}" }, "type"],
  [{ type: "dispatchx", data: "{}" }, null],
  [{ ...order, source: "" }, "source"],
  [{ ...order, source: "s".repeat(255) }, null],
  [{ ...order, source: "s".repeat(256) }, "source"],
  // Lengths count characters, not UTF-16 code units (each 😀 is two) nor bytes.
  [{ ...order, source: "😀".repeat(255) }, null],
  [{ ...order, source: "😀".repeat(256) }, "source"],
  [{ ...order, source: "é".repeat(255) }, null],
  [{ type: "a" }, "data"],
  [{ type: "a", data: "[1]" }, "data"],
  [{ type: "a", data: '"text"' }, "data"],
  [{ type: "a", data: "null" }, "data"],
  [{ type: "a", data: nested(32) }, null],
  [{ type: "a", data: nested(33) }, "data"],
  [{ type: "a", data: '{"n": 1.7976931348623157e308, "m": -1e308}' }, null],
  [{ type: "a", data: '{"n": 1e400}' }, "data"],
  [{ type: "a", data: '{"n": [-1e309]}' }, "data"],
];

/** A JSON object with `depth` nested containers in all (the object itself is the first). */
function nested(depth: number): string {
  return '{"a": '.repeat(depth - 1) + "{}" + "}".repeat(depth - 1);
}

/** The field the API's schema names for `e` as a body of POST /events, or null if it takes it. */
function apiVerdict(e: SqlEvent): string | null {
  const body = Object.fromEntries(
    Object.entries(e).flatMap(([k, v]) =>
      v === null || v === undefined ? [] : [[k, k === "data" ? JSON.parse(v) : v]]
    ),
  );
  const parsed = NewEvent.safeParse(body);
  return parsed.success ? null : String(parsed.error.issues[0]!.path[0]);
}

Deno.test("dispatch_publish() refuses exactly what POST /events refuses, with 22023 naming the field", async () => {
  const db = await testDatabase();
  const sql = producer(db);
  try {
    for (const [event, field] of cases) {
      const what = JSON.stringify(event).slice(0, 120);
      assert.equal(apiVerdict(event), field, `the API's verdict on ${what}`);
      const result = await publish(sql, db.schema, event).then(
        () => null,
        (err: PgError) => {
          assert.equal(err.code, "22023", `${what}: ${err.message}`);
          assert.equal(err.column_name, err.message.match(/^Invalid field "([a-z_]+)"/)?.[1]);
          return err.column_name!;
        },
      );
      assert.equal(result, field, what);
    }
  } finally {
    await sql.end();
    await db.close();
  }
});

Deno.test("dispatch_publish() refuses data larger than the API's MAX_PAYLOAD_BYTES, which the service records at start", async () => {
  const db = await testDatabase();
  const service = await startTestService(db, { env: { MAX_PAYLOAD_BYTES: "2048" } });
  const sql = producer(db);
  try {
    const [row] = await db.sql`SELECT max_data_bytes FROM dispatch_publish_settings`;
    assert.equal(row!.max_data_bytes, 2048);
    // Its JSON text as PostgreSQL prints it: {"s": "…"} is 9 bytes besides the string.
    const data = (n: number) => JSON.stringify({ s: "x".repeat(n - 9) });
    assert.equal(
      await publish(sql, db.schema, { id: "fits", type: "a", data: data(2048) }),
      "fits",
    );
    await assert.rejects(
      publish(sql, db.schema, { id: "big", type: "a", data: data(2049) }),
      (err: PgError) =>
        err.code === "22023" && err.column_name === "data" &&
        /at most 2048 bytes/.test(err.message),
    );
  } finally {
    await sql.end();
    await service.stop();
    await db.close();
  }
});

Deno.test("with EVENT_TYPES=strict dispatch_publish() refuses a type outside the catalog naming type; a schema's data is not checked in SQL", async () => {
  const db = await testDatabase();
  const service = await startTestService(db, { env: { EVENT_TYPES: "strict" } });
  const sql = producer(db);
  try {
    const [row] = await db.sql`SELECT strict_types FROM dispatch_publish_settings`;
    assert.equal(row!.strict_types, true);
    await service.api("POST", "/event-types", {
      name: "order.created",
      schema: { type: "object", properties: { order_id: { type: "integer" } } },
    });
    await assert.rejects(
      publish(sql, db.schema, { id: "unknown", type: "order.paid", data: "{}" }),
      (err: PgError) =>
        err.code === "22023" && err.column_name === "type" &&
        /not in the event-type catalog/.test(err.message),
    );
    // ajv runs in the application: data published in SQL is the producer's to get right.
    assert.equal(
      await publish(sql, db.schema, {
        id: "typed",
        type: "order.created",
        data: '{"order_id": "x"}',
      }),
      "typed",
    );
    assert.equal(await countRows(db.sql, "events"), 1);
  } finally {
    await sql.end();
    await service.stop();
    await db.close();
  }
});

Deno.test("dispatch_publish() with a NULL id generates one in the API's format", async () => {
  const db = await testDatabase();
  const sql = producer(db);
  try {
    const before = Date.now();
    const id = await publish(sql, db.schema, { type: "a", data: "{}" });
    assert.match(id, /^evt_[0-9a-z]{25}$/);
    // The first 9 characters after the prefix are the milliseconds in base 36, as in src/ids.ts.
    const ms = parseInt(id.slice(4, 13), 36);
    assert.ok(ms >= before - 1000 && ms <= Date.now() + 1000, `${ms} is not about ${before}`);
    assert.notEqual(await publish(sql, db.schema, { type: "a", data: "{}" }), id);
    assert.equal(await countRows(db.sql, "events"), 2);
  } finally {
    await sql.end();
    await db.close();
  }
});

Deno.test({
  name: "50 transactions open at once each publish, and every event is delivered exactly once",
  // Not on the embedded database (PGlite): a transaction there is every connection's.
  ignore: embedded,
  async fn() {
    const db = await testDatabase();
    const receiver = startReceiver();
    const sql = producer(db, 50);
    const w = await worker(db, { concurrency: 16 });
    try {
      await addSubscription(db, "s", receiver.url);
      const all = Promise.withResolvers<void>();
      let published = 0;
      await Promise.all(Array.from({ length: 50 }, (_, i) =>
        sql.begin(async (tx) => {
          await publish(tx as unknown as Sql, db.schema, { id: `evt_${i}`, ...order });
          // Every transaction commits only once all 50 have published: they are open together.
          if (++published === 50) all.resolve();
          await all.promise;
        })));
      await receiver.waitFor(50, 20_000);
      await eventually(
        async () =>
          (await countRows(db.sql, "deliveries", "status = 'delivered'")) === 50 || undefined,
        { what: "50 deliveries to be delivered" },
      );
      const ids = receiver.received.map((r) => JSON.parse(r.body).id).sort();
      assert.deepEqual(ids, Array.from({ length: 50 }, (_, i) => `evt_${i}`).sort());
      assert.equal(await countRows(db.sql, "deliveries", "attempts = 1"), 50);
    } finally {
      await w.stop({ drainMs: 1000, resultsMs: 1000 });
      await sql.end();
      await receiver.close();
      await db.close();
    }
  },
});

Deno.test({
  name: "dispatch_publish() works in its own DATABASE_SCHEMA whatever the caller's search_path",
  // Not on the embedded database (PGlite): a search_path set there is every connection's.
  ignore: embedded,
  async fn() {
    const a = await testDatabase();
    const b = await testDatabase();
    const sql = producer(a);
    try {
      await addSubscription(a, "s", "http://127.0.0.1:9/hook");
      await addSubscription(b, "s", "http://127.0.0.1:9/hook");
      // The caller's search_path names the other schema first, with tables of the same names.
      await sql.unsafe(`SET search_path TO ${b.schema}, public`);
      assert.equal(await publish(sql, a.schema, { id: "evt_a", ...order }), "evt_a");
      assert.equal(await countRows(a.sql, "events"), 1);
      assert.equal(await countRows(a.sql, "deliveries"), 1);
      assert.equal(await countRows(b.sql, "events"), 0);
    } finally {
      await sql.end();
      await a.close();
      await b.close();
    }
  },
});

Deno.test({
  name:
    "a role granted only EXECUTE on dispatch_publish() publishes but cannot read or write tables",
  // Not on the embedded database (PGlite): it has one session, of one role.
  ignore: embedded,
  async fn() {
    const db = await testDatabase();
    const role = `app_role_${db.schema}`;
    const stranger = `stranger_${db.schema}`;
    const s = db.schema;
    await db.sql.unsafe(`CREATE ROLE ${role} LOGIN; CREATE ROLE ${stranger} LOGIN`);
    await db.sql.unsafe(`GRANT USAGE ON SCHEMA ${s} TO ${role}, ${stranger};
    GRANT EXECUTE ON FUNCTION ${s}.dispatch_publish(text, text, jsonb, text, text, text)
      TO ${role}`);
    const asRole = (name: string) => {
      const url = new URL(db.url);
      url.username = name;
      url.password = "";
      return connect(url.href, { max: 1 });
    };
    const app = asRole(role);
    const other = asRole(stranger);
    const denied = (err: { code?: string }) => err.code === "42501";
    try {
      await addSubscription(db, "s", "http://127.0.0.1:9/hook");
      assert.equal(await publish(app, s, { id: "evt_1", ...order }), "evt_1");
      assert.equal(await countRows(db.sql, "deliveries"), 1);
      await assert.rejects(app.unsafe(`SELECT * FROM ${s}.events`), denied);
      await assert.rejects(app.unsafe(`DELETE FROM ${s}.deliveries`), denied);
      // The statement behind it does not validate: only dispatch_publish() may call it.
      await assert.rejects(
        app.unsafe(`SELECT * FROM ${s}.dispatch_insert_events('{x}', '{a}', '{NULL}', '{"{}"}',
        '{NULL}', '{NULL}')`),
        (err: PgError) => denied(err) && /function dispatch_insert_events/.test(err.message),
      );
      await assert.rejects(
        publish(other, s, { id: "evt_2", ...order }),
        (err: PgError) => denied(err) && /function dispatch_publish/.test(err.message),
      );
    } finally {
      await app.end();
      await other.end();
      await db.close();
      const admin = connect(db.url, { max: 1 });
      await admin.unsafe(`DROP ROLE ${role}; DROP ROLE ${stranger}`);
      await admin.end();
    }
  },
});
