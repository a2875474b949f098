import assert from "node:assert/strict";
import { withTestDatabase } from "../helpers/db.ts";
import { claim, seedDeliveries } from "../helpers/queue.ts";

Deno.test("a claim stops taking deliveries once their data passes maxBytes, and always takes one", async () => {
  await withTestDatabase(async (db) => {
    await seedDeliveries(db.sql, 10);
    // Each event's data is 1,000 bytes as accepted.
    await db.sql`UPDATE events SET data_text = '"' || repeat('x', 998) || '"'`;
    const first = await claim(db.sql, { limit: 10, maxBytes: 2500 });
    assert.deepEqual(first.map((d) => d.event_id), ["e1", "e2", "e3"]);
    const one = await claim(db.sql, { limit: 10, maxBytes: 10 });
    assert.deepEqual(one.map((d) => d.event_id), ["e4"]);
    assert.equal((await claim(db.sql, { limit: 10 })).length, 6);
  });
});
