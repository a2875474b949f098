/**
 * Tenant portal links: a signed, expiring URL on Dispatch's own origin that
 * opens the console limited to one tenant, as Svix's App Portal does.
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { newSid, type SessionSigner } from "../console/session.ts";
import { notFound } from "../errors.ts";
import type { Views } from "../views/views.ts";
import type { AppDeps } from "./deps.ts";
import * as examples from "./examples.ts";
import { jsonResponse } from "./openapi.ts";
import { tenantId } from "./schemas.ts";

const PortalSessionRequest = z.object({
  ttl_seconds: z.number().int().min(60).max(7 * 86_400).default(3600).openapi({
    description: "How long the link (and the console session it opens) lasts; 1 h by default",
  }),
  read_only: z.boolean().default(false).openapi({
    description: "The portal shows everything of the tenant but cannot change anything",
  }),
}).strict();

const create = createRoute({
  method: "post",
  path: "/tenants/{id}/portal-sessions",
  tags: ["Tenants"],
  operationId: "createPortalSession",
  summary: "A link to the console limited to this tenant, for the tenant's own people",
  request: {
    params: z.object({ id: tenantId }),
    body: {
      content: {
        "application/json": { schema: PortalSessionRequest, example: { read_only: true } },
      },
      required: false,
    },
  },
  responses: {
    201: jsonResponse(
      z.object({
        url: z.string().openapi({ format: "uri" }),
        expires_at: z.string().openapi({ format: "date-time" }),
      }).openapi("PortalSession"),
      "The link; whoever holds it can open the portal until it expires",
      { example: examples.portalSession, headers: ["Cache-Control"] },
    ),
  },
});

export function portalSessionsRoutes(deps: AppDeps, options: { sessions: SessionSigner }) {
  const app = new OpenAPIHono();

  app.openapi(create, async (c) => {
    const { id } = c.req.valid("param");
    if (!(await tenantExists(deps.views, id))) throw notFound("tenant", id);
    const body = PortalSessionRequest.parse(c.req.valid("json") ?? {});
    const exp = Date.now() + body.ttl_seconds * 1000;
    const token = await options.sessions.sign({
      use: "portal",
      sid: newSid(),
      actor: "portal",
      tenantId: id,
      readOnly: body.read_only,
      exp,
    });
    const url = new URL(`/console/portal?token=${token}`, c.req.url).href;
    c.header("Cache-Control", "no-store");
    return c.json({ url, expires_at: new Date(exp).toISOString() }, 201);
  });

  return app;
}

/**
 * A tenant is known by what carries its id (as for GET /tenants/:id): a
 * subscription or an event, each found through the tenant's index.
 */
async function tenantExists(views: Views, id: string): Promise<boolean> {
  const { subscriptions } = await views.listSubscriptions({ tenantId: id, limit: 1 });
  return subscriptions.length > 0 ||
    (await views.listEvents({ tenantId: id, limit: 1 })).events.length > 0;
}
