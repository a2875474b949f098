import { Hono } from "hono";
import { latestVersion, schemaVersion } from "../db/migrate.ts";
import type { AppDeps } from "./deps.ts";

const docsPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>Dispatch API</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><script id="api-reference" data-url="/openapi.json"></script>
<script src="https://cdn.jsdelivr.net/npm/@scalar/api-reference"></script></body></html>`;

/** Liveness and readiness probes; never behind authentication. */
export function opsRoutes(deps: Pick<AppDeps, "sql" | "log">) {
  const app = new Hono();
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", async (c) => {
    try {
      const version = await schemaVersion(deps.sql);
      if (version < latestVersion()) {
        return c.json({
          status: "unavailable",
          reason:
            `Database schema is at version ${version}, expected ${latestVersion()}: run migrate`,
        }, 503);
      }
      return c.json({ status: "ok" });
    } catch (err) {
      deps.log.warn("Readiness check failed", { error: err });
      return c.json({ status: "unavailable", reason: "Database unreachable" }, 503);
    }
  });
  return app;
}

/** The API reference page, reading `/openapi.json`; never behind authentication. */
export function docsRoutes() {
  const app = new Hono();
  app.get("/docs", (c) => c.html(docsPage));
  return app;
}
