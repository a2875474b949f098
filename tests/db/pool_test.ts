import assert from "node:assert/strict";
import { connect, reconnectDelay } from "../../src/db/pool.ts";
import { databaseUrl } from "../helpers/db.ts";

const embedded = Deno.env.get("DISPATCH_TEST_EMBEDDED") === "1";

Deno.test({
  name: "a failure of postgres.js's own type query on a new connection does not end the process",
  // PGlite ignores start-up parameters, so the 1 ms timeout cannot cancel anything there.
  ignore: embedded,
  async fn() {
    // A 1 ms statement timeout cancels any query the driver runs of its own on a new
    // connection; postgres.js 3.4.9 left that rejection unhandled, which failed this test.
    const sql = connect(databaseUrl(), { max: 1, statementTimeoutMs: 1 });
    try {
      await assert.rejects(sql`SELECT pg_sleep(0.01)`, { code: "57014" });
      // Let any unhandled rejection surface inside the test.
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      await sql.end({ timeout: 1 });
    }
  },
});

Deno.test("reconnectDelay stays under half a second however many errors the pool has seen", () => {
  for (let retries = 0; retries <= 60; retries++) {
    const delay = reconnectDelay(retries);
    assert.ok(delay >= 0 && delay <= 0.5, `retries ${retries}: ${delay}`);
  }
  assert.ok(reconnectDelay(0) <= 0.025);
});

Deno.test({
  name: "every connection runs with the configured statement timeout",
  ignore: embedded,
  async fn() {
    const sql = connect(databaseUrl(), { max: 2, statementTimeoutMs: 1234 });
    try {
      const rows = await Promise.all([sql`SHOW statement_timeout`, sql`SHOW statement_timeout`]);
      assert.deepEqual(rows.map((r) => r[0]!.statement_timeout), ["1234ms", "1234ms"]);
    } finally {
      await sql.end({ timeout: 1 });
    }
  },
});

Deno.test({
  name: "a pool's connections run without JIT compilation",
  // PGlite ignores start-up parameters (and has no JIT).
  ignore: embedded,
  async fn() {
    const sql = connect(databaseUrl(), { max: 1 });
    try {
      const [row] = await sql<{ jit: string }[]>`SHOW jit`;
      assert.equal(row?.jit, "off");
    } finally {
      await sql.end();
    }
  },
});
