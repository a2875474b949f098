import assert from "node:assert/strict";
import type { Sql } from "../../src/db/pool.ts";
import { tenantSummary } from "../../src/views/tenants.ts";
import { testDatabase } from "../helpers/db.ts";

Deno.test("tenantSummary() reads the tenant's own index entries, not every event and delivery", async () => {
  const db = await testDatabase();
  try {
    await db.sql`
      INSERT INTO subscriptions (id, url, event_types, secret, tenant_id)
      VALUES ('s_acme', 'http://127.0.0.1:9/', '{*}', 's', 'acme'),
        ('s_big', 'http://127.0.0.1:9/', '{*}', 's', 'big')`;
    await db.sql`
      INSERT INTO events (id, type, data, tenant_id)
      SELECT 'e' || i, 'a', '{}', CASE WHEN i <= 3 THEN 'acme' ELSE 'big' END
      FROM generate_series(1, 20000) i`;
    await db.sql`
      INSERT INTO deliveries (event_id, subscription_id, subscription_seq)
      SELECT e.id, s.id, s.seq FROM events e JOIN subscriptions s ON s.tenant_id = e.tenant_id`;
    await db.sql`ANALYZE`;
    const reads = await db.sql.begin(async (tx) => {
      // This backend's scans as the server counts them, before and after.
      const scans = () =>
        tx<{ relname: string; seq_scan: number; idx_scan: number }[]>`
          SELECT t.root AS relname, sum(s.seq_scan)::int AS seq_scan,
            sum(s.idx_scan)::int AS idx_scan
          FROM unnest(ARRAY['deliveries', 'events']) AS t(root)
          JOIN pg_stat_xact_user_tables s
            ON s.relid IN (SELECT relid FROM pg_partition_tree(t.root::regclass))
          -- A scan of an empty partition (made ahead) reads nothing.
          WHERE pg_relation_size(s.relid) > 0
          GROUP BY t.root ORDER BY t.root`;
      const before = await scans();
      // A transaction runs the same statements as the pool.
      const summary = await tenantSummary(tx as unknown as Sql, "acme");
      assert.deepEqual(summary, {
        id: "acme",
        subscriptions: 1,
        events: 3,
        deliveries: { pending: 3, processing: 0, retrying: 0, delivered: 0, failed: 0 },
      });
      return (await scans()).map((r, i) => ({
        relname: r.relname,
        seq_scan: r.seq_scan - before[i]!.seq_scan,
        idx_scan: r.idx_scan - before[i]!.idx_scan,
      }));
    });
    assert.deepEqual(reads.map((r) => [r.relname, r.seq_scan, r.idx_scan > 0]), [
      ["deliveries", 0, true],
      ["events", 0, true],
    ]);
  } finally {
    await db.close();
  }
});

Deno.test("deliveries by their event's tenant (or none) and type: the list, the count and one", async () => {
  const db = await testDatabase();
  try {
    // Event i: tenant acme, big or none in turn; type a or b in turn of two.
    await db.sql`
      INSERT INTO events (id, type, data, tenant_id)
      SELECT 'e' || i, CASE WHEN i % 2 = 0 THEN 'a' ELSE 'b' END, '{}',
        (ARRAY['acme', 'big', NULL])[i % 3 + 1]
      FROM generate_series(1, 60) i ORDER BY i`;
    await db.sql`
      INSERT INTO deliveries (event_id, subscription_id, subscription_seq, status)
      SELECT 'e' || i, 's', 1, CASE WHEN i % 5 = 0 THEN 'pending' ELSE 'failed' END
      FROM generate_series(1, 60) i ORDER BY i`;
    for (const tenantId of [undefined, "acme", null]) {
      for (const eventType of [undefined, "a"]) {
        const filter = { tenantId, eventType, status: "failed" as const };
        const expected = (await db.sql<{ id: number }[]>`
          SELECT d.id::int FROM deliveries d JOIN events e ON e.id = d.event_id
          WHERE d.status = 'failed'
            ${
          tenantId === undefined
            ? db.sql``
            : tenantId === null
            ? db.sql`AND e.tenant_id IS NULL`
            : db.sql`AND e.tenant_id = ${tenantId}`
        }
            ${eventType === undefined ? db.sql`` : db.sql`AND e.type = ${eventType}`}
          ORDER BY d.id DESC`).map((r) => r.id);
        assert.ok(expected.length > 0);
        const { deliveries } = await db.views.listDeliveries({ ...filter, limit: 100 });
        assert.deepEqual(deliveries.map((d) => Number(d.id)), expected, `${tenantId} ${eventType}`);
        assert.equal(await db.views.countDeliveries(filter), expected.length);
        const other = tenantId === "acme" ? null : "acme";
        const one = await db.views.getDelivery(expected[0]!, { tenantId });
        assert.equal(Number(one?.id), expected[0]);
        if (tenantId !== undefined) {
          assert.equal(await db.views.getDelivery(expected[0]!, { tenantId: other }), undefined);
        }
      }
    }
  } finally {
    await db.close();
  }
});
