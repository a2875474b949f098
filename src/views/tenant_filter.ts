import type { Sql } from "../db/pool.ts";

/** Restricts a read or write to one tenant's rows; without `tenantId`, to none. */
export interface TenantFilter {
  /** Only this tenant's rows: another tenant's, or one without a tenant, is as if absent. */
  tenantId?: string | undefined;
}

/** `AND <alias>.tenant_id = …` when the filter names a tenant, nothing otherwise. */
export function ofTenant(sql: Sql, alias: string, filter: TenantFilter) {
  return filter.tenantId === undefined
    ? sql``
    : sql`AND ${sql(alias)}.tenant_id = ${filter.tenantId}`;
}
