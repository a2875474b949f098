import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { Config } from "../config.ts";
import { recoverFailed } from "../db/deliveries.ts";
import { insertEvents } from "../db/events.ts";
import type { Sql } from "../db/pool.ts";
import { subscriptionStats } from "../db/stats.ts";
import {
  deleteSubscription,
  getSubscription,
  insertSubscription,
  listSubscriptions,
  rotateSecret,
  subscriptionState,
  tenantsWithSubscription,
  updateSubscription,
} from "../db/subscriptions.ts";
import type { TenantFilter } from "../db/tenant_filter.ts";
import { generateSecret } from "../delivery/signature.ts";
import { ApiError, notFound, subscriptionConflict, subscriptionInactive } from "../errors.ts";
import { newId } from "../ids.ts";
import { type TargetPolicy, urlRefusal } from "../security/ssrf.ts";
import { tenantFilter } from "./access.ts";
import { decodeCursor, encodeCursor } from "./cursor.ts";
import type { AppDeps } from "./deps.ts";
import { validationError } from "./error_handler.ts";
import * as examples from "./examples.ts";
import { errors, jsonBody, jsonResponse } from "./openapi.ts";
import {
  IdParam,
  minProductionSecretLength,
  NewSubscription,
  paged,
  Recovery,
  StatsQuery,
  statsWindows,
  Subscription,
  SubscriptionFilter,
  SubscriptionPatch,
  SubscriptionStats,
  SubscriptionWithSecret,
} from "./schemas.ts";

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

const rotate = createRoute({
  method: "post",
  path: "/subscriptions/{id}/rotate-secret",
  tags,
  operationId: "rotateSubscriptionSecret",
  summary: "New secret; the previous one keeps signing for a grace period",
  request: { params: IdParam },
  responses: {
    200: jsonResponse(
      z.object({
        secret: z.string(),
        previous_secret_expires_at: z.string().openapi({ format: "date-time" }),
      }).openapi("RotatedSecret"),
      "The new secret, shown only here",
      { example: examples.rotatedSecret, headers: ["Cache-Control"] },
    ),
  },
});

const recover = createRoute({
  method: "post",
  path: "/subscriptions/{id}/recover",
  tags,
  operationId: "recoverSubscription",
  summary:
    "Put back every failed delivery of the subscription whose event was created in the window, with a fresh attempt budget",
  request: {
    params: IdParam,
    body: jsonBody(Recovery, { since: "2026-11-26T00:00:00Z" }),
  },
  responses: {
    202: jsonResponse(
      z.object({ requeued: z.number().int() }).openapi("Recovered"),
      "How many went back in the queue",
      { example: { requeued: 1204 } },
    ),
    409: errors.inactive,
  },
});

const stats = createRoute({
  method: "get",
  path: "/subscriptions/{id}/stats",
  tags,
  operationId: "getSubscriptionStats",
  summary: "Attempts, success rate and latency of the subscription's endpoint in a window",
  request: { params: IdParam, query: StatsQuery },
  responses: {
    200: jsonResponse(SubscriptionStats, "Its attempts in the window", {
      example: examples.stats,
    }),
  },
});

const test = createRoute({
  method: "post",
  path: "/subscriptions/{id}/test",
  tags,
  operationId: "testSubscription",
  summary: "Send one dispatch.test event to this subscription only",
  request: { params: IdParam },
  responses: {
    202: jsonResponse(
      z.object({ event_id: z.string() }).openapi("TestEvent"),
      "The test event, on its way",
      { example: { event_id: "evt_test_1" } },
    ),
    409: errors.inactive,
  },
});

