/**
 * Reads of the audit log, newest first.
 *
 * @module
 */
import type { Sql } from "../db/pool.ts";
import { ofTenant, type TenantFilter } from "./tenant_filter.ts";

export interface AuditEntryRow {
  id: number;
  at: Date;
  actor: { type: string; key_id?: string; tenant_id?: string };
  action: string;
  resource: { type: string; id: string | null };
  tenant_id: string | null;
  status: number;
  request_id: string;
}

export interface AuditQuery extends TenantFilter {
  limit: number;
  /** Only entries older than this id (from a cursor). */
  before?: number | undefined;
  actorKeyId?: string | undefined;
  action?: string | undefined;
  resourceId?: string | undefined;
  /** Written at or after / before. */
  since?: Date | undefined;
  until?: Date | undefined;
}

/** A page of entries, newest first; `next` is the id to continue from, if more remain. */
export async function listAuditLog(
  sql: Sql,
  filter: AuditQuery,
): Promise<{ entries: AuditEntryRow[]; next: number | null }> {
  const { before, actorKeyId, action, resourceId, since, until } = filter;
  const rows = await sql<AuditEntryRow[]>`
    SELECT a.id, a.at,
      jsonb_strip_nulls(jsonb_build_object('type', a.actor_type, 'key_id', a.actor_key_id,
        'tenant_id', a.actor_tenant_id)) AS actor,
      a.action, jsonb_build_object('type', a.resource_type, 'id', a.resource_id) AS resource,
      a.tenant_id, a.status, a.request_id
    FROM audit_log a
    WHERE true
      ${before !== undefined ? sql`AND a.id < ${before}` : sql``}
      ${actorKeyId !== undefined ? sql`AND a.actor_key_id = ${actorKeyId}` : sql``}
      ${action !== undefined ? sql`AND a.action = ${action}` : sql``}
      ${resourceId !== undefined ? sql`AND a.resource_id = ${resourceId}` : sql``}
      ${since !== undefined ? sql`AND a.at >= ${since}` : sql``}
      ${until !== undefined ? sql`AND a.at < ${until}` : sql``}
      ${ofTenant(sql, "a", filter)}
    ORDER BY a.id DESC
    LIMIT ${filter.limit + 1}`;
  const more = rows.length > filter.limit;
  const page = rows.slice(0, filter.limit);
  return { entries: page, next: more ? page.at(-1)!.id : null };
}
