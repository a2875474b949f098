import assert from "node:assert/strict";
import {
  circuitStates,
  deliveryStatuses,
  eventStatuses,
  eventStatusOf,
  heldByReasons,
  orderings,
} from "../../src/engine/states.ts";
import { keyScopes } from "../../src/views/api_keys.ts";
import { withTestDatabase } from "../helpers/db.ts";

Deno.test("the migrations' CHECK constraints allow exactly the values of the state list", () =>
  withTestDatabase(async (db) => {
    const rows = await db.sql<{ name: string; def: string }[]>`
      SELECT conrelid::regclass::text || '.' || conname AS name, pg_get_constraintdef(oid) AS def
      FROM pg_constraint
      WHERE contype = 'c' AND connamespace = current_schema()::regnamespace`;
    /** The values of the `column = ANY (ARRAY[…])` check on `table`, in the order written. */
    const allowed = (table: string, column: string) => {
      const check = rows.find((r) => r.name === `${table}.${table}_${column}_check`);
      assert.ok(check, `no CHECK on ${table}.${column}`);
      return [...check.def.matchAll(/'([^']*)'::text/g)].map((m) => m[1]);
    };
    assert.deepEqual(allowed("deliveries", "status"), [...deliveryStatuses]);
    assert.deepEqual(allowed("deliveries", "held_by"), [...heldByReasons]);
    assert.deepEqual(allowed("subscriptions", "circuit_state"), [...circuitStates]);
    assert.deepEqual(allowed("subscriptions", "ordering"), [...orderings]);
    assert.deepEqual(allowed("api_keys", "scope"), [...keyScopes]);
  }));

Deno.test("an event's status is the first of processing, retrying, pending, failed, delivered that a delivery has", () => {
  const none = { pending: 0, processing: 0, delivered: 0, retrying: 0, failed: 0 };
  assert.equal(eventStatusOf(none), "no_subscribers");
  assert.equal(eventStatusOf({ ...none, delivered: 3 }), "delivered");
  assert.equal(eventStatusOf({ ...none, delivered: 3, failed: 1 }), "failed");
  assert.equal(eventStatusOf({ ...none, failed: 1, pending: 1 }), "pending");
  assert.equal(eventStatusOf({ ...none, pending: 1, retrying: 1 }), "retrying");
  assert.equal(eventStatusOf({ ...none, retrying: 1, processing: 1 }), "processing");
  assert.ok(eventStatuses.every((s) => s === "no_subscribers" || s in none));
});
