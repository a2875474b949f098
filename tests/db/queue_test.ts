import assert from "node:assert/strict";
import { claimDeliveries, releaseDeliveries } from "../../src/db/queue.ts";
import { testDatabase } from "../helpers/db.ts";

async function threeClaimed(sql: Awaited<ReturnType<typeof testDatabase>>["sql"]) {
  await sql`INSERT INTO subscriptions (id, url, event_types, secret)
    VALUES ('s', 'http://127.0.0.1:9/', '{*}', 'a-secret-of-16-chars')`;
  await sql`INSERT INTO events (id, type, data) SELECT 'e' || g, 'a', '{}'
    FROM generate_series(1, 3) g`;
  await sql`INSERT INTO deliveries (event_id, subscription_id)
    SELECT 'e' || g, 's' FROM generate_series(1, 3) g`;
  const claimed = await claimDeliveries(sql, { workerId: "w", limit: 3, leaseMs: 60_000 });
  assert.equal(claimed.length, 3);
  return claimed.map((d) => d.id).sort((a, b) => a - b);
}

Deno.test("releaseDeliveries() hands back only the given deliveries, uncounted", async () => {
  const db = await testDatabase();
  try {
    const [a, b, c] = await threeClaimed(db.sql);
    assert.equal(await releaseDeliveries(db.sql, "other-worker", { only: [a!] }), 0);
    assert.equal(await releaseDeliveries(db.sql, "w", { only: [a!, b!] }), 2);
    assert.equal(await releaseDeliveries(db.sql, "w", { only: [] }), 0);
    const rows = await db.sql`SELECT id, status, attempts, locked_by FROM deliveries ORDER BY id`;
    assert.deepEqual(rows.map((r) => [r.id, r.status, r.attempts, r.locked_by]), [
      [a, "pending", 0, null],
      [b, "pending", 0, null],
      [c, "processing", 1, "w"],
    ]);
  } finally {
    await db.close();
  }
});

Deno.test("releaseDeliveries() hands back everything the worker holds except what it still sends", async () => {
  const db = await testDatabase();
  try {
    const [a, b, c] = await threeClaimed(db.sql);
    assert.equal(await releaseDeliveries(db.sql, "w", { except: [b!] }), 2);
    const rows = await db.sql`SELECT id, status, locked_by FROM deliveries ORDER BY id`;
    assert.deepEqual(rows.map((r) => [r.id, r.status, r.locked_by]), [
      [a, "pending", null],
      [b, "processing", "w"],
      [c, "pending", null],
    ]);
  } finally {
    await db.close();
  }
});
