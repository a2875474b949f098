import assert from "node:assert/strict";
import { helpText, parseCommand, shownDefault } from "../src/cli.ts";
import { type Variable, variables } from "../src/config.ts";
import { VERSION } from "../src/version.ts";
import { runMain } from "./helpers/process.ts";

const entries = Object.entries(variables) as [string, Variable][];
Deno.test("--help lists every environment variable with its meaning and default", async () => {
  const { code, stdout } = await runMain(["--help"]);
  assert.equal(code, 0);
  for (const [name, variable] of entries) {
    const at = stdout.indexOf(`  ${name} `);
    assert.ok(at >= 0, `${name} is missing from --help`);
    const block = stdout.slice(at, stdout.indexOf("\n", stdout.indexOf("\n", at) + 1));
    assert.ok(block.includes(variable.about), `${name}: ${block}`);
    assert.ok(block.includes(`default: ${shownDefault(variable)}`), `${name}: ${block}`);
  }
  // A command's own help carries the table too.
  assert.ok(helpText("worker").includes("WORKER_CONCURRENCY"));
});

Deno.test("--version prints the version and exits 0", async () => {
  assert.deepEqual(parseCommand(["-V"]), { kind: "version" });
  const { code, stdout, stderr } = await runMain(["--version"]);
  assert.equal(code, 0);
  assert.equal(stdout, `dispatch ${VERSION}\n`);
  assert.equal(stderr, "");
});

Deno.test("docs/configuration.md's table has every variable with the default and meaning --help shows", async () => {
  const page = await Deno.readTextFile(new URL("../docs/configuration.md", import.meta.url));
  const rows = new Map<string, string[]>();
  for (const line of page.split("\n")) {
    const cells = line.split("|").slice(1, -1).map((c) => c.trim().replaceAll("`", ""));
    if (cells.length === 3 && /^[A-Z_]+$/.test(cells[0]!)) rows.set(cells[0]!, cells.slice(1));
  }
  assert.deepEqual([...rows.keys()], entries.map(([name]) => name));
  for (const [name, variable] of entries) {
    assert.deepEqual(rows.get(name), [shownDefault(variable), variable.about], name);
  }
});
