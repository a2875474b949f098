/**
 * Creating, reading, changing and deleting subscriptions.
 *
 * @module
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { generateSecret } from "../../delivery/signature.ts";
import { notFound, subscriptionConflict } from "../../errors.ts";
import { newId } from "../../ids.ts";
import type { Views } from "../../views/views.ts";
import type { TenantFilter } from "../../views/tenant_filter.ts";
import { type TargetPolicy, urlRefusal } from "../../security/ssrf.ts";
import { tenantFilter } from "../access.ts";
import { decodeCursor, encodeCursor } from "../cursor.ts";
import { assertOneAuthorization, storedAuth } from "./endpoint_auth.ts";
import { storedCertificate } from "./client_certificate.ts";
import { subscriptionScope } from "./lookup.ts";
import type { AppDeps } from "../deps.ts";
import { validationError } from "../error_handler.ts";
import * as examples from "../examples.ts";
import { assertFilterParses, storableHeaders } from "../shaping.ts";
import { errors, jsonBody, jsonResponse } from "../openapi.ts";
import {
  type EndpointAuthInput,
  IdParam,
  minProductionSecretLength,
  NewSubscription,
  paged,
  Subscription,
  SubscriptionFilter,
  SubscriptionPatch,
  SubscriptionWithSecret,
} from "../schemas.ts";

const tags = ["Subscriptions"];

const create = createRoute({
  method: "post",
  path: "/subscriptions",
  tags,
  operationId: "createSubscription",
  summary: "Create a subscription; its secret is returned only here",
  request: { body: jsonBody(NewSubscription, examples.newSubscription) },
  responses: {
    201: jsonResponse(SubscriptionWithSecret, "Created, with its signing secret", {
      example: { ...examples.subscription, secret: examples.secret },
      headers: ["Cache-Control"],
    }),
    409: errors.subscriptionConflict,
  },
});

const list = createRoute({
  method: "get",
  path: "/subscriptions",
  tags,
  operationId: "listSubscriptions",
  summary: "List subscriptions, oldest first",
  request: { query: SubscriptionFilter },
  responses: {
    200: jsonResponse(paged(Subscription, "SubscriptionPage"), "A page of subscriptions", {
      example: { data: [examples.subscription], next_cursor: null },
    }),
  },
});

const get = createRoute({
  method: "get",
  path: "/subscriptions/{id}",
  tags,
  operationId: "getSubscription",
  summary: "One subscription (without its secret)",
  request: { params: IdParam },
  responses: {
    200: jsonResponse(Subscription, "The subscription", { example: examples.subscription }),
  },
});

const patch = createRoute({
  method: "patch",
  path: "/subscriptions/{id}",
  tags,
  operationId: "updateSubscription",
  summary: "Change url, event types, state or overrides",
  request: { params: IdParam, body: jsonBody(SubscriptionPatch, { active: true }) },
  responses: {
    200: jsonResponse(Subscription, "The updated subscription", {
      example: examples.subscription,
    }),
  },
});

const remove = createRoute({
  method: "delete",
  path: "/subscriptions/{id}",
  tags,
  operationId: "deleteSubscription",
  summary: "Delete; its waiting deliveries fail and are not attempted again",
  request: { params: IdParam },
  responses: { 204: { description: "Deleted" } },
});

export function subscriptionCrudRoutes(deps: AppDeps) {
  const { engine, views } = deps;
  const app = new OpenAPIHono();

  app.openapi(create, async (c) => {
    const body = c.req.valid("json");
    assertAllowedTarget(body.url, deps.config);
    assertAllowedAuth(body.auth, deps.config);
    assertOneAuthorization(body.auth, body.headers);
    const auth = await storedAuth(body.auth ?? null, deps.secrets);
    if (body.secret !== undefined) assertStrongEnough(body.secret, deps.config);
    const secret = body.secret ?? generateSecret();
    const id = body.id ?? newId("sub");
    await assertFilterParses(views, body.filter ?? null);
    const row = await engine.createSubscription({
      id,
      tenant_id: tenantFilter(c, body.tenant_id).tenantId ?? null,
      url: body.url,
      event_types: body.event_types,
      description: body.description ?? null,
      secret: await deps.secrets.seal(secret),
      active: body.active,
      max_attempts: body.max_attempts ?? null,
      rate_limit: body.rate_limit ?? null,
      max_in_flight: body.max_in_flight ?? null,
      ordering: body.ordering,
      metadata: body.metadata,
      ...auth,
      tls_client_certificate: await storedCertificate(body.tls_client_certificate, deps.secrets) ??
        null,
      headers: await storableHeaders(body.headers ?? null, deps),
      filter: body.filter ?? null,
      format: body.format,
    });
    if (!row) throw subscriptionConflict(id);
    c.header("Cache-Control", "no-store");
    return c.json({ ...row, secret }, 201);
  });

  app.openapi(list, async (c) => {
    const q = c.req.valid("query");
    const page = await views.listSubscriptions({
      ...tenantFilter(c, q.tenant_id),
      limit: q.limit,
      after: decodeCursor(q.cursor),
    });
    return c.json({ data: page.subscriptions, next_cursor: encodeCursor(page.next) }, 200);
  });

  app.openapi(get, async (c) => {
    const { id } = c.req.valid("param");
    const row = await views.getSubscription(id, await subscriptionScope(c, views, id));
    if (!row) throw notFound("subscription", id);
    return c.json(row, 200);
  });

  app.openapi(patch, async (c) => {
    const { id } = c.req.valid("param");
    const { tenant_id, auth, ...body } = c.req.valid("json");
    if (body.url !== undefined) assertAllowedTarget(body.url, deps.config);
    assertAllowedAuth(auth, deps.config);
    const changes = auth === undefined ? {} : await storedAuth(auth, deps.secrets);
    const scope = await subscriptionScope(c, views, id);
    if (tenant_id !== undefined) await assertSameTenant(views, id, { ...scope, given: tenant_id });
    if (body.filter !== undefined) await assertFilterParses(views, body.filter);
    const stored = auth === undefined && body.headers === undefined
      ? undefined
      : await views.getSubscription(id, scope);
    // What the subscription will have after the change: auth and an authorization header exclude each other.
    assertOneAuthorization(
      auth === undefined ? stored?.auth : auth,
      body.headers === undefined ? stored?.headers : body.headers,
    );
    const headers = body.headers === undefined ? undefined : await storableHeaders(body.headers, {
      secrets: deps.secrets,
      stored: stored?.headers ?? {},
    });
    const tls_client_certificate = await storedCertificate(
      body.tls_client_certificate,
      deps.secrets,
    );
    const row = await engine.updateSubscription(
      id,
      { ...dropUndefined({ ...body, headers, tls_client_certificate }), ...changes },
      scope,
    );
    if (!row) throw notFound("subscription", id);
    return c.json(row, 200);
  });

  app.openapi(remove, async (c) => {
    const { id } = c.req.valid("param");
    if (!(await engine.deleteSubscription(id, await subscriptionScope(c, views, id)))) {
      throw notFound("subscription", id);
    }
    return c.body(null, 204);
  });

  return app;
}

/** The SSRF guard's check of what a URL's host is known to be without DNS. */
function assertAllowedTarget(url: string, policy: TargetPolicy, path = ["url"]): void {
  const why = urlRefusal(url, policy);
  if (why !== null) throw validationError([{ path, message: `points to ${why}` }], "json");
}

