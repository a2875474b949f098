import { Hono } from "hono";
import { apiKeyAuth } from "./auth.ts";
import type { AppDeps } from "./deps.ts";

/** `GET /metrics` in Prometheus text format; behind the API keys when METRICS_PUBLIC=false. */
export function metricsRoutes(deps: Pick<AppDeps, "config" | "metrics">) {
  const app = new Hono();
  const { apiKeys, metricsPublic } = deps.config;
  if (!metricsPublic && apiKeys.length > 0) app.use("/metrics", apiKeyAuth(apiKeys));
  app.get("/metrics", async (c) => {
    const { registry } = deps.metrics;
    return c.body(await registry.metrics(), 200, { "content-type": registry.contentType });
  });
  return app;
}
