import { OpenAPIHono } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { consoleRoutes } from "../console/routes.ts";
import { SessionSigner } from "../console/session.ts";
import { ApiError } from "../errors.ts";
import { ApiKeyTable } from "../security/api_key_table.ts";
import { authorize } from "./access.ts";
import { actionLimit, limitedActions } from "./action_limit.ts";
import { allowedMethods } from "./allowed_methods.ts";
import { apiKeysRoutes } from "./api_keys_routes.ts";
import { auditLogRoutes } from "./audit_log_routes.ts";
import { auditChanges } from "./audit.ts";
import { authenticate } from "./auth.ts";
import { deadline } from "./deadline.ts";
import type { AppDeps } from "./deps.ts";
import { errorResponse, tooLarge, unsupportedType, validationError } from "./error_handler.ts";
import { eventBatchRoutes } from "./event_batch_routes.ts";
import { eventsRoutes } from "./events_routes.ts";
import { EventCatalog } from "./event_types/catalog.ts";
import { eventTypesRoutes } from "./event_types/routes.ts";
import { filtersRoutes } from "./filters_routes.ts";
import { localOnly } from "./local_only.ts";
import { metricsRoutes } from "./metrics_routes.ts";
import { documentApiRoutes } from "./openapi.ts";
import { serveOpenApi } from "./openapi_document.ts";
import { docsRoutes } from "./docs_routes.ts";
import { opsRoutes } from "./ops_routes.ts";
import { portalSessionsRoutes } from "./portal_sessions_routes.ts";
import { requestIds, requestLog } from "./request_log.ts";
import { deliveriesRoutes } from "./deliveries_routes.ts";
import { subscriptionsRoutes } from "./subscriptions/routes.ts";
import { tenantsRoutes } from "./tenants_routes.ts";

/**
 * What every listener serves, the worker role's included: probes and
 * metrics, with request ids, access log lines and JSON errors.
 */
export function createOpsApp(
  deps: Pick<AppDeps, "engine" | "views" | "log" | "outage" | "config" | "metrics">,
  options: { keys?: ApiKeyTable } = {},
) {
  const keys = options.keys ?? apiKeyTable(deps);
  const app = new OpenAPIHono({
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.error.issues, result.target);
    },
  });
  app.use("*", requestIds, requestLog(deps.log), noSniff);
  if (deps.config.apiKeys.length === 0) app.use("*", localOnly(deps.config.hostname));
  app.onError((err, c) => errorResponse(err, c, deps));
  const allowed = allowedMethods(() => app.routes);
  app.notFound((c) => {
    const methods = allowed(c.req.path);
    // A route of this very method may have said not found itself (an unknown id, say).
    if (methods.length === 0 || methods.includes(c.req.method)) {
      const err = new ApiError("not_found", `No route for ${c.req.method} ${c.req.path}`);
      return errorResponse(err, c, deps);
    }
    c.header("Allow", methods.join(", "));
    const err = new ApiError(
      "method_not_allowed",
      `Method ${c.req.method} is not allowed on ${c.req.path}: use ${methods.join(", ")}`,
    );
    return errorResponse(err, c, deps);
  });

  app.route("/", opsRoutes(deps));
  app.route("/", metricsRoutes({ ...deps, keys }));
  return app;
}

/** The managed API keys as this process sees them (read from the database when needed). */
function apiKeyTable(deps: Pick<AppDeps, "engine">): ApiKeyTable {
  return new ApiKeyTable((used) => deps.engine.readKeyTable(used));
}

/**
 * The whole HTTP API as a web-standard fetch handler; `keys` replaces the
 * managed keys' table, `catalog` the event-type catalog.
 */
