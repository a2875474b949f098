/**
 * Who may do what. Scopes decide which operations a key may call (checked
 * before the request's body is read); tenancy decides which resources it
 * sees: a `tenant` key's reads and writes are filtered to its own tenant,
 * so another tenant's resource answers exactly as one that does not exist.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import type { KeyScope } from "../views/api_keys.ts";
import type { TenantFilter } from "../views/tenant_filter.ts";
import { ApiError, notFound } from "../errors.ts";

/** Who is calling: an admin key (or nobody, on an open API), a publish key or a tenant's key. */
export interface Principal {
  scope: KeyScope;
  /** The tenant of a `tenant` key; null for the other scopes. */
  tenantId: string | null;
}

declare module "hono" {
  interface ContextVariableMap {
    principal: Principal;
  }
}

export const admin: Principal = { scope: "admin", tenantId: null };

/**
 * The scopes besides `admin` that may call each operation, by operationId.
 * An operation not listed is for admin keys only.
 */
const grants: Record<string, readonly KeyScope[]> = {
  createEvent: ["publish"],
  createEventBatch: ["publish"],
  listEvents: ["tenant"],
  getEvent: ["tenant"],
  listEventAttempts: ["tenant"],
  listEventDeliveries: ["tenant"],
  retryEvent: ["tenant"],
  createSubscription: ["tenant"],
  listSubscriptions: ["tenant"],
  getSubscription: ["tenant"],
  updateSubscription: ["tenant"],
  deleteSubscription: ["tenant"],
  rotateSubscriptionSecret: ["tenant"],
  getTenant: ["tenant"],
  getSubscriptionStats: ["tenant"],
  testSubscription: ["tenant"],
  recoverSubscription: ["tenant"],
  listDeliveries: ["tenant"],
  retryDelivery: ["tenant"],
  retryDeliveries: ["tenant"],
  listAuditLog: ["tenant"],
  testFilter: ["publish", "tenant"],
  listEventTypes: ["publish", "tenant"],
  getEventType: ["publish", "tenant"],
};

/** Every scope that may call the operation. */
export function scopesOf(operationId: string | undefined): KeyScope[] {
  return ["admin", ...(grants[operationId ?? ""] ?? [])];
}

export interface Operation {
  method: string;
  path: string;
  operationId?: string | undefined;
  responses?: Record<string, unknown> | undefined;
}

/**
 * The documented operation a request is routed to (`operations` is read once,
 * on first use), with the route's path as the router knows it (`:id`), if any.
 */
export function routedOperation(
  operations: () => Iterable<Operation>,
): (c: Context) => { endpoint: string; operation: Operation | undefined } | undefined {
  let byRoute: Map<string, Operation> | null = null;
  return (c) => {
    byRoute ??= new Map(
      [...operations()].map((o) => [
        `${o.method.toUpperCase()} ${o.path.replaceAll(/\{(\w+)\}/g, ":$1")}`,
        o,
      ]),
    );
    // The route that answers is the last one matched for the method (middleware match them all).
    const method = c.req.method === "HEAD" ? "GET" : c.req.method;
    const endpoint = matchedRoutes(c).findLast((r) => r.method === method)?.path;
    if (endpoint === undefined) return undefined;
    return { endpoint, operation: byRoute.get(`${method} ${endpoint}`) };
  };
}

/**
 * Refuses with 403 a key whose scope may not call the operation the
 * request is routed to, before anything reads the body. `operations` lists
 * the router's documented operations (read once, on first use); a route
 * that is not among them is for admin keys only.
 */
export function authorize(operations: () => Iterable<Operation>): MiddlewareHandler {
  const routed = routedOperation(operations);
  return async (c, next) => {
    const { scope } = c.get("principal");
    if (scope !== "admin") {
      const found = routed(c);
      if (found !== undefined) {
        const { endpoint, operation } = found;
        if (!scopesOf(operation?.operationId).includes(scope)) {
          const method = c.req.method === "HEAD" ? "GET" : c.req.method;
          throw forbidden(scope, `${method} ${operation?.path ?? endpoint}`);
        }
      }
    }
    await next();
  };
}

export function forbidden(scope: KeyScope, operation: string): ApiError {
  const may = scope === "publish"
    ? ": it may only call POST /events, POST /events/batch and POST /filters/test, and read /event-types"
    : "";
  return new ApiError("forbidden", `A "${scope}" key cannot call ${operation}${may}`);
}

/**
 * The tenant filter of a request: a `tenant` key's own tenant (asking for
 * another one answers 404, as for a tenant that does not exist), otherwise
 * the tenant asked for, if any. Every route that reads or writes tenants'
 * resources goes through this.
 */
export function tenantFilter(c: Context, requested?: string): TenantFilter {
  const own = c.get("principal").tenantId;
  if (own === null) return { tenantId: requested };
  if (requested !== undefined && requested !== own) throw notFound("tenant", requested);
  return { tenantId: own };
}
