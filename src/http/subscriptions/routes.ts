import { OpenAPIHono } from "@hono/zod-openapi";
import type { AppDeps } from "../deps.ts";
import { subscriptionCrudRoutes } from "./crud.ts";
import { subscriptionHealthRoutes } from "./health.ts";
import { subscriptionRecoveryRoutes } from "./recovery.ts";
import { subscriptionSecretsRoutes } from "./secrets.ts";

/** Every `/subscriptions` route, split by concern as Svix's server splits an endpoint's. */
export function subscriptionsRoutes(deps: AppDeps) {
  const app = new OpenAPIHono();
  app.route("/", subscriptionCrudRoutes(deps));
  app.route("/", subscriptionSecretsRoutes(deps));
  app.route("/", subscriptionRecoveryRoutes(deps));
  app.route("/", subscriptionHealthRoutes(deps));
  return app;
}
