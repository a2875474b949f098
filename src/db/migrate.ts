import { addHistoryPartitions, partitionWidthMs } from "./history_partitions.ts";
import type { Sql } from "./pool.ts";
import m0001 from "../../migrations/0001_init.sql" with { type: "text" };
import m0002 from "../../migrations/0002_retention.sql" with { type: "text" };
import m0003 from "../../migrations/0003_engine.sql" with { type: "text" };
import m0004 from "../../migrations/0004_tenants.sql" with { type: "text" };
import m0005 from "../../migrations/0005_traffic_control.sql" with { type: "text" };
import m0006 from "../../migrations/0006_claims_out.sql" with { type: "text" };
import m0007 from "../../migrations/0007_disabled_circuit_closed.sql" with { type: "text" };
import m0008 from "../../migrations/0008_subscription_ids_per_tenant.sql" with { type: "text" };
import m0009 from "../../migrations/0009_function_names.sql" with { type: "text" };
import m0010 from "../../migrations/0010_parked_deliveries.sql" with { type: "text" };
import m0011 from "../../migrations/0011_event_data_text.sql" with { type: "text" };
import m0012 from "../../migrations/0012_audit_log.sql" with { type: "text" };
import m0013 from "../../migrations/0013_shaping.sql" with { type: "text" };
import m0014 from "../../migrations/0014_event_types.sql" with { type: "text" };
import m0015 from "../../migrations/0015_sql_publish.sql" with { type: "text" };
import m0016 from "../../migrations/0016_ordered_delivery.sql" with { type: "text" };
import m0017 from "../../migrations/0017_subscription_auth.sql" with { type: "text" };
import m0018 from "../../migrations/0018_tls_client_certificates.sql" with { type: "text" };
import m0019 from "../../migrations/0019_attempt_outcomes_by_subscription.sql" with {
  type: "text",
};

import m0020 from "../../migrations/0020_history_partitions.sql" with { type: "text" };

/** Embedded in the program so the compiled binary needs no files beside it. */
export const migrations: readonly { version: number; name: string; sql: string }[] = [
  { version: 1, name: "0001_init", sql: m0001 },
  { version: 2, name: "0002_retention", sql: m0002 },
  { version: 3, name: "0003_engine", sql: m0003 },
  { version: 4, name: "0004_tenants", sql: m0004 },
  { version: 5, name: "0005_traffic_control", sql: m0005 },
  { version: 6, name: "0006_claims_out", sql: m0006 },
  { version: 7, name: "0007_disabled_circuit_closed", sql: m0007 },
  { version: 8, name: "0008_subscription_ids_per_tenant", sql: m0008 },
  { version: 9, name: "0009_function_names", sql: m0009 },
  { version: 10, name: "0010_parked_deliveries", sql: m0010 },
  { version: 11, name: "0011_event_data_text", sql: m0011 },
  { version: 12, name: "0012_audit_log", sql: m0012 },
  { version: 13, name: "0013_shaping", sql: m0013 },
  { version: 14, name: "0014_event_types", sql: m0014 },
  { version: 15, name: "0015_sql_publish", sql: m0015 },
  { version: 16, name: "0016_ordered_delivery", sql: m0016 },
  { version: 17, name: "0017_subscription_auth", sql: m0017 },
  { version: 18, name: "0018_tls_client_certificates", sql: m0018 },
  { version: 19, name: "0019_attempt_outcomes_by_subscription", sql: m0019 },
  { version: 20, name: "0020_history_partitions", sql: m0020 },
];

export interface MigrationStatus {
  applied: string[];
  latest: number;
}

/**
 * Applies pending migrations in one transaction under an advisory lock, so
 * several instances starting at once apply each migration exactly once, and
 * in the same transaction makes sure the history and the audit log have partitions ahead,
 * `partitionWidthMs` and `auditPartitionWidthMs` wide (default: as for a
 * history kept forever). `upTo` stops at that version (tests and benchmarks
 * of a migration), with no partitions made.
 */
export async function migrate(
  sql: Sql,
  options: { partitionWidthMs?: number; auditPartitionWidthMs?: number; upTo?: number } = {},
): Promise<MigrationStatus> {
  return await sql.begin(async (tx) => {
    // A migration rewrites whole tables: no statement timeout applies to it.
    await tx`SET LOCAL statement_timeout = 0`;
    await tx`SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.dispatch_migrations'))`;
    await tx`CREATE TABLE IF NOT EXISTS dispatch_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`;
    const done = new Set(
      (await tx<{ version: number }[]>`SELECT version FROM dispatch_migrations`).map((r) =>
        r.version
      ),
    );
    const applied: string[] = [];
    for (const m of migrations) {
      if (done.has(m.version) || m.version > (options.upTo ?? Infinity)) continue;
      await tx.unsafe(m.sql);
      await tx`INSERT INTO dispatch_migrations (version, name) VALUES (${m.version}, ${m.name})`;
      applied.push(m.name);
    }
    if (options.upTo === undefined) {
      // In the migration's transaction: the moment it commits, new rows have a partition.
      const t = tx as unknown as Sql;
      await addHistoryPartitions(t, "events", options.partitionWidthMs ?? partitionWidthMs(null));
      await addHistoryPartitions(
        t,
        "audit",
        options.auditPartitionWidthMs ?? partitionWidthMs(null),
      );
    }
    return { applied, latest: latestVersion() };
  });
}

/** The schema version in the database, 0 when none was applied. */
export async function schemaVersion(sql: Sql): Promise<number> {
  const [row] = await sql<{ version: number | null }[]>`
    SELECT CASE WHEN to_regclass('dispatch_migrations') IS NULL THEN 0 END AS version`;
  if (row?.version === 0) return 0;
  const [v] = await sql<{ version: number }[]>`
    SELECT coalesce(max(version), 0)::int AS version FROM dispatch_migrations`;
  return v?.version ?? 0;
}

export function latestVersion(): number {
  return migrations.at(-1)?.version ?? 0;
}
