import assert from "node:assert/strict";
import { createLogger } from "../../src/observability/log.ts";
import { testApp } from "../helpers/app.ts";

// deno-lint-ignore no-explicit-any -- log lines are arbitrary JSON
type Line = Record<string, any>;

async function appWithLog(config: Parameters<typeof testApp>[0] = {}) {
  const lines: Line[] = [];
  const log = createLogger({ level: "debug", write: (l) => lines.push(JSON.parse(l)) });
  const t = await testApp(config, { log });
  const requests = () => lines.filter((l) => l.msg === "Request");
  return { t, log, lines, requests };
}

Deno.test("every request gets an id in X-Request-Id and one access log line", async () => {
  const { t, requests } = await appWithLog();
  try {
    const res = await t.call("POST", "/events", { type: "a", data: {} });
    assert.equal(res.status, 201);
    await res.body?.cancel();
    const id = res.headers.get("x-request-id");
    assert.match(id ?? "", /^[0-9a-f-]{36}$/);
    const [line, ...more] = requests();
    assert.equal(more.length, 0);
    assert.equal(line!.level, "info");
    assert.equal(line!.method, "POST");
    assert.equal(line!.path, "/events");
    assert.equal(line!.status, 201);
    assert.equal(line!.request_id, id);
    assert.equal(typeof line!.duration_ms, "number");
    assert.equal(typeof line!.time, "string");
  } finally {
    await t.close();
  }
});

Deno.test("a sane incoming X-Request-Id is kept and an unsafe one replaced", async () => {
  const { t, requests } = await appWithLog();
  try {
    const kept = await t.call("GET", "/events", undefined, { "x-request-id": "req-42.abc" });
    await kept.body?.cancel();
    assert.equal(kept.headers.get("x-request-id"), "req-42.abc");
    assert.equal(requests()[0]!.request_id, "req-42.abc");

    for (const bad of ["a b", "x".repeat(129), 'evil"\\n{}']) {
      const res = await t.call("GET", "/events", undefined, { "x-request-id": bad });
      await res.body?.cancel();
      assert.notEqual(res.headers.get("x-request-id"), bad);
      assert.match(res.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
    }
  } finally {
    await t.close();
  }
});

Deno.test("error answers carry the request id too", async () => {
  const { t, requests } = await appWithLog({ apiKeys: ["k"] });
  try {
    for (const [path, status] of [["/events", 401], ["/nope", 401]] as const) {
      const res = await t.call("GET", path, undefined, { "x-request-id": `r-${status}` });
      await res.body?.cancel();
      assert.equal(res.status, status);
      assert.equal(res.headers.get("x-request-id"), `r-${status}`);
    }
    const res = await t.call("GET", "/events/missing", undefined, { authorization: "Bearer k" });
    await res.body?.cancel();
    assert.equal(res.status, 404);
    assert.ok(res.headers.get("x-request-id"));
    assert.deepEqual(requests().map((l) => [l.status, l.level]), [
      [401, "info"],
      [401, "info"],
      [404, "info"],
    ]);
  } finally {
    await t.close();
  }
});

Deno.test("probes and scrapes are logged at debug level, the rest at info", async () => {
  const { t, requests } = await appWithLog();
  try {
    for (const path of ["/healthz", "/readyz", "/metrics", "/subscriptions"]) {
      await (await t.call("GET", path)).body?.cancel();
    }
    assert.deepEqual(requests().map((l) => [l.path, l.level]), [
      ["/healthz", "debug"],
      ["/readyz", "debug"],
      ["/metrics", "debug"],
      ["/subscriptions", "info"],
    ]);
  } finally {
    await t.close();
  }
});

Deno.test("every line logged while a request is handled carries its id, and only its own", async () => {
  const { t, log, lines } = await appWithLog();
  try {
    // With the pool ended, each readiness check logs a warning from inside its request.
    await t.db.sql.end();
    const answers = await Promise.all(
      ["ready-1", "ready-2"].map((id) =>
        t.call("GET", "/readyz", undefined, { "x-request-id": id })
      ),
    );
    for (const res of answers) await res.body?.cancel();
    assert.deepEqual(answers.map((r) => r.status), [503, 503]);
    const failed = lines.filter((l) => l.msg === "Readiness check failed");
    assert.deepEqual(failed.map((l) => l.request_id), ["ready-1", "ready-2"]);
    log.info("After the requests");
    assert.equal(lines.at(-1)!.request_id, undefined);
  } finally {
    await t.close();
  }
});