export function createApp(
  deps: AppDeps,
  options: { keys?: ApiKeyTable; catalog?: EventCatalog } = {},
) {
  const keys = options.keys ?? apiKeyTable(deps);
  const catalog = options.catalog ??
    new EventCatalog((known) => deps.views.readEventCatalog(known), {
      mode: deps.config.eventTypes,
    });
  const app = createOpsApp(deps, { keys });
  const auth = deps.config.apiKeys.length > 0;
  app.route("/", docsRoutes());
  serveOpenApi(app, { auth, catalog });
  const sessions = new SessionSigner(deps.config.consoleSessionKey);
  app.route(
    "/console",
    consoleRoutes(deps, { sessions, keys, api: (r, env) => app.fetch(r, env) }),
  );

  const api = new OpenAPIHono({
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.error.issues, result.target);
    },
  });
  // A request that waits for an unreachable database answers 503 instead of hanging; ingest
  // withdraws its event then (see deadline.ts).
  // A recovery or a bulk retry is one statement however many deliveries it puts back (about 3 s
  // per 100,000 on a small machine): it is not cut short.
  const unbounded = /\/recover$|^\/deliveries\/retry$/;
  const wait = deps.config.requestTimeoutMs;
  const expire = deadline({
    ms: wait,
    error: () =>
      new HTTPException(503, {
        message: `The database did not answer within ${wait} ms: retry shortly`,
      }),
  });
  api.use("*", (c, next) => unbounded.test(c.req.path) ? next() : expire(c, next));
  // Who calls, and whether their key's scope may call this operation, before any body is read;
  // from when the caller is known, a change is audited (a refusal too).
  const operations = () =>
    api.openAPIRegistry.definitions.flatMap((d) => d.type === "route" ? [d.route] : []);
  api.use(
    "*",
    authenticate({ keys: deps.config.apiKeys, table: keys, required: auth }),
    auditChanges(deps, operations),
    authorize(operations),
  );
  // Only the routes that take a body read one, so only they can answer 413 or 415.
  const limit = bodyLimit({
    maxSize: deps.config.maxPayloadBytes,
    onError: () => {
      throw tooLarge(deps.config.maxPayloadBytes);
    },
  });
  const bodies = [
    "/events",
    "/events/batch",
    "/subscriptions",
    "/subscriptions/:id/recover",
    "/api-keys",
    "/deliveries/retry",
    "/filters/test",
    "/event-types",
  ];
  api.on("POST", bodies, requireJson, limit);
  api.on("PATCH", ["/subscriptions/:id", "/event-types/:name"], requireJson, limit);
  // Their bodies are optional: when there is one, it must be JSON (below).
  api.on("POST", ["/subscriptions/:id/test", "/tenants/:id/portal-sessions"], limit);
  // A route that takes no body takes no other either: a form posted to it is refused too.
  api.use("*", (c, next) => hasBody(c.req.raw) ? requireJson(c, next) : next());
  api.on(
    "POST",
    limitedActions.map((path) => path.replace("{id}", ":id")),
    actionLimit({ perMinute: deps.config.actionRateLimit }),
  );
  api.route("/", eventBatchRoutes(deps, { catalog }));
  api.route("/", eventsRoutes(deps, { catalog }));
  api.route("/", subscriptionsRoutes(deps, { catalog }));
  api.route("/", deliveriesRoutes(deps));
  api.route("/", tenantsRoutes(deps));
  api.route("/", portalSessionsRoutes(deps, { sessions }));
  api.route("/", apiKeysRoutes(deps, { table: keys }));
  api.route("/", auditLogRoutes(deps));
  api.route("/", filtersRoutes(deps));
  api.route("/", eventTypesRoutes(deps, { catalog }));
  documentApiRoutes(api, { auth, maxPayloadBytes: deps.config.maxPayloadBytes });
  app.route("/", api);
  return app;
}

/** Every answer is read as the type it declares: browsers must not guess another. */
const noSniff: MiddlewareHandler = async (c, next) => {
  await next();
  c.header("X-Content-Type-Options", "nosniff");
};

/** Whether a request sends a body; GET and HEAD cannot. */
function hasBody(request: Request): boolean {
  const length = request.headers.get("content-length");
  return request.headers.has("transfer-encoding") || (length !== null && length !== "0");
}

/** Routes that take a body take JSON, and must be told so. */
const requireJson: MiddlewareHandler = async (c, next) => {
  const type = c.req.header("content-type") ?? "";
  if (!/^application\/([\w.+-]*\+)?json\s*(;|$)/i.test(type)) {
    throw unsupportedType(type);
  }
  await next();
};
