/**
 * `.ci/run` itself, against the real PostgreSQL server it uses, with a
 * stand-in `deno` first on PATH: the stand-in records the database it was
 * given and passes or fails as told, so the script's own work (a database
 * per run, dropped at the end) is what is tested.
 */
import assert from "node:assert/strict";

const root = new URL("..", import.meta.url).pathname;

const psql = async (sql: string) => {
  const out = await new Deno.Command("psql", {
    args: ["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-Atc", sql],
    stdin: "null",
  }).output();
  return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
};

// The script needs the local server it starts in CI; the embedded test database is not one.
const serverUp = (await psql("SELECT 1")) === "1";

const fakeDeno = `#!/usr/bin/env bash
if [[ "$1" == --version ]]; then echo "deno ${"$"}{FAKE_VERSION} (stand-in)"; exit 0; fi
if [[ "$1 $2" == "task test" ]]; then
  psql "$DATABASE_URL" -Atc 'SELECT current_database()' >>"$FAKE_LOG"
  sleep 1
  exit "$FAKE_TEST_EXIT"
fi
`;

async function ciRun(dir: string, log: string, testExit: number) {
  const version = (await Deno.readTextFile(`${root}/.ci/run`)).match(/^DENO_VERSION=(\S+)$/m)![1]!;
  return new Deno.Command("bash", {
    args: [`${root}/.ci/run`],
    env: {
      PATH: `${dir}:${Deno.env.get("PATH")}`,
      FAKE_VERSION: version,
      FAKE_LOG: log,
      FAKE_TEST_EXIT: String(testExit),
    },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
}

Deno.test({
  name: ".ci/run gives each run a database of its own and drops it, also when the run fails",
  ignore: !serverUp,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "dispatch-ci-" });
    try {
      await Deno.writeTextFile(`${dir}/deno`, fakeDeno, { mode: 0o755 });
      const log = `${dir}/databases`;
      // Two runs at once on one server, one of them failing.
      const [passed, failed] = await Promise.all([ciRun(dir, log, 0), ciRun(dir, log, 1)]);
      assert.equal(passed.code, 0, new TextDecoder().decode(passed.stderr));
      assert.equal(failed.code, 1, new TextDecoder().decode(failed.stderr));
      const used = (await Deno.readTextFile(log)).trim().split("\n");
      assert.equal(used.length, 2, used.join(", "));
      assert.notEqual(used[0], used[1]);
      for (const name of used) {
        assert.match(name, /^dispatch_ci_\w+$/);
        assert.equal(await psql(`SELECT count(*) FROM pg_database WHERE datname = '${name}'`), "0");
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
