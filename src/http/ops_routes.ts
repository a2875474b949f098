import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppDeps } from "./deps.ts";
import { jsonResponse } from "./openapi.ts";

const tags = ["Operations"];

const Health = z.object({ status: z.literal("ok") }).openapi("Health");

const Readiness = z.object({
  status: z.enum(["ok", "unavailable"]),
  reason: z.string().optional().openapi({ description: "Why it is not ready" }),
}).openapi("Readiness");

const health = createRoute({
  method: "get",
  path: "/healthz",
  tags,
  operationId: "getHealth",
  summary: "Liveness: the process answers",
  security: [],
  responses: { 200: jsonResponse(Health, "Alive", { example: { status: "ok" } }) },
});

const readiness = createRoute({
  method: "get",
  path: "/readyz",
  tags,
  operationId: "getReadiness",
  summary: "Readiness: the database is reachable and migrated",
  security: [],
  responses: {
    200: jsonResponse(Readiness, "Ready", { example: { status: "ok" } }),
    503: jsonResponse(Readiness, "Not ready: the database is unreachable or not migrated", {
      example: { status: "unavailable", reason: "Database unreachable" },
    }),
  },
});

/** Liveness and readiness probes; never behind authentication. */
export function opsRoutes(deps: Pick<AppDeps, "views" | "log">) {
  const app = new OpenAPIHono();
  app.openapi(health, (c) => c.json({ status: "ok" as const }, 200));
  app.openapi(readiness, async (c) => {
    try {
      const version = await deps.views.schemaVersion();
      const latestVersion = deps.views.latestVersion;
      if (version < latestVersion()) {
        return c.json({
          status: "unavailable" as const,
          reason:
            `Database schema is at version ${version}, expected ${latestVersion()}: run migrate`,
        }, 503);
      }
      return c.json({ status: "ok" as const }, 200);
    } catch (err) {
      deps.log.warn("Readiness check failed", { error: err });
      return c.json({ status: "unavailable" as const, reason: "Database unreachable" }, 503);
    }
  });
  return app;
}
