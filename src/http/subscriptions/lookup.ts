import type { Context } from "hono";
import { notFound } from "../../errors.ts";
import { tenantFilter } from "../access.ts";
import type { AppDeps } from "../deps.ts";

/**
 * What routes that act on a subscription's deliveries need (its seq, state
 * and tenant), if it exists within the caller's tenant; otherwise 404.
 */
export async function findSubscription(c: Context, deps: AppDeps, id: string) {
  const sub = await deps.views.subscriptionState(id, tenantFilter(c));
  if (!sub) throw notFound("subscription", id);
  return sub;
}
