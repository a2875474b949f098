import type { Context } from "hono";
import { ApiError, notFound } from "../../errors.ts";
import type { TenantFilter } from "../../views/tenant_filter.ts";
import type { Views } from "../../views/views.ts";
import { tenantFilter } from "../access.ts";
import type { AppDeps } from "../deps.ts";

/**
 * What routes that act on a subscription's deliveries need (its seq, state
 * and tenant), if it exists within the caller's tenant; otherwise 404.
 */
export async function findSubscription(c: Context, deps: AppDeps, id: string) {
  const sub = await deps.views.subscriptionState(id, await subscriptionScope(c, deps.views, id));
  if (!sub) throw notFound("subscription", id);
  return sub;
}

/**
 * The tenant filter of a route that names a subscription by id. Ids are unique within a tenant,
 * so a tenant key reaches its own; a key without a tenant names the tenant with `?tenant_id=`
 * when the id alone does not tell which subscription it is.
 */
export async function subscriptionScope(
  c: Context,
  views: Views,
  id: string,
): Promise<TenantFilter> {
  const scope = tenantFilter(c, c.req.query("tenant_id"));
  if (scope.tenantId !== undefined) return scope;
  const tenants = await views.tenantsWithSubscription(id, 2);
  if (tenants.length < 2) return { tenantId: tenants[0] };
  throw new ApiError(
    "conflict",
    `Subscription "${id}" exists in more than one tenant: name one with ?tenant_id=`,
  );
}
