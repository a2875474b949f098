/**
 * **audit**: the entry each request that changes state leaves, written in
 * the transaction of its change. The HTTP layer opens an entry for the
 * request ({@linkcode withAudit}); every engine method that changes state
 * runs through {@linkcode audited}, which writes the entry with the change,
 * so a change without its record cannot exist. Ingest writes its entries in
 * its own group-commit transaction (see `event_writer.ts`). A request that
 * changed nothing gets its entry on its own once answered.
 *
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { Sql } from "../db/pool.ts";

/** Who made a request: a managed key, a key of DISPATCH_API_KEYS, a session, or anyone (open API). */
export interface AuditActor {
  type: "api_key" | "env_key" | "console" | "portal" | "open";
  key_id?: string;
  tenant_id?: string;
}

export interface AuditResource {
  type: string;
  id: string | null;
}

/** A request's entry while it is answered; the HTTP layer fills it, the engine writes it. */
export interface PendingAudit {
  /** Unknown until the caller is (a request refused before that leaves no entry). */
  actor: AuditActor | null;
  action: string | null;
  resource: AuditResource;
  /** The tenant acted within: a tenant key's or session's; else the changed resource's. */
  tenantId: string | null;
  /** What a change answers (a route's success status): the status written with the change. */
  status: number;
  requestId: string;
  /** The entry's id once it is committed. */
  id?: number;
}

/** What a change touched: the id of what it created, and whose it is. */
export interface Touched {
  id?: string | null;
  tenantId?: string | null;
}

const current = new AsyncLocalStorage<PendingAudit>();

/** Runs `fn` with `entry` as the request's entry, for the changes it makes. */
export function withAudit<T>(entry: PendingAudit, fn: () => T): T {
  return current.run(entry, fn);
}

/** The request's entry when it is still to be written and complete enough to write. */
export function pendingAudit(): PendingAudit | undefined {
  const entry = current.getStore();
  return entry && entry.id === undefined && entry.actor && entry.action ? entry : undefined;
}

/** The row of `entry`, completed by what its change touched. */
function row(entry: PendingAudit, touched: Touched, status: number) {
  return {
    actor_type: entry.actor!.type,
    actor_key_id: entry.actor!.key_id ?? null,
    actor_tenant_id: entry.actor!.tenant_id ?? null,
    action: entry.action!,
    resource_type: entry.resource.type,
    resource_id: entry.resource.id ?? touched.id ?? null,
    tenant_id: entry.tenantId ?? touched.tenantId ?? null,
    status,
    request_id: entry.requestId,
  };
}

/**
 * Inserts entries, in one statement however many (ingest writes a batch's
 * at once); `touched` completes each. Answers their ids, in order.
 */
export async function insertAudit(
  sql: Sql,
  entries: readonly { entry: PendingAudit; touched?: Touched; status?: number }[],
): Promise<number[]> {
  if (entries.length === 0) return [];
  const rows = entries.map((e) => row(e.entry, e.touched ?? {}, e.status ?? e.entry.status));
  const column = <K extends keyof (typeof rows)[number]>(k: K) => rows.map((r) => r[k]);
  const ids = await sql<{ id: number }[]>`
    INSERT INTO audit_log (actor_type, actor_key_id, actor_tenant_id, action, resource_type,
      resource_id, tenant_id, status, request_id)
    SELECT * FROM unnest(${column("actor_type")}::text[], ${column("actor_key_id")}::text[],
      ${column("actor_tenant_id")}::text[], ${column("action")}::text[],
      ${column("resource_type")}::text[], ${column("resource_id")}::text[],
      ${column("tenant_id")}::text[], ${column("status")}::smallint[],
      ${column("request_id")}::text[])
    RETURNING id`;
  return ids.map((r) => r.id);
}

/**
 * Runs `change` and, when the request has an entry to write and `touched`
 * says the change did something, writes the entry in the same transaction.
 * Without an entry (a worker, a test) it is `change` alone.
 */
export async function audited<T>(
  sql: Sql,
  change: (sql: Sql) => Promise<T>,
  touched: (result: T) => Touched | null,
): Promise<T> {
  const entry = pendingAudit();
  if (!entry) return await change(sql);
  let id: number | undefined;
  const result = await sql.begin(async (tx) => {
    const result = await change(tx as unknown as Sql);
    const what = touched(result);
    if (what !== null) [id] = await insertAudit(tx as unknown as Sql, [{ entry, touched: what }]);
    return result;
  });
  if (id !== undefined) entry.id = id;
  return result as T;
}

/**
 * After the answer: the entry of a request that changed nothing is written
 * on its own, with the answer's status; one written with its change is
 * corrected when the answer's status turned out another.
 */
export async function settleAudit(sql: Sql, entry: PendingAudit, status: number): Promise<void> {
  if (!entry.actor || !entry.action) return;
  // A server error changed nothing, and the database may be why (an outage): nothing to record.
  if (entry.id === undefined && status >= 500) return;
  if (entry.id === undefined) {
    const [id] = await insertAudit(sql, [{ entry, status }]);
    entry.id = id!;
  } else if (status !== entry.status) {
    await sql`UPDATE audit_log SET status = ${status} WHERE id = ${entry.id}`;
  }
}
