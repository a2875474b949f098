/**
 * `redocly lint` of /openapi.json as served with and without API keys. The
 * document comes from the route definitions alone, so no database is needed:
 * the pool is never used and never connects.
 */
import config from "../deno.json" with { type: "json" };
import { connect } from "../src/db/pool.ts";
import { createEngine } from "../src/engine/engine.ts";
import { silentLogger } from "../src/observability/log.ts";
import { createViews } from "../src/views/views.ts";
import { buildApp } from "./helpers/app.ts";

const variants = {
  "open": {},
  "api-keys": { apiKeys: ["lint-key-0123456789"], metricsPublic: false },
};

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
    const res = await buildApp(unused, settings).request("/openapi.json");
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
