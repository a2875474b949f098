/**
 * The operator console and the tenant portal, at `/console`: server-rendered
 * pages (Hono's JSX) that read through the views and act through the API's
 * own routes, called in this process as the session (so each action is
 * validated, scoped and audited as the same API request). No SQL here, no script inline, no asset from
 * elsewhere.
 *
 * @module
 */
import { Hono } from "hono";
import { ApiError } from "../errors.ts";
import type { AppDeps } from "../http/deps.ts";
import type { ApiKeyTable } from "../security/api_key_table.ts";
import type { ApiFetch } from "./api_call.ts";
import { consoleAssets } from "./assets.ts";
import type { ConsoleDeps } from "./deps.ts";
import { errorPage } from "./error_page.tsx";
import { checkPost, requireSession, securityHeaders } from "./guard.ts";
import { auditPage } from "./pages/audit.tsx";
import { failedPage, retryAll, retryAllPage, retrySelected } from "./pages/deliveries.tsx";
import { eventPage, eventsPage, retryEvent } from "./pages/events.tsx";
import { overviewPage } from "./pages/overview.tsx";
import { openPortal, signIn, signInPage, signOut } from "./pages/sign_in.tsx";
import * as subs from "./pages/subscriptions.tsx";
import type { SessionSigner } from "./session.ts";

export interface ConsoleOptions {
  sessions: SessionSigner;
  keys: ApiKeyTable;
  /** The app itself: subscription changes go through the API's routes. */
  api: ApiFetch;
}

export function consoleRoutes(
  deps: Pick<AppDeps, "views" | "log" | "config">,
  options: ConsoleOptions,
) {
  const page: ConsoleDeps = { ...deps, api: options.api };
  const auth = {
    sessions: options.sessions,
    keys: options.keys,
    envKeys: deps.config.apiKeys,
  };
  const app = new Hono();
  app.onError((err, c) => errorPage(err, c, deps.log));
  app.use("*", securityHeaders(deps.config.consoleFrameAncestors));
  app.route("/", consoleAssets());
  app.get("/sign-in", (c) => signInPage(c, auth));
  app.post("/sign-in", (c) => signIn(c, auth));
  app.get("/portal", (c) => openPortal(c, auth));

  const pages = new Hono();
  pages.use(
    "*",
    requireSession({ ...auth, frameAncestors: deps.config.consoleFrameAncestors }),
    checkPost(options.sessions),
  );
  pages.post("/sign-out", (c) => signOut(c));
  pages.get("/", (c) => overviewPage(c, page));
  pages.get("/events", (c) => eventsPage(c, page));
  pages.get("/events/:id", (c) => eventPage(c, page));
  pages.post("/events/:id/retry", (c) => retryEvent(c, page));
  pages.get("/subscriptions", (c) => subs.subscriptionsPage(c, page));
  pages.get("/subscriptions/new", (c) => subs.newSubscriptionPage(c));
  pages.post("/subscriptions", (c) => subs.createSubscription(c, page));
  pages.get("/subscriptions/:id", (c) => subs.subscriptionPage(c, page));
  pages.post("/subscriptions/:id", (c) => subs.updateSubscription(c, page));
  pages.get("/subscriptions/:id/delete", (c) => subs.deleteSubscriptionPage(c, page));
  pages.post("/subscriptions/:id/delete", (c) => subs.deleteSubscription(c, page));
  pages.post("/subscriptions/:id/rotate-secret", (c) => subs.rotateSecret(c, page));
  pages.post("/subscriptions/:id/test", (c) => subs.testSubscription(c, page));
  pages.post("/subscriptions/:id/recover", (c) => subs.recoverSubscription(c, page));
  pages.get("/deliveries", (c) => failedPage(c, page));
  pages.post("/deliveries/retry", (c) => retrySelected(c, page));
  pages.get("/deliveries/retry-all", (c) => retryAllPage(c, page));
  pages.post("/deliveries/retry-all", (c) => retryAll(c, page));
  pages.get("/audit-log", (c) => auditPage(c, page));
  pages.all("*", (c) => {
    throw new ApiError("not_found", `No console page at ${c.req.path}`);
  });
  app.route("/", pages);
  return app;
}
