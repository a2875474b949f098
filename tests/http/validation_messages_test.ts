import assert from "node:assert/strict";
import { assertInvalidField, json, testApp } from "../helpers/app.ts";

Deno.test("a missing or wrongly typed field is named in plain words, every field in details", async () => {
  const t = await testApp();
  try {
    const missing = await t.call("POST", "/events", { data: 5 });
    const body = await json(missing.clone());
    await assertInvalidField(missing, "type");
    assert.equal(body.error.message, 'Invalid field "type": is required (and 1 more)');
    assert.deepEqual(body.error.details, [
      { field: "type", message: "is required" },
      { field: "data", message: "must be a JSON object" },
    ]);
    const wrong = await t.call("POST", "/subscriptions", {
      url: 5,
      event_types: [],
      active: "yes",
      max_attempts: 1.5,
    });
    assert.deepEqual((await json(wrong)).error.details, [
      { field: "url", message: "must be a string" },
      { field: "event_types", message: "must not be empty" },
      { field: "active", message: "must be true or false" },
      { field: "max_attempts", message: "must be a whole number" },
    ]);
    const query = await t.call("GET", "/events?limit=5000&status=nope");
    assert.deepEqual((await json(query)).error.details, [
      { field: "limit", message: "must be at most 1000" },
      {
        field: "status",
        message:
          'must be one of "no_subscribers", "pending", "processing", "retrying", "delivered", "failed"',
      },
    ]);
  } finally {
    await t.close();
  }
});