/** Token requests go where deliveries may. */
function assertAllowedAuth(auth: EndpointAuthInput | null | undefined, policy: TargetPolicy) {
  if (auth?.type !== "oauth2_client_credentials") return;
  assertAllowedTarget(auth.token_url, policy, ["auth", "token_url"]);
}

/** A subscription's tenant is set at creation: a PATCH may only repeat it. */
async function assertSameTenant(
  views: Views,
  id: string,
  options: TenantFilter & { given: string | null },
): Promise<void> {
  const current = await views.getSubscription(id, options);
  if (!current) throw notFound("subscription", id);
  if (current.tenant_id === options.given) return;
  const was = current.tenant_id === null ? "has none" : `is "${current.tenant_id}"`;
  throw validationError([{
    path: ["tenant_id"],
    message: `cannot change once the subscription is created (its tenant ${was})`,
  }], "json");
}

/** Short secrets are for trying Dispatch out; production wants ones that cannot be guessed. */
function assertStrongEnough(secret: string, config: Pick<AppDeps["config"], "env">): void {
  if (config.env !== "production" || secret.length >= minProductionSecretLength) return;
  throw validationError([{
    path: ["secret"],
    message:
      `must have at least ${minProductionSecretLength} characters with DISPATCH_ENV=production: leave it out to get a generated whsec_ secret`,
  }], "json");
}

function dropUndefined<T extends object>(value: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]: Exclude<T[K], undefined>;
  };
}
