import assert from "node:assert/strict";
import { deliveryStatuses, transitions } from "../../src/delivery/lifecycle.ts";

const read = (path: string) => Deno.readTextFile(new URL(`../../${path}`, import.meta.url));
/** `handBack` as the diagrams write it: "hand back". */
const spoken = (name: string) => name.replace(/[A-Z]/g, (c) => ` ${c.toLowerCase()}`);

Deno.test("docs/lifecycle.md and the migration's diagram show every transition and state of the lifecycle", async () => {
  const page = await read("docs/lifecycle.md");
  const migration = await read("migrations/0003_engine.sql");
  for (const [name, t] of Object.entries(transitions)) {
    for (const [where, text] of [["docs/lifecycle.md", page], ["0003_engine.sql", migration]]) {
      assert.ok(text!.includes(`--${spoken(name)}-`), `${where} has no "${spoken(name)}" arrow`);
    }
    assert.ok(page.includes(`**${spoken(name)}**`), `docs/lifecycle.md does not explain ${name}`);
    assert.ok(t.why.length > 0);
  }
  for (const status of deliveryStatuses) assert.ok(migration.includes(status), status);
});

Deno.test("the database accepts exactly the lifecycle's states", async () => {
  const init = await read("migrations/0001_init.sql");
  const check = /status IN \(([^)]*)\)\)/.exec(init)![1]!;
  assert.deepEqual(check.split(",").map((s) => s.trim().replaceAll("'", "")), [
    ...deliveryStatuses,
  ]);
});
