import assert from "node:assert/strict";
import { testDatabase } from "../helpers/db.ts";
import { spawnDispatch } from "../helpers/process.ts";
import { startTestService } from "../helpers/service.ts";
import { startTcpProxy, throughProxy } from "../helpers/tcp_proxy.ts";

function proxyFor(url: string) {
  const target = new URL(url);
  return startTcpProxy({ hostname: target.hostname, port: Number(target.port || 5432) });
}

Deno.test("while the database does not answer, API requests answer 503 with Retry-After after REQUEST_TIMEOUT_MS", async () => {
  const db = await testDatabase();
  const proxy = proxyFor(db.url);
  const svc = await startTestService(db, {
    env: { DATABASE_URL: throughProxy(db.url, proxy), REQUEST_TIMEOUT_MS: "500" },
  });
  try {
    await svc.api("POST", "/subscriptions", { url: "http://127.0.0.1:9/hook" });
    proxy.stall();
    for (
      const [method, path, body] of [
        ["POST", "/events", JSON.stringify({ id: "evt_stalled", type: "a", data: {} })],
        ["GET", "/events/evt_stalled", undefined],
      ] as const
    ) {
      const res = await fetch(`${svc.url}${path}`, {
        method,
        headers: { "content-type": "application/json" },
        ...(body ? { body } : {}),
        // Without the deadline the request would hang; this makes the test fail instead.
        signal: AbortSignal.timeout(5_000),
      });
      assert.equal(res.status, 503, `${method} ${path}`);
      assert.equal(res.headers.get("retry-after"), "1");
      const { error } = await res.json();
      assert.equal(error.code, "unavailable");
      assert.equal(error.message, "The database did not answer within 500 ms: retry shortly");
    }
    proxy.flow();
    // The producer's retry: idempotent, whether or not the stalled insert went through.
    const again = await fetch(`${svc.url}/events`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id: "evt_stalled", type: "a", data: {} }),
    });
    assert.ok([200, 201].includes(again.status), `answered ${again.status}`);
    await again.body?.cancel();
  } finally {
    proxy.flow();
    await svc.stop();
    await proxy.close();
    await db.close();
  }
});

Deno.test("SIGTERM while the database does not answer still ends within the drain time and the fixed grace", async () => {
  const db = await testDatabase();
  const proxy = proxyFor(db.url);
  try {
    const p = await spawnDispatch(db, {
      env: { DATABASE_URL: throughProxy(db.url, proxy), SHUTDOWN_TIMEOUT_MS: "1500" },
    });
    // The workers' claims and every other statement now hang on the connection.
    proxy.stall();
    await new Promise((r) => setTimeout(r, 200));
    const start = performance.now();
    p.child.kill("SIGTERM");
    const code = await p.exited;
    const took = performance.now() - start;
    // 1500 ms of drain and the 5 s grace (SHUTDOWN_GRACE_MS), with room for a busy machine.
    assert.ok(took < 1500 + 5000 + 2500, `shutdown took ${Math.round(took)} ms`);
    assert.ok(code === 0 || code === 1, `exit code ${code}`);
    if (code === 1) {
      assert.ok(p.logs.some((l) => l.msg === "Shutdown did not finish in time: exiting now"));
    }
  } finally {
    proxy.flow();
    await proxy.close();
    await db.close();
  }
});
