/**
 * Runs the test suite against DATABASE_URL, or, when it is unset, against an
 * embedded database started here for the whole run.
 */
import { startEmbedded } from "../src/db/embedded.ts";

const env: Record<string, string> = {};
let embedded: Awaited<ReturnType<typeof startEmbedded>> | null = null;
let dataDir: string | null = null;
if (!Deno.env.get("DATABASE_URL")) {
  dataDir = await Deno.makeTempDir({ prefix: "dispatch-test-" });
  embedded = await startEmbedded({ dataDir });
  env.DATABASE_URL = embedded.url;
  // For the few tests that need a real server's features (pg_terminate_backend).
  env.DISPATCH_TEST_EMBEDDED = "1";
  console.log(`DATABASE_URL is unset: testing against an embedded database (${embedded.url})`);
}
// PGlite is one session shared by every connection (search_path included), so
// test files that each use their own schema must take turns on it.
const parallel = embedded ? [] : ["--parallel"];
const args = ["test", "--allow-all", ...parallel, "--trace-leaks", ...Deno.args];
const child = new Deno.Command(Deno.execPath(), { args, env, stdin: "null" }).spawn();
const { code } = await child.status;
await embedded?.stop();
if (dataDir) await Deno.remove(dataDir, { recursive: true });
Deno.exit(code);
