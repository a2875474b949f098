import assert from "node:assert/strict";
import { createLogger } from "../../src/observability/log.ts";
import { tokenDigest } from "../../src/security/api_key_table.ts";
import { json, testApp } from "../helpers/app.ts";
import { databaseDumps } from "../helpers/db.ts";
import { bearer } from "../helpers/http.ts";

const admin = "admin-key-0123456789";

Deno.test("no key appears in a log line, in GET /api-keys or in a database dump: only its SHA-256 is stored", async () => {
  const lines: string[] = [];
  const log = createLogger({ level: "debug", write: (l) => lines.push(l) });
  const t = await testApp({ apiKeys: [admin] }, { log });
  try {
    const keys: { id: string; key: string }[] = [];
    for (
      const body of [{ scope: "admin" }, { scope: "publish" }, {
        scope: "tenant",
        tenant_id: "acme",
      }]
    ) {
      const created = await json(await t.call("POST", "/api-keys", body, bearer(admin)));
      keys.push(created);
      for (const path of ["/events", "/subscriptions", "/api-keys", "/nope"]) {
        await (await t.call("GET", path, undefined, bearer(created.key))).body?.cancel();
      }
      await (await t.call("POST", "/events", "{bad", bearer(created.key))).body?.cancel();
    }
    await (await t.call("DELETE", `/api-keys/${keys[0]!.id}`, undefined, bearer(admin))).body
      ?.cancel();
    await (await t.call("GET", "/events", undefined, bearer(keys[0]!.key))).body?.cancel();
    const listed = await (await t.call("GET", "/api-keys", undefined, bearer(admin))).text();
    const stored = await t.db.sql<{ id: string; token_sha256: Uint8Array }[]>`
      SELECT id, token_sha256 FROM api_keys`;
    assert.equal(stored.length, 2);
    for (const row of stored) {
      const key = keys.find((k) => k.id === row.id)!;
      assert.deepEqual(new Uint8Array(row.token_sha256), new Uint8Array(tokenDigest(key.key)));
    }

    const places = { logs: lines.join("\n"), "GET /api-keys": listed };
    const texts = [
      ...Object.entries(places),
      ...(await databaseDumps(t.db)).map((d, i) => [`dump ${i}`, d]),
    ];
    assert.ok(lines.length > 10, "requests were logged");
    for (const [where, text] of texts) {
      for (const secret of [admin, ...keys.map((k) => k.key)]) {
        assert.ok(!text!.includes(secret), `${where} contains a key`);
        assert.ok(!text!.includes(secret.slice(3, 20)), `${where} contains part of a key`);
      }
    }
  } finally {
    await t.close();
  }
});
