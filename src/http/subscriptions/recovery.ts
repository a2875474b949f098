/**
 * Putting a subscription's failed deliveries back in the queue.
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { subscriptionInactive } from "../../errors.ts";
import type { AppDeps } from "../deps.ts";
import { errors, jsonBody, jsonResponse } from "../openapi.ts";
import { IdParam, Recovery } from "../schemas.ts";
import { findSubscription } from "./lookup.ts";

const tags = ["Subscriptions"];

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

export function subscriptionRecoveryRoutes(deps: AppDeps) {
  const app = new OpenAPIHono();

  app.openapi(recover, async (c) => {
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    const sub = await findSubscription(c, deps, id);
    if (!sub.active) throw subscriptionInactive(id);
    const requeued = await deps.engine.recover({
      subscriptionSeq: sub.seq,
      since: new Date(body.since),
      until: body.until === undefined ? null : new Date(body.until),
    });
    return c.json({ requeued }, 202);
  });

  return app;
}
