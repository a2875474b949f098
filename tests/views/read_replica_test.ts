import assert from "node:assert/strict";
import { loadConfig } from "../../src/config.ts";
import { openDatabase } from "../../src/db/open.ts";
import { silentLogger } from "../../src/observability/log.ts";
import { createViews } from "../../src/views/views.ts";
import { buildApp } from "../helpers/app.ts";
import { testDatabase } from "../helpers/db.ts";
import { apiClient, requestInit } from "../helpers/http.ts";
import { serviceEnv } from "../helpers/service.ts";

const embedded = Deno.env.get("DISPATCH_TEST_EMBEDDED") === "1";

Deno.test("lists read from the replica and reads by id from the primary, so a new event is found by id before a lagging replica lists it", async () => {
  const primary = await testDatabase();
  // A migrated schema with nothing in it: a replica that has not replayed the writes yet.
  const replica = await testDatabase();
  try {
    const views = createViews(primary.sql, replica.sql);
    const app = buildApp({ ...primary, views });
    const api = apiClient((method, path, body, headers) =>
      Promise.resolve(app.request(path, requestInit(method, body, headers)))
    );
    await api("POST", "/subscriptions", { id: "sub_a", url: "http://127.0.0.1:9/a" });
    await api("POST", "/events", { id: "evt_1", type: "order.created", data: {} });

    assert.equal((await api("GET", "/events/evt_1")).id, "evt_1");
    assert.equal((await api("GET", "/events/evt_1/deliveries")).data.length, 1);
    assert.equal((await api("GET", "/subscriptions/sub_a")).id, "sub_a");

    assert.deepEqual((await api("GET", "/events")).data, []);
    assert.deepEqual((await api("GET", "/deliveries")).data, []);
    assert.deepEqual((await api("GET", "/subscriptions")).data, []);
  } finally {
    await replica.close();
    await primary.close();
  }
});

Deno.test({
  name: "DATABASE_READ_URL opens a pool of its own, named apart in pg_stat_activity",
  // PGlite ignores start-up parameters, application_name included.
  ignore: embedded,
  async fn() {
    const db = await testDatabase();
    const opened = await openDatabase(
      loadConfig(serviceEnv(db, { DATABASE_READ_URL: db.url })).database,
      silentLogger,
    );
    try {
      const name = (sql: typeof db.sql) =>
        sql<{ name: string }[]>`SELECT current_setting('application_name') AS name`
          .then((rows) => rows[0]!.name);
      assert.notEqual(opened.readSql, opened.sql);
      assert.equal(await name(opened.sql), `dispatch:${db.schema}`);
      assert.equal(await name(opened.readSql), `dispatch:${db.schema}:read`);
    } finally {
      await opened.close();
      await db.close();
    }
  },
});

Deno.test("without DATABASE_READ_URL every read uses the one pool", async () => {
  const db = await testDatabase();
  const opened = await openDatabase(loadConfig(serviceEnv(db)).database, silentLogger);
  try {
    assert.equal(opened.readSql, opened.sql);
  } finally {
    await opened.close();
    await db.close();
  }
});
