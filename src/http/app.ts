import { OpenAPIHono } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { ApiError } from "../errors.ts";
import { VERSION } from "../version.ts";
import { allowedMethods } from "./allowed_methods.ts";
import { apiKeyAuth } from "./auth.ts";
import type { AppDeps } from "./deps.ts";
import { errorResponse, tooLarge, unsupportedType, validationError } from "./error_handler.ts";
import { eventBatchRoutes } from "./event_batch_routes.ts";
import { eventsRoutes } from "./events_routes.ts";
import { metricsRoutes } from "./metrics_routes.ts";
import { errorResponses } from "./openapi.ts";
import { docsRoutes, opsRoutes } from "./ops_routes.ts";
import { requestLog } from "./request_log.ts";
import { subscriptionsRoutes } from "./subscriptions_routes.ts";

/**
 * What every listener serves, the worker role's included: probes and
 * metrics, with request ids, access log lines and JSON errors.
 */
export function createOpsApp(deps: Pick<AppDeps, "sql" | "log" | "config" | "metrics">) {
  const app = new OpenAPIHono({
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.error.issues, result.target);
    },
  });
  app.use("*", requestLog(deps.log));
  app.onError((err, c) => errorResponse(err, c, deps.log));
  const allowed = allowedMethods(() => app.routes);
  app.notFound((c) => {
    const methods = allowed(c.req.path);
    // A route of this very method may have said not found itself (an unknown id, say).
    if (methods.length === 0 || methods.includes(c.req.method)) {
      const err = new ApiError("not_found", `No route for ${c.req.method} ${c.req.path}`);
      return errorResponse(err, c, deps.log);
    }
    c.header("Allow", methods.join(", "));
    const err = new ApiError(
      "method_not_allowed",
      `Method ${c.req.method} is not allowed on ${c.req.path}: use ${methods.join(", ")}`,
    );
    return errorResponse(err, c, deps.log);
  });

  app.route("/", opsRoutes(deps));
  app.route("/", metricsRoutes(deps));
  return app;
}

/** The whole HTTP API as a web-standard fetch handler. */
export function createApp(deps: AppDeps) {
  const app = createOpsApp(deps);
  app.route("/", docsRoutes());
  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: { title: "Dispatch", version: VERSION, description: "Webhook dispatcher" },
    security: deps.config.apiKeys.length > 0 ? [{ bearer: [] }] : [],
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
  });

  const api = new OpenAPIHono({
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.error.issues, result.target);
    },
  });
  if (deps.config.apiKeys.length > 0) api.use("*", apiKeyAuth(deps.config.apiKeys));
  api.on("POST", ["/events", "/events/batch", "/subscriptions"], requireJson);
  api.on("PATCH", "/subscriptions/:id", requireJson);
  api.use(
    "*",
    bodyLimit({
      maxSize: deps.config.maxPayloadBytes,
      onError: () => {
        throw tooLarge(deps.config.maxPayloadBytes);
      },
    }),
  );
  api.route("/", eventBatchRoutes(deps));
  api.route("/", eventsRoutes(deps));
  api.route("/", subscriptionsRoutes(deps));
  app.route("/", api);
  for (const def of app.openAPIRegistry.definitions) {
    if (def.type === "route") def.route.responses = { ...errorResponses, ...def.route.responses };
  }
  return app;
}

/** Routes that take a body take JSON, and must be told so. */
const requireJson: MiddlewareHandler = async (c, next) => {
  const type = c.req.header("content-type") ?? "";
  if (!/^application\/([\w.+-]*\+)?json\s*(;|$)/i.test(type)) {
    throw unsupportedType(type);
  }
  await next();
};
