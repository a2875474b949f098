import assert from "node:assert/strict";
import { KEY_TABLE_MAX_AGE_MS } from "../../src/security/api_key_table.ts";
import { testDatabase } from "../helpers/db.ts";
import { spawnDispatch } from "../helpers/process.ts";
import { bearer } from "../helpers/http.ts";

const admin = "admin-key-0123456789";

Deno.test("a key revoked in one process is refused by a second process within the documented bound", async () => {
  const db = await testDatabase();
  const env = { DISPATCH_API_KEYS: admin, WORKER_CONCURRENCY: "2" };
  const procs = [
    await spawnDispatch(db, { env, role: "api" }),
    await spawnDispatch(db, { env, role: "api" }),
  ];
  const [one, two] = procs.map((p) => p.url) as [string, string];
  const call = (url: string, key: string, init: RequestInit = {}) =>
    fetch(url, {
      ...init,
      headers: { ...bearer(key), "content-type": "application/json" },
    });
  try {
    const created = await call(`${one}/api-keys`, admin, {
      method: "POST",
      body: JSON.stringify({ scope: "tenant", tenant_id: "acme" }),
    });
    const { id, key } = await created.json();
    const before = await call(`${two}/subscriptions`, key);
    assert.equal(before.status, 200, "the second process takes the new key");
    await before.body?.cancel();

    const revoked = await call(`${one}/api-keys/${id}`, admin, { method: "DELETE" });
    assert.equal(revoked.status, 204);
    const revokedAt = performance.now();
    const answers: { sentAfterMs: number; status: number }[] = [];
    while (performance.now() - revokedAt < KEY_TABLE_MAX_AGE_MS + 1000) {
      const sentAfterMs = performance.now() - revokedAt;
      const res = await call(`${two}/subscriptions`, key);
      await res.body?.cancel();
      answers.push({ sentAfterMs, status: res.status });
      await new Promise((r) => setTimeout(r, 50));
    }
    // Every request sent once the bound has passed is refused, whatever the machine's load.
    const late = answers.filter((a) => a.sentAfterMs >= KEY_TABLE_MAX_AGE_MS);
    assert.ok(late.length > 0);
    assert.deepEqual(late.filter((a) => a.status !== 401), [], JSON.stringify(answers));
    const first = answers.find((a) => a.status === 401)!;
    console.log(
      `refused by the second process ${first.sentAfterMs.toFixed(0)} ms after the revocation`,
    );
  } finally {
    for (const p of procs) p.child.kill("SIGTERM");
    for (const p of procs) assert.equal(await p.exited, 0);
    await db.close();
  }
});
