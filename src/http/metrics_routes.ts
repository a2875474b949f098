import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { ApiKeyTable } from "../security/api_key_table.ts";
import { authorize } from "./access.ts";
import { authenticate } from "./auth.ts";
import type { AppDeps } from "./deps.ts";
import { errors } from "./openapi.ts";

/**
 * `GET /metrics` in Prometheus text format; for admin keys only when
 * METRICS_PUBLIC=false.
 */
export function metricsRoutes(deps: Pick<AppDeps, "config" | "metrics"> & { keys: ApiKeyTable }) {
  const app = new OpenAPIHono();
  const { apiKeys, metricsPublic } = deps.config;
  const auth = !metricsPublic && apiKeys.length > 0;
  if (auth) {
    app.use(
      "/metrics",
      authenticate({ keys: apiKeys, table: deps.keys, required: true }),
      authorize(() => [{ method: "get", path: "/metrics", operationId: "getMetrics" }]),
    );
  }
  const metrics = createRoute({
    method: "get",
    path: "/metrics",
    tags: ["Operations"],
    operationId: "getMetrics",
    summary: "Prometheus metrics of this process",
    security: auth ? [{ bearer: [] }] : [],
    responses: {
      200: {
        description: "Prometheus text exposition format",
        content: {
          "text/plain": {
            schema: z.string(),
            example:
              "# TYPE dispatch_deliveries_in_flight gauge\ndispatch_deliveries_in_flight 0\n",
          },
        },
      },
      ...(auth ? { 401: errors.unauthorized, 403: errors.forbidden } : {}),
    },
  });
  app.openapi(metrics, async (c) => {
    const { registry } = deps.metrics;
    return c.text(await registry.metrics(), 200, { "content-type": registry.contentType });
  });
  return app;
}
