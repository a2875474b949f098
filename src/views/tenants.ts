import type { Sql } from "../db/pool.ts";

export interface TenantSummary {
  id: string;
  subscriptions: number;
  events: number;
  deliveries: {
    pending: number;
    processing: number;
    retrying: number;
    delivered: number;
    failed: number;
  };
}

/**
 * A tenant's subscriptions, events and its deliveries by status; undefined
 * when it has neither a subscription nor an event. Everything is reached
 * through the tenant's own index entries (`subscriptions_tenant`,
 * `events_tenant`, then each event's deliveries), so the cost follows what
 * the tenant has, not the size of the tables.
 */
export async function tenantSummary(sql: Sql, id: string): Promise<TenantSummary | undefined> {
  const [row] = await sql<TenantSummary[]>`
    SELECT ${id}::text AS id,
      (SELECT count(*) FROM subscriptions WHERE tenant_id = ${id})::int AS subscriptions,
      (SELECT count(*) FROM events WHERE tenant_id = ${id})::int AS events,
      (SELECT json_build_object(
         'pending', count(*) FILTER (WHERE d.status = 'pending'),
         'processing', count(*) FILTER (WHERE d.status = 'processing'),
         'retrying', count(*) FILTER (WHERE d.status = 'retrying'),
         'delivered', count(*) FILTER (WHERE d.status = 'delivered'),
         'failed', count(*) FILTER (WHERE d.status = 'failed'))
       FROM events e JOIN deliveries d ON d.event_id = e.id
       WHERE e.tenant_id = ${id}) AS deliveries`;
  if (!row || (row.subscriptions === 0 && row.events === 0)) return undefined;
  return row;
}
