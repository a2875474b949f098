/**
 * `redocly lint` of /openapi.json as served with and without API keys, and
 * with an event-type catalog. The document comes from the route definitions
 * (and the catalog given here) alone, so no database is needed: the pool is
 * never used and never connects.
 */
import config from "../deno.json" with { type: "json" };
import { connect } from "../src/db/pool.ts";
import { createEngine } from "../src/engine/engine.ts";
import { EventCatalog } from "../src/http/event_types/catalog.ts";
import * as examples from "../src/http/examples.ts";
import { silentLogger } from "../src/observability/log.ts";
import { createViews } from "../src/views/views.ts";
import { buildApp } from "./helpers/app.ts";

const variants = {
  "open": {},
  "api-keys": { apiKeys: ["lint-key-0123456789"], metricsPublic: false },
  "catalog": {},
};

/** Types as the catalog lists them under `webhooks`: with a schema that refers to its own parts. */
const catalog = new EventCatalog(() =>
  Promise.resolve({
    version: 1,
    types: [
      { ...examples.newEventType, deprecated: false },
      {
        name: "order.shipped",
        description: null,
        schema: {
          type: "object",
          properties: { parcels: { type: "array", items: { $ref: "#/$defs/parcel" } } },
          $defs: { parcel: { type: "object", properties: { id: { type: "string" } } } },
        },
        example: { parcels: [{ id: "p1" }] },
        deprecated: true,
      },
      { name: "order.noted", description: null, schema: null, example: null, deprecated: false },
    ],
  }), { mode: "open" });

const sql = connect("postgres://127.0.0.1:1/unused");
const unused = {
  sql,
  engine: createEngine({ sql, channel: "unused", log: silentLogger }),
  views: createViews(sql),
};
const dir = await Deno.makeTempDir({ prefix: "dispatch-openapi-" });
let code = 1;
try {
  const files = [];
  for (const [name, settings] of Object.entries(variants)) {
    const options = name === "catalog" ? { catalog } : {};
    const res = await buildApp(unused, settings, options).request("/openapi.json");
    if (!res.ok) throw new Error(`GET /openapi.json answered ${res.status}: ${await res.text()}`);
    const file = `${dir}/${name}.json`;
    await Deno.writeTextFile(file, await res.text());
    files.push(file);
  }
  const redocly = config.imports["@redocly/cli"];
  const args = ["run", "--allow-all", redocly, "lint", "--config", ".ci/redocly.yaml", ...files];
  const env = { REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true" };
  ({ code } = await new Deno.Command(Deno.execPath(), { args, env }).spawn().status);
} finally {
  await sql.end();
  await Deno.remove(dir, { recursive: true });
}
Deno.exit(code);
