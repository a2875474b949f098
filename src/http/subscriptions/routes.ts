import { OpenAPIHono } from "@hono/zod-openapi";
import type { AppDeps } from "../deps.ts";
import type { EventCatalog } from "../event_types/catalog.ts";
import { subscriptionCrudRoutes } from "./crud.ts";
import { subscriptionHealthRoutes } from "./health.ts";
import { subscriptionRecoveryRoutes } from "./recovery.ts";
import { subscriptionSecretsRoutes } from "./secrets.ts";

/** Every `/subscriptions` route, split by concern as Svix's server splits an endpoint's. */
export function subscriptionsRoutes(deps: AppDeps, options: { catalog: EventCatalog }) {
  const app = new OpenAPIHono();
  app.route("/", subscriptionCrudRoutes(deps));
  app.route("/", subscriptionSecretsRoutes(deps));
  app.route("/", subscriptionRecoveryRoutes(deps));
  app.route("/", subscriptionHealthRoutes(deps, options));
  return app;
}
