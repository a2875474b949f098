import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { notFound } from "../errors.ts";
import { tenantFilter } from "./access.ts";
import type { AppDeps } from "./deps.ts";
import * as examples from "./examples.ts";
import { jsonResponse } from "./openapi.ts";
import { tenantId } from "./schemas.ts";

const tags = ["Tenants"];

const TenantParam = z.object({ id: tenantId });

const count = z.number().int();

const Tenant = z.object({
  id: z.string(),
  subscriptions: count,
  events: count,
  deliveries: z.object({
    pending: count,
    processing: count,
    retrying: count,
    delivered: count,
    failed: count,
  }),
}).openapi("Tenant");

const get = createRoute({
  method: "get",
  path: "/tenants/{id}",
  tags,
  operationId: "getTenant",
  summary: "A tenant's subscriptions, events and deliveries by status: its health at a glance",
  request: { params: TenantParam },
  responses: { 200: jsonResponse(Tenant, "The tenant's counts", { example: examples.tenant }) },
});

const remove = createRoute({
  method: "delete",
  path: "/tenants/{id}",
  tags,
  operationId: "deleteTenant",
  summary: "Delete every subscription of the tenant; their waiting deliveries fail. Events stay",
  request: { params: TenantParam },
  responses: { 204: { description: "Its subscriptions are deleted" } },
});

/** A tenant is known by what carries its id: it exists while it has a subscription or an event. */
export function tenantsRoutes(deps: AppDeps) {
  const app = new OpenAPIHono();

  app.openapi(get, async (c) => {
    const { id } = c.req.valid("param");
    tenantFilter(c, id);
    const summary = await deps.views.tenantSummary(id);
    if (!summary) throw notFound("tenant", id);
    return c.json(summary, 200);
  });

  app.openapi(remove, async (c) => {
    const { id } = c.req.valid("param");
    if (!(await deps.engine.deleteTenant(id))) throw notFound("tenant", id);
    return c.body(null, 204);
  });

  return app;
}
