/**
 * The audit entry of every request that changes state (POST, PATCH, PUT,
 * DELETE): who, which operation, on what, and how it ended. The entry is
 * opened here and written by the engine in the transaction of the change;
 * a request that changed nothing (refused, failed, or a replay) gets its
 * entry on its own once answered. Routes need no code of their own: the
 * operation is the route's operationId, the resource its path's.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import type { Engine } from "../engine/engine.ts";
import {
  type AuditActor,
  type AuditResource,
  type PendingAudit,
  withAudit,
} from "../engine/audit.ts";
import type { Logger } from "../observability/log.ts";
import { type Operation, routedOperation } from "./access.ts";

declare module "hono" {
  interface ContextVariableMap {
    /** Who the request is from, once known (set by authentication, or a console session). */
    auditActor: AuditActor;
    /** The request's audit entry, while it is answered. */
    audit: PendingAudit;
  }
}

const changing = new Set(["POST", "PATCH", "PUT", "DELETE"]);

/** Operations that take a body by POST but change nothing: they leave no entry. */
export const readOnlyOperations: ReadonlySet<string> = new Set(["testFilter"]);

/**
 * Says who the request is from; its entry names them. Authentication calls
 * it, and so does a console or portal session (`{ type: "console" }`).
 */
export function auditActor(c: Context, actor: AuditActor): void {
  c.set("auditActor", actor);
  const entry = c.get("audit");
  if (entry !== undefined) {
    entry.actor = actor;
    entry.tenantId = actor.tenant_id ?? entry.tenantId;
  }
}

/** Names the action and resource of a request that is not an API operation (a console form). */
export function auditAction(c: Context, action: string, resource: AuditResource): void {
  const entry = c.get("audit");
  if (entry === undefined) return;
  entry.action = action;
  entry.resource = resource;
  entry.tenantId ??= resource.type === "tenant" ? resource.id : null;
}

/**
 * Opens the entry of each state-changing request routed to an operation of
 * `operations` (or named by {@linkcode auditAction}) and settles it once
 * answered. A request refused before anyone is known (401) leaves none, so
 * no caller without a key can fill the log.
 */
export function auditChanges(
  deps: { engine: Engine; log: Logger },
  operations: () => Iterable<Operation>,
): MiddlewareHandler {
  const routed = routedOperation(operations);
  return async (c, next) => {
    if (!changing.has(c.req.method)) return await next();
    const found = routed(c);
    if (readOnlyOperations.has(found?.operation?.operationId ?? "")) return await next();
    const actor = c.get("auditActor") ?? null;
    const resource = resourceOf(found?.endpoint, c.req.path);
    const entry: PendingAudit = {
      actor,
      action: found?.operation?.operationId ?? null,
      resource,
      tenantId: actor?.tenant_id ?? (resource.type === "tenant" ? resource.id : null),
      status: changeStatus(found?.operation),
      requestId: c.get("requestId"),
    };
    c.set("audit", entry);
    await withAudit(entry, next);
    try {
      await deps.engine.settleAudit(entry, c.res.status);
    } catch (err) {
      deps.log.warn("Writing an audit entry failed", {
        error: err,
        action: entry.action,
        status: c.res.status,
      });
    }
  };
}

/**
 * The status a change answers: the route's success status, the one that is
 * not 200 when there are several (200 is then "nothing new", a replay).
 */
function changeStatus(operation: Operation | undefined): number {
  const ok = Object.keys(operation?.responses ?? {}).map(Number).filter((s) => s < 300);
  return ok.find((s) => s !== 200) ?? ok[0] ?? 200;
}

/**
 * The resource of a route: its path's first segment, singular (`/api-keys`
 * names an `api_key`), and its `:id` (or `:name`) when it has one.
 */
function resourceOf(endpoint: string | undefined, path: string): AuditResource {
  const template = (endpoint ?? path).split("/");
  const segments = path.split("/");
  const type = (template[1] ?? "").replace(/ies$/, "y").replace(/s$/, "").replaceAll("-", "_");
  const at = template.findIndex((s) => s.startsWith(":"));
  const id = at >= 0 && segments[at] !== undefined ? decoded(segments[at]!) : null;
  return { type, id };
}

function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
