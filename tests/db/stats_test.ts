import assert from "node:assert/strict";
import type { Sql } from "../../src/db/pool.ts";
import { subscriptionStats } from "../../src/views/stats.ts";
import { withTestDatabase } from "../helpers/db.ts";
import { seedDeliveries } from "../helpers/queue.ts";

Deno.test("subscriptionStats() reads the subscription's attempts in the window through their index, not the table", () =>
  withTestDatabase(async (db) => {
    const mine = await seedDeliveries(db.sql, 4);
    const other = await seedDeliveries(db.sql, 1, { id: "other", prefix: "o" });
    // 20,000 attempts of another subscription, and two of this one outside the window.
    await db.sql`
      INSERT INTO delivery_attempts (delivery_id, event_id, subscription_id, subscription_seq,
        attempt, started_at, duration_ms, status_code, error_class, delivery_created_at)
      SELECT d.id, 'o1', 'other', ${other}, g, now(), 5, 200, NULL, d.created_at
      FROM deliveries d CROSS JOIN generate_series(1, 20000) g WHERE d.event_id = 'o1'`;
    await db.sql`
      INSERT INTO delivery_attempts (delivery_id, event_id, subscription_id, subscription_seq,
        attempt, started_at, duration_ms, status_code, error_class, delivery_created_at)
      SELECT d.id, d.event_id, 's', ${mine}, 1,
        now() - CASE WHEN d.event_id IN ('e1', 'e2') THEN interval '2 hours' ELSE interval '1 minute' END,
        CASE d.event_id WHEN 'e3' THEN 10 ELSE 30 END,
        CASE d.event_id WHEN 'e4' THEN 503 ELSE 200 END,
        CASE d.event_id WHEN 'e4' THEN 'http_status' END, d.created_at
      FROM deliveries d WHERE d.subscription_seq = ${mine}`;
    await db.sql`ANALYZE delivery_attempts`;
    const { stats, scans } = await db.sql.begin(async (tx) => {
      const count = () =>
        tx<{ seq_scan: number; idx_scan: number }[]>`
          SELECT sum(seq_scan)::int AS seq_scan, sum(idx_scan)::int AS idx_scan
          FROM pg_stat_xact_user_tables
          WHERE relid IN (SELECT relid FROM pg_partition_tree('delivery_attempts'))
            -- A scan of an empty partition (made ahead) reads nothing.
            AND pg_relation_size(relid) > 0`;
      const [before] = await count();
      const stats = await subscriptionStats(tx as unknown as Sql, mine, 3_600_000);
      const [after] = await count();
      return {
        stats,
        scans: [after!.seq_scan - before!.seq_scan, after!.idx_scan - before!.idx_scan],
      };
    });
    assert.deepEqual(stats.attempts, { http_status: 1, success: 1 });
    assert.equal(stats.success_rate, 0.5);
    assert.deepEqual(stats.latency_ms, { p50: 20, p95: 29 });
    assert.equal(scans[0], 0, "no sequential scan of delivery_attempts");
    assert.ok(scans[1]! > 0);
  }));
