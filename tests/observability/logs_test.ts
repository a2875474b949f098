import assert from "node:assert/strict";
import { connect } from "../../src/db/pool.ts";
import { createLogger } from "../../src/observability/log.ts";
import { databaseUrl, testDatabase } from "../helpers/db.ts";
import { startReceiver } from "../helpers/receiver.ts";
import { eventually, startTestService } from "../helpers/service.ts";
import { bearer, overHttp } from "../helpers/http.ts";

const apiKey = "test-api-key-do-not-print";
const secretsKey = btoa("0123456789abcdef0123456789abcdef");
const signingSecret = "whsec_" + btoa("signing-secret-bytes-0123456789");

Deno.test("log lines are JSON with the documented fields and never print a secret", async () => {
  const db = await testDatabase();
  const receiver = startReceiver((_r, i) => new Response("", { status: i === 0 ? 500 : 200 }));
  const lines: string[] = [];
  const svc = await startTestService(db, {
    env: { DISPATCH_API_KEYS: `${apiKey},second-key`, DISPATCH_SECRETS_KEY: secretsKey },
    log: createLogger({ level: "debug", write: (l) => lines.push(l) }),
  });
  try {
    const send = overHttp(svc.url);
    const call = (method: string, path: string, body: unknown) =>
      send(method, path, body, bearer(apiKey)).then((r) => r.text());
    await call("POST", "/subscriptions", {
      id: "sub_logs",
      url: receiver.url,
      secret: signingSecret,
    });
    await call("POST", "/events", { id: "evt_logs", type: "order.created", data: {} });
    await receiver.waitFor(2);
    await eventually(() =>
      Promise.resolve(
        lines.some((l) => l.includes('"outcome":"delivered"')) ? true : undefined,
      ), { what: "the second attempt to be logged" });
  } finally {
    await svc.stop();
    await receiver.close();
    await db.close();
  }

  const entries = lines.map((l) => JSON.parse(l));
  for (const e of entries) {
    assert.match(e.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(["debug", "info", "warn", "error"].includes(e.level), e.level);
    assert.equal(typeof e.msg, "string");
  }
  const text = lines.join("\n");
  for (const secret of [apiKey, "second-key", secretsKey, signingSecret, signingSecret.slice(6)]) {
    assert.ok(!text.includes(secret), `a log line contains "${secret}"`);
  }

  const started = entries.find((e) => e.msg === "Dispatch started");
  assert.equal(started.role, "serve");
  assert.equal(started.url, svc.url);
  assert.equal(started.database, "external");
  assert.equal(typeof started.database_url, "string");
  assert.equal(started.settings.api_keys_count, 2);
  assert.equal(started.settings.secrets_key_set, true);
  assert.equal(started.settings.worker_concurrency, 16);
  assert.equal(started.settings.retention_days, null);

  const requests = entries.filter((e) => e.msg === "Request");
  assert.deepEqual(requests.map((e) => [e.method, e.path, e.status]), [
    ["POST", "/subscriptions", 201],
    ["POST", "/events", 201],
  ]);
  for (const e of requests) {
    assert.equal(typeof e.duration_ms, "number");
    assert.match(e.request_id, /^[0-9a-f-]{36}$/);
  }

  const attempts = entries.filter((e) => e.msg === "Delivery attempt");
  assert.deepEqual(
    attempts.map((e) => [e.event_id, e.subscription_id, e.attempt, e.outcome, e.status_code]),
    [["evt_logs", "sub_logs", 1, "retrying", 500], ["evt_logs", "sub_logs", 2, "delivered", 200]],
  );
  assert.equal(attempts[0].error_class, "http_status");
  assert.equal(attempts[0].error, "Endpoint answered 500");
  assert.equal(typeof attempts[0].retry_in_ms, "number");
  assert.equal(attempts[1].retry_in_ms, null);
  for (const e of attempts) {
    assert.equal(typeof e.delivery_id, "number");
    assert.equal(typeof e.duration_ms, "number");
  }
});

/** A logger whose lines land in `lines`, parsed. */
function capture(level: "debug" | "info" | "warn" | "error" = "debug") {
  // deno-lint-ignore no-explicit-any -- log lines are arbitrary JSON
  const lines: Record<string, any>[] = [];
  const log = createLogger({ level, write: (l) => lines.push(JSON.parse(l)) });
  return { log, lines };
}

Deno.test("a field never overwrites time, level or msg, and is kept under another name", () => {
  const { log, lines } = capture();
  log.warn("Real message", { time: "yesterday", level: "debug", msg: "Forged message", n: 1 });
  assert.equal(lines.length, 1);
  const [line] = lines;
  assert.match(line!.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(line!.level, "warn");
  assert.equal(line!.msg, "Real message");
  assert.deepEqual(
    [line!.field_time, line!.field_level, line!.field_msg, line!.n],
    ["yesterday", "debug", "Forged message", 1],
  );
  assert.deepEqual(Object.keys(line!).slice(0, 3), ["time", "level", "msg"]);
});

Deno.test("an error field keeps its name, message, stack, cause and PostgreSQL code", async () => {
  const sql = connect(databaseUrl(), { max: 1 });
  let pgError: unknown;
  try {
    await sql`SELECT 1 / 0`;
  } catch (err) {
    pgError = err;
  } finally {
    await sql.end();
  }
  const { log, lines } = capture();
  log.error("Query failed", { error: new Error("Could not count", { cause: pgError }) });
  const { error } = lines[0]!;
  assert.equal(error.name, "Error");
  assert.equal(error.message, "Could not count");
  assert.match(error.stack, /^Error: Could not count\n\s+at /);
  assert.equal(error.cause.name, "PostgresError");
  assert.equal(error.cause.message, "division by zero");
  assert.equal(error.cause.code, "22012");
  assert.equal(typeof error.cause.stack, "string");
});

Deno.test("BigInt and circular values are logged instead of throwing", () => {
  const { log, lines } = capture();
  const loop: Record<string, unknown> = { name: "loop" };
  loop.self = loop;
  const shared = { id: 7 };
  const selfCaused = new Error("Keeps failing");
  selfCaused.cause = selfCaused;
  log.info("Odd values", {
    count: 12n,
    huge: 2n ** 70n,
    loop,
    twice: [shared, shared],
    error: selfCaused,
  });
  assert.equal(lines.length, 1);
  const [line] = lines;
  assert.equal(line!.count, "12");
  assert.equal(line!.huge, "1180591620717411303424");
  assert.deepEqual(line!.loop, { name: "loop", self: "[Circular]" });
  assert.deepEqual(line!.twice, [{ id: 7 }, { id: 7 }], "a repeated value is not a cycle");
  assert.equal(line!.error.message, "Keeps failing");
  assert.equal(line!.error.cause, "[Circular]");
});

Deno.test("each logger's lines reach only its own write, at its own level", () => {
  const first = capture("info");
  const second = capture("warn");
  first.log.info("For the first");
  second.log.info("Below the second's level");
  second.log.warn("For the second");
  first.log.debug("Below the first's level");
  assert.deepEqual(first.lines.map((l) => l.msg), ["For the first"]);
  assert.deepEqual(second.lines.map((l) => l.msg), ["For the second"]);
});
