/** Start-up failures a new user meets first, each said in one line that says what to do. */
import assert from "node:assert/strict";
import { testDatabase } from "../helpers/db.ts";
import { runMain } from "../helpers/process.ts";
import { serviceEnv } from "../helpers/service.ts";

const logLines = (stdout: string) => stdout.trim().split("\n").map((l) => JSON.parse(l));

Deno.test("a port in use stops start-up with one line naming ADDR and the port", async () => {
  const db = await testDatabase();
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const { port } = taken.addr;
    const out = await runMain(["serve"], serviceEnv(db, { ADDR: `127.0.0.1:${port}` }));
    assert.equal(out.code, 2);
    assert.equal(out.stderr, "");
    const last = logLines(out.stdout).at(-1);
    assert.equal(last.level, "error");
    assert.equal(
      last.msg,
      `Cannot listen on ADDR "127.0.0.1:${port}": port ${port} is in use by another process (stop it, or set ADDR to another port)`,
    );
  } finally {
    taken.close();
    await db.close();
  }
});

// PGlite takes any database and role name; only a real server refuses them.
const realServer = Deno.env.get("DISPATCH_TEST_EMBEDDED") !== "1";

/** The suite's server with a password in the URL, and one part changed. */
function urlWith(change: (u: URL) => void): string {
  const u = new URL(Deno.env.get("DATABASE_URL")!);
  u.password = "hunter2";
  change(u);
  return u.toString();
}

for (
  const [what, change, said] of [
    [
      "a database that does not exist",
      (u: URL) => (u.pathname = "/no_such_database"),
      'database "no_such_database" does not exist (SQLSTATE 3D000)',
    ],
    [
      "a role the server refuses",
      (u: URL) => (u.username = "no_such_role"),
      'role "no_such_role" does not exist (SQLSTATE 28000)',
    ],
  ] as const
) {
  Deno.test({
    name:
      `${what} stops start-up at once with the server's message and the URL without its password`,
    ignore: !realServer,
    async fn() {
      const url = urlWith(change);
      const out = await runMain(["serve"], { DATABASE_URL: url, ADDR: "127.0.0.1:0" });
      assert.equal(out.code, 1);
      const lines = logLines(out.stdout);
      // No minute of retries: the first answer is final.
      assert.ok(!lines.some((l) => l.msg === "Waiting for the database"), out.stdout);
      const shown = url.replace(":hunter2@", ":***@");
      assert.equal(
        lines.at(-1).error.message,
        `The database at "${shown}" refused Dispatch: ${said}. Check DATABASE_URL`,
      );
      assert.ok(!out.stdout.includes("hunter2"));
    },
  });
}
