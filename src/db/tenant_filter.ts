import type { Sql } from "./pool.ts";

/** Restricts a read or write to one tenant's rows; without `tenantId`, to none. */
export interface TenantFilter {
  /**
   * Only this tenant's rows: another tenant's, or one without a tenant, is as if absent.
   * Null: only rows without a tenant.
   */
  tenantId?: string | null | undefined;
}

/** `AND <alias>.tenant_id = …` (or `IS NULL`) when the filter says, nothing otherwise. */
export function ofTenant(sql: Sql, alias: string, filter: TenantFilter) {
  if (filter.tenantId === undefined) return sql``;
  if (filter.tenantId === null) return sql`AND ${sql(alias)}.tenant_id IS NULL`;
  return sql`AND ${sql(alias)}.tenant_id = ${filter.tenantId}`;
}
