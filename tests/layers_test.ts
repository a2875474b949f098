/**
 * Imports go one way: from a higher layer to a lower one, never back up.
 * `main.ts` → service → http → worker → observability and security →
 * engine → views → delivery → db → leaf modules (no imports of their own
 * but other leaves: the state list, errors, ids, config, the logger).
 * Besides: nothing in `src/http/` imports `src/db/` (routes take the engine
 * and the views), and `src/delivery/` (pure) imports only leaves.
 *
 * `deno run --allow-read tests/layers_test.ts <checkout>` prints the
 * violations of another checkout, e.g. to count them before a change.
 *
 * @module
 */
import assert from "node:assert/strict";

/** Modules any layer may import: types and rules, no SQL, nothing above them. */
const leaves = new Set([
  "src/engine/states.ts",
  "src/engine/shapes.ts",
  "src/errors.ts",
  "src/ids.ts",
  "src/async.ts",
  "src/backoff.ts",
  "src/version.ts",
  "src/bounded_memo.ts",
  "src/fresh_snapshot.ts",
  "src/zod_messages.ts",
  "src/storable.ts",
  "src/config.ts",
  // Classifies error codes (no imports, no SQL): the error mapping and the writers share it.
  "src/db/errors.ts",
  "src/observability/log.ts",
  "src/observability/json_line.ts",
  "src/observability/log_context.ts",
  // Reports an outage through the probe it is given (no SQL): open.ts and the error mapping share it.
  "src/observability/outage.ts",
  "src/security/ip.ts",
  "src/security/secret_cipher.ts",
  // The SOCKS5 tunnel a delivery is pinned through: it imports only leaves, and no SQL.
  "src/security/pinned_client.ts",
]);

/** Layers from the top; a module belongs to the first whose pattern matches it. */
const layers: [string, RegExp][] = [
  ["main", /^main\.ts$/],
  ["service", /^src\/(service|cli|stop_signals)\.ts$/],
  ["http", /^src\/(http|console)\//],
  ["worker", /^src\/worker\//],
  ["cross-cutting", /^src\/(observability|security)\//],
  ["engine", /^src\/engine\//],
  ["views", /^src\/views\//],
  ["delivery", /^src\/delivery\//],
  ["db", /^src\/db\//],
];

function layerOf(path: string): { name: string; rank: number } {
  if (leaves.has(path)) return { name: "leaf", rank: layers.length };
  const rank = layers.findIndex(([, pattern]) => pattern.test(path));
  if (rank < 0) throw new Error(`${path} is in no layer: add it to one`);
  return { name: layers[rank]![0], rank };
}

/** Why `from` may not import `to`, or null when it may. */
function refusal(from: string, to: string): string | null {
  const a = layerOf(from);
  const b = layerOf(to);
  if (a.name === "http" && b.name === "db") return "http takes the engine and the views, not db";
  if (a.name === "delivery" && b.name !== "delivery" && b.name !== "leaf") {
    return "delivery is pure: it imports only leaf modules";
  }
  if (a.name === b.name || b.rank > a.rank) return null;
  return `${a.name} imports ${b.name}, a layer above it`;
}

/** Every relative import of `main.ts` and `src/` under `root`, as repository paths. */
async function imports(root: string): Promise<{ from: string; to: string }[]> {
  const found: { from: string; to: string }[] = [];
  const files = ["main.ts"];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(`${root}/${dir}`)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (/\.tsx?$/.test(entry.name)) files.push(path);
    }
  };
  await walk("src");
  for (const from of files) {
    const text = await Deno.readTextFile(`${root}/${from}`);
    for (const [, spec] of text.matchAll(/(?:from|import)\s*["'](\.{1,2}\/[^"']+)["']/g)) {
      const to = new URL(spec!, `file:///${from}`).pathname.slice(1);
      if (/\.tsx?$/.test(to)) found.push({ from, to });
    }
  }
  return found;
}

export async function violations(root: string): Promise<string[]> {
  return (await imports(root)).flatMap(({ from, to }) => {
    const why = refusal(from, to);
    return why === null ? [] : [`${from} → ${to}: ${why}`];
  });
}

Deno.test("every import of src/ goes from a higher layer to a lower one", async () => {
  assert.deepEqual(await violations(new URL("..", import.meta.url).pathname), []);
});

Deno.test("the layer rule refuses imports up, from http into db, and from delivery into SQL", () => {
  assert.equal(refusal("src/views/events.ts", "src/engine/publish.ts")?.includes("above"), true);
  assert.notEqual(refusal("src/http/app.ts", "src/db/pool.ts"), null);
  assert.notEqual(refusal("src/delivery/outcome.ts", "src/engine/claim.ts"), null);
  assert.equal(refusal("src/delivery/outcome.ts", "src/engine/states.ts"), null);
  assert.equal(refusal("src/worker/worker.ts", "src/engine/engine.ts"), null);
});

if (import.meta.main) {
  const found = await violations(Deno.args[0] ?? ".");
  console.log(found.join("\n"));
  console.log(`${found.length} imports run against the layers`);
}