export function subscriptionsRoutes(deps: AppDeps) {
  const { sql } = deps;
  const app = new OpenAPIHono();

  app.openapi(create, async (c) => {
    const body = c.req.valid("json");
    assertAllowedTarget(body.url, deps.config);
    if (body.secret !== undefined) assertStrongEnough(body.secret, deps.config);
    const secret = body.secret ?? generateSecret();
    const id = body.id ?? newId("sub");
    const row = await insertSubscription(sql, {
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
      metadata: body.metadata,
    });
    if (!row) throw subscriptionConflict(id);
    c.header("Cache-Control", "no-store");
    return c.json({ ...row, secret }, 201);
  });

  app.openapi(list, async (c) => {
    const q = c.req.valid("query");
    const page = await listSubscriptions(sql, {
      ...tenantFilter(c, q.tenant_id),
      limit: q.limit,
      after: decodeCursor(q.cursor),
    });
    return c.json({ data: page.subscriptions, next_cursor: encodeCursor(page.next) }, 200);
  });

  app.openapi(get, async (c) => {
    const { id } = c.req.valid("param");
    const row = await getSubscription(sql, id, await scopeOf(c, sql, id));
    if (!row) throw notFound("subscription", id);
    return c.json(row, 200);
  });

  app.openapi(patch, async (c) => {
    const { id } = c.req.valid("param");
    const { tenant_id, ...body } = c.req.valid("json");
    if (body.url !== undefined) assertAllowedTarget(body.url, deps.config);
    const scope = await scopeOf(c, sql, id);
    if (tenant_id !== undefined) await assertSameTenant(sql, id, { ...scope, given: tenant_id });
    const row = await updateSubscription(sql, id, dropUndefined(body), {
      ...scope,
      channel: deps.channel,
    });
    if (!row) throw notFound("subscription", id);
    return c.json(row, 200);
  });

  app.openapi(remove, async (c) => {
    const { id } = c.req.valid("param");
    if (!(await deleteSubscription(sql, id, await scopeOf(c, sql, id)))) {
      throw notFound("subscription", id);
    }
    return c.body(null, 204);
  });

  app.openapi(rotate, async (c) => {
    const { id } = c.req.valid("param");
    const secret = generateSecret();
    const rotated = await rotateSecret(sql, id, {
      ...await scopeOf(c, sql, id),
      secret: await deps.secrets.seal(secret),
      graceMs: deps.config.rotationGraceMs,
    });
    if (!rotated) throw notFound("subscription", id);
    c.header("Cache-Control", "no-store");
    return c.json({ secret, ...rotated }, 200);
  });

  app.openapi(recover, async (c) => {
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    const sub = await mustGetState(c, deps, id);
    if (!sub.active) throw subscriptionInactive(id);
    const requeued = await recoverFailed(sql, {
      subscriptionSeq: sub.seq,
      since: new Date(body.since),
      until: body.until === undefined ? null : new Date(body.until),
    }, { channel: deps.channel });
    if (requeued > 0) deps.wake?.();
    return c.json({ requeued }, 202);
  });

  app.openapi(stats, async (c) => {
    const { id } = c.req.valid("param");
    const { window } = c.req.valid("query");
    const sub = await mustGetState(c, deps, id);
    return c.json(
      { window, ...(await subscriptionStats(sql, sub.seq, statsWindows[window])) },
      200,
    );
  });

  app.openapi(test, async (c) => {
    const { id } = c.req.valid("param");
    const sub = await mustGetState(c, deps, id);
    if (!sub.active) throw subscriptionInactive(id);
    const event = {
      id: newId("evt"),
      type: "dispatch.test",
      source: "dispatch",
      tenant_id: sub.tenant_id,
      data: { subscription_id: id, at: new Date().toISOString() },
    };
    await insertEvents(sql, [event], { channel: deps.channel, to: { id, seq: sub.seq } });
    deps.wake?.();
    return c.json({ event_id: event.id }, 202);
  });

  return app;
}

/** The subscription's state, if it exists and is within the caller's tenant; otherwise 404. */
async function mustGetState(c: Context, deps: AppDeps, id: string) {
  const sub = await subscriptionState(deps.sql, id, await scopeOf(c, deps.sql, id));
  if (!sub) throw notFound("subscription", id);
  return sub;
}

/**
 * The tenant filter of a route that names a subscription by id. Ids are unique within a tenant,
 * so a tenant key reaches its own; a key without a tenant names the tenant with `?tenant_id=`
 * when the id alone does not tell which subscription it is.
 */
async function scopeOf(c: Context, sql: Sql, id: string): Promise<TenantFilter> {
  const scope = tenantFilter(c, c.req.query("tenant_id"));
  if (scope.tenantId !== undefined) return scope;
  const tenants = await tenantsWithSubscription(sql, id, 2);
  if (tenants.length < 2) return { tenantId: tenants[0] };
  throw new ApiError(
    "conflict",
    `Subscription "${id}" exists in more than one tenant: name one with ?tenant_id=`,
  );
}

/** The SSRF guard's check of what a URL's host is known to be without DNS. */
function assertAllowedTarget(url: string, policy: TargetPolicy): void {
  const why = urlRefusal(url, policy);
  if (why !== null) throw validationError([{ path: ["url"], message: `points to ${why}` }], "json");
}

/** A subscription's tenant is set at creation: a PATCH may only repeat it. */
async function assertSameTenant(
  sql: Sql,
  id: string,
  options: TenantFilter & { given: string | null },
): Promise<void> {
  const current = await getSubscription(sql, id, options);
  if (!current) throw notFound("subscription", id);
  if (current.tenant_id === options.given) return;
  const was = current.tenant_id === null ? "has none" : `is "${current.tenant_id}"`;
  throw validationError([{
    path: ["tenant_id"],
    message: `cannot change once the subscription is created (its tenant ${was})`,
  }], "json");
}

/** Short secrets are for trying Dispatch out; production wants ones that cannot be guessed. */
function assertStrongEnough(secret: string, config: Pick<Config, "env">): void {
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
