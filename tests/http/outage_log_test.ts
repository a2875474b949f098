import assert from "node:assert/strict";
import { createLogger } from "../../src/observability/log.ts";
import { testDatabase } from "../helpers/db.ts";
import { eventually, startTestService } from "../helpers/service.ts";
import { startTcpProxy, throughProxy } from "../helpers/tcp_proxy.ts";

Deno.test("a database outage logs one warn when it starts and one info with the count of refused requests when it ends, and no error", async () => {
  const db = await testDatabase();
  const target = new URL(db.url);
  const proxy = startTcpProxy({ hostname: target.hostname, port: Number(target.port || 5432) });
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ write: (line) => lines.push(JSON.parse(line)) });
  // The API alone: the workers' own retries are not what this test is about.
  const svc = await startTestService(db, {
    role: "api",
    log,
    env: { DATABASE_URL: throughProxy(db.url, proxy), REQUEST_TIMEOUT_MS: "1000" },
  });
  try {
    const post = async (id: string) => {
      const res = await fetch(`${svc.url}/events`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ id, type: "a", data: {} }),
      });
      await res.body?.cancel();
      return { status: res.status, retryAfter: res.headers.get("retry-after") };
    };
    assert.equal((await post("evt_before")).status, 201);
    const start = lines.length;
    await proxy.down();
    const refused = 6;
    for (let i = 0; i < refused; i++) {
      assert.deepEqual(await post(`evt_down_${i}`), { status: 503, retryAfter: "1" });
    }
    proxy.up();
    const back = await eventually(
      () => Promise.resolve(lines.find((l) => l.msg === "Database reachable again")),
      { what: "the info line" },
    );
    assert.equal((await post("evt_after")).status, 201);
    // Besides the access log's lines, only the pair.
    const outage = lines.slice(start).filter((l) => l.msg !== "Request");
    assert.deepEqual(outage.map((l) => [l.level, l.msg]), [
      ["warn", "Database unreachable: requests that need it answer 503 until it is back"],
      ["info", "Database reachable again"],
    ]);
    assert.equal(back.refused, refused);
  } finally {
    await svc.stop();
    await proxy.close();
    await db.close();
  }
});
