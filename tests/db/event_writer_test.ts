import assert from "node:assert/strict";
import { EventWriter } from "../../src/db/event_writer.ts";
import { countRows, testDatabase } from "../helpers/db.ts";

Deno.test("EventWriter combines concurrent inserts and one bad event fails alone", async () => {
  const db = await testDatabase();
  try {
    const writer = new EventWriter(db.sql, { channel: db.channel });
    const events = Array.from({ length: 30 }, (_, i) => ({
      id: `e${i}`,
      type: "a",
      source: null,
      // PostgreSQL's jsonb cannot hold \u0000: the statement with this event fails.
      data: i === 7 ? { s: "\u0000" } : { i },
    }));
    const results = await Promise.allSettled(events.map((e) => writer.insert(e)));
    assert.equal(results[7]!.status, "rejected");
    const created = results.filter((r) => r.status === "fulfilled" && r.value.kind === "created");
    assert.equal(created.length, 29);
    assert.equal(await countRows(db.sql, "events"), 29);
    const again = await writer.insert(events[0]!);
    assert.equal(again.kind, "replayed");
    const changed = await writer.insert({ ...events[0]!, data: { i: -1 } });
    assert.equal(changed.kind, "conflict");
  } finally {
    await db.close();
  }
});
