import assert from "node:assert/strict";
import { latestVersion, migrate, migrations, schemaVersion } from "../../src/db/migrate.ts";
import { connect, type Sql, useSchema } from "../../src/db/pool.ts";
import { databaseUrl } from "../helpers/db.ts";

/** A fresh, empty schema and a pool in it; dropped afterwards. */
async function emptySchema(
  test: (t: { schema: string; pool: () => Promise<Sql> }) => Promise<void>,
) {
  const url = databaseUrl();
  const schema = `t_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const admin = connect(url, { max: 1 });
  await admin.unsafe(`CREATE SCHEMA ${schema}`);
  const pools: Sql[] = [];
  try {
    await test({
      schema,
      async pool() {
        const sql = connect(url, { schema, max: 2 });
        pools.push(sql);
        await useSchema(sql, schema);
        return sql;
      },
    });
  } finally {
    for (const sql of pools) await sql.end({ timeout: 1 });
    await admin.unsafe(`DROP SCHEMA ${schema} CASCADE`);
    await admin.end();
  }
}

Deno.test({
  name: "migrate() waits for another instance's migration lock before it reads the schema",
  // PGlite is one session: a lock it holds is held by every connection.
  ignore: Deno.env.get("DISPATCH_TEST_EMBEDDED") === "1",
  fn: () =>
    emptySchema(async ({ schema, pool }) => {
      const holder = await pool();
      const locked = Promise.withResolvers<void>();
      const release = Promise.withResolvers<void>();
      // Another instance is migrating: it holds the lock migrate() takes.
      const other = holder.begin(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(hashtext(${schema} || '.dispatch_migrations'))`;
        locked.resolve();
        await release.promise;
      });
      await locked.promise;
      let finished = false;
      const running = migrate(await pool()).then((s) => (finished = true, s));
      // Until migrate() either queues for the lock or gets through without it.
      let waiting = false;
      while (!waiting && !finished) {
        const [row] = await holder<{ n: number }[]>`
          SELECT count(*)::int AS n FROM pg_locks
          WHERE locktype = 'advisory' AND NOT granted AND objid::bigint =
            (hashtext(${schema} || '.dispatch_migrations')::bigint & 4294967295)`;
        waiting = row!.n > 0;
        await new Promise((r) => setTimeout(r, 10));
      }
      const whileLocked = finished;
      release.resolve();
      await other;
      await running;
      assert.equal(whileLocked, false, "migrate() ran while another instance held the lock");
      assert.ok(waiting);
      assert.equal(await schemaVersion(holder), latestVersion());
    }),
});

Deno.test({
  name: "two migrate() at once on a fresh schema apply each migration exactly once",
  ignore: Deno.env.get("DISPATCH_TEST_EMBEDDED") === "1",
  fn: () =>
    emptySchema(async ({ pool }) => {
      const [a, b] = [await pool(), await pool()];
      const [first, second] = await Promise.all([migrate(a), migrate(b)]);
      assert.deepEqual(
        [...first.applied, ...second.applied].sort(),
        migrations.map((m) => m.name).sort(),
      );
      const rows = await a`SELECT version FROM dispatch_migrations ORDER BY version`;
      assert.deepEqual(rows.map((r) => r.version), migrations.map((m) => m.version));
    }),
});
