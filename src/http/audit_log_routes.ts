/**
 * `GET /audit-log`: who changed what, newest first.
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { tenantFilter } from "./access.ts";
import { decodeCursor, encodeCursor } from "./cursor.ts";
import type { AppDeps } from "./deps.ts";
import * as examples from "./examples.ts";
import { jsonResponse } from "./openapi.ts";
import { Page, paged, queryTime, tenantId, text, timestamp } from "./schemas.ts";
import type { AuditQuery } from "../views/audit.ts";
import type { TenantFilter } from "../views/tenant_filter.ts";

const AuditEntry = z.object({
  id: z.number().int(),
  at: timestamp,
  actor: z.object({
    type: z.enum(["api_key", "env_key", "console", "portal", "open"]),
    key_id: z.string().optional(),
    tenant_id: z.string().optional(),
  }),
  action: z.string().openapi({ description: "The operation's operationId" }),
  resource: z.object({ type: z.string(), id: z.string().nullable() }),
  tenant_id: z.string().nullable(),
  status: z.number().int().openapi({ description: "The answer's HTTP status" }),
  request_id: z.string(),
}).openapi("AuditEntry");

export const AuditFilter = Page.extend({
  actor_key_id: text(1, 255).optional(),
  action: text(1, 255).optional().openapi({ example: "deleteSubscription" }),
  resource_id: text(1, 255).optional(),
  tenant_id: tenantId.optional(),
  since: queryTime.optional(),
  until: queryTime.optional(),
});

/** The views' query of an {@linkcode AuditFilter}, within `scope` (the caller's tenant). */
export function auditQuery(q: z.output<typeof AuditFilter>, scope: TenantFilter): AuditQuery {
  return {
    ...scope,
    limit: q.limit,
    before: decodeCursor(q.cursor),
    actorKeyId: q.actor_key_id,
    action: q.action,
    resourceId: q.resource_id,
    since: q.since,
    until: q.until,
  };
}

const list = createRoute({
  method: "get",
  path: "/audit-log",
  tags: ["Audit log"],
  operationId: "listAuditLog",
  summary: "Every request that changed state, or tried to, newest first",
  request: { query: AuditFilter },
  responses: {
    200: jsonResponse(paged(AuditEntry, "AuditEntryPage"), "A page of audit entries", {
      example: { data: [examples.auditEntry], next_cursor: null },
    }),
  },
});

export function auditLogRoutes(deps: AppDeps) {
  const app = new OpenAPIHono();

  app.openapi(list, async (c) => {
    const q = c.req.valid("query");
    const page = await deps.views.audit.list(auditQuery(q, tenantFilter(c, q.tenant_id)));
    const data = page.entries.map((e) => ({
      ...e,
      at: e.at.toISOString(),
      actor: e.actor as z.output<typeof AuditEntry>["actor"],
    }));
    return c.json({ data, next_cursor: encodeCursor(page.next) }, 200);
  });

  return app;
}
