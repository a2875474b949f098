/**
 * The reads, bound to one database: what the API and a console page call.
 * Each is a function of `src/views/` with its `sql` argument supplied.
 * Lists, counts, stats and the console's charts may lag the primary by a
 * replica's replay lag, so they read from `replica` (DATABASE_READ_URL).
 * A read by id stays on the primary, so a resource just written is found;
 * so do the reads that decide something (state, secrets, the catalog) and
 * the small lists an admin writes and reads back at once (keys, types).
 *
 * @module
 */
import { latestVersion, schemaVersion } from "../db/migrate.ts";
import type { Sql } from "../db/pool.ts";
import { listApiKeys } from "./api_keys.ts";
import { listAuditLog } from "./audit.ts";
import {
  activity,
  failingSubscriptions,
  subscriptionActivity,
  tenantQueue,
  troubledSubscriptions,
} from "./console.ts";
import {
  countDeliveries,
  getDelivery,
  listAttempts,
  listDeliveries,
  listEventDeliveries,
} from "./deliveries.ts";
import { getEvent, listEvents } from "./events.ts";
import { getEventType, listEventTypes, readEventCatalog } from "./event_types.ts";
import { queueStats, subscriptionStats } from "./stats.ts";
import {
  clientCertificateExpiries,
  getSubscription,
  listSecretsWithPrefix,
  listSubscriptions,
  subscriptionState,
  tenantsWithSubscription,
} from "./subscriptions.ts";
import { tenantSummary } from "./tenants.ts";
import { filterProblem, testFilter } from "./filters.ts";

export type Views = ReturnType<typeof createViews>;

export function createViews(sql: Sql, replica: Sql = sql) {
  const primary = bindSql(sql, {
    getEvent,
    // An event's attempts and deliveries: read by its id, right after it was published.
    listAttempts,
    listEventDeliveries,
    getDelivery,
    getSubscription,
    subscriptionState,
    tenantsWithSubscription,
    listSecretsWithPrefix,
    clientCertificateExpiries,
    listApiKeys,
    listEventTypes,
    getEventType,
    readEventCatalog,
    schemaVersion,
    filterProblem,
    testFilter,
  });
  const lagging = bindSql(replica, {
    listEvents,
    listDeliveries,
    countDeliveries,
    listSubscriptions,
    subscriptionStats,
    queueStats,
    tenantSummary,
    activity,
    failingSubscriptions,
    troubledSubscriptions,
    subscriptionActivity,
    tenantQueue,
  });
  return { ...primary, ...lagging, latestVersion, audit: bindSql(replica, { list: listAuditLog }) };
}

// deno-lint-ignore no-explicit-any -- any argument list, checked per function by Bound
type Read = (sql: Sql, ...args: any[]) => unknown;
type Bound<F> = F extends (sql: Sql, ...args: infer A) => infer R ? (...args: A) => R : never;

function bindSql<T extends Record<string, Read>>(
  sql: Sql,
  reads: T,
): { [K in keyof T]: Bound<T[K]> } {
  return Object.fromEntries(
    Object.entries(reads).map(([name, read]) => [name, (...args: unknown[]) => read(sql, ...args)]),
  ) as { [K in keyof T]: Bound<T[K]> };
}
