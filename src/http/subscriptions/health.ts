/**
 * How a subscription's endpoint is doing: its attempts' figures, and a test
 * event sent to it alone.
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { subscriptionInactive } from "../../errors.ts";
import { newId } from "../../ids.ts";
import type { AppDeps } from "../deps.ts";
import { validationError } from "../error_handler.ts";
import type { EventCatalog } from "../event_types/catalog.ts";
import * as examples from "../examples.ts";
import { errors, jsonBody, jsonResponse } from "../openapi.ts";
import { eventType, IdParam, StatsQuery, statsWindows, SubscriptionStats } from "../schemas.ts";
import { findSubscription } from "./lookup.ts";

const tags = ["Subscriptions"];

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

const TestRequest = z.object({
  event_type: eventType.optional().openapi({
    description: "A catalog type with an example: that example is sent, as an event of that type",
  }),
}).strict();

const test = createRoute({
  method: "post",
  path: "/subscriptions/{id}/test",
  tags,
  operationId: "testSubscription",
  summary:
    "Send one dispatch.test event to this subscription only, or the example of a catalog type",
  request: {
    params: IdParam,
    body: {
      ...jsonBody(TestRequest, { event_type: examples.newEventType.name }),
      required: false,
    },
  },
  responses: {
    202: jsonResponse(
      z.object({ event_id: z.string() }).openapi("TestEvent"),
      "The test event, on its way",
      { example: { event_id: "evt_test_1" } },
    ),
    409: errors.inactive,
  },
});

export function subscriptionHealthRoutes(deps: AppDeps, options: { catalog: EventCatalog }) {
  const app = new OpenAPIHono();

  app.openapi(stats, async (c) => {
    const { id } = c.req.valid("param");
    const { window } = c.req.valid("query");
    const sub = await findSubscription(c, deps, id);
    const figures = await deps.views.subscriptionStats(sub.seq, statsWindows[window]);
    return c.json({ window, ...figures }, 200);
  });

  app.openapi(test, async (c) => {
    const { id } = c.req.valid("param");
    const sub = await findSubscription(c, deps, id);
    if (!sub.active) throw subscriptionInactive(id);
    const { event_type: type } = c.req.valid("json") ?? {};
    const example = type === undefined ? undefined : (await options.catalog.current()).types
      .get(type)?.example;
    if (type !== undefined && (example === undefined || example === null)) {
      const why = example === null ? "has no example" : "is not in the event-type catalog";
      throw validationError([{ path: ["event_type"], message: `"${type}" ${why}` }], "json");
    }
    const event = {
      id: newId("evt"),
      type: type ?? "dispatch.test",
      source: "dispatch",
      tenant_id: sub.tenant_id,
      data: example ?? { subscription_id: id, at: new Date().toISOString() },
    };
    await deps.engine.publish([event], { to: { id, seq: sub.seq } });
    return c.json({ event_id: event.id }, 202);
  });

  return app;
}
