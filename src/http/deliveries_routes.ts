import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { ApiError, notFound, subscriptionInactive } from "../errors.ts";
import { tenantFilter } from "./access.ts";
import { decodeCursor, encodeCursor } from "./cursor.ts";
import type { AppDeps } from "./deps.ts";
import * as examples from "./examples.ts";
import { errors, jsonResponse } from "./openapi.ts";
import { Delivery, DeliveryFilter, IdParam, paged } from "./schemas.ts";

const tags = ["Deliveries"];

const list = createRoute({
  method: "get",
  path: "/deliveries",
  tags,
  operationId: "listDeliveries",
  summary: "List deliveries, newest first; ?status=failed lists the dead letters",
  request: { query: DeliveryFilter },
  responses: {
    200: jsonResponse(paged(Delivery, "DeliveryPage"), "A page of deliveries", {
      example: { data: [examples.deadLetter], next_cursor: null },
    }),
  },
});

const retry = createRoute({
  method: "post",
  path: "/deliveries/{id}/retry",
  tags,
  operationId: "retryDelivery",
  summary: "Put a failed delivery back in the queue, with a fresh attempt budget",
  request: { params: IdParam },
  responses: {
    202: jsonResponse(Delivery, "Queued again", {
      example: { ...examples.deadLetter, status: "retrying", last_error: null },
    }),
    409: errors.notRetryable,
  },
});

export function deliveriesRoutes(deps: AppDeps) {
  const { engine, views } = deps;
  const app = new OpenAPIHono();

  app.openapi(list, async (c) => {
    const q = c.req.valid("query");
    const scope = tenantFilter(c, q.tenant_id);
    let subscriptionSeq: number | undefined;
    if (q.subscription_id !== undefined) {
      // An unknown subscription has no deliveries: an empty page, not an error.
      subscriptionSeq = (await views.subscriptionState(q.subscription_id, scope))?.seq ?? -1;
    }
    const page = await views.listDeliveries({
      ...scope,
      limit: q.limit,
      before: decodeCursor(q.cursor),
      status: q.status,
      subscriptionSeq,
      since: q.since,
      until: q.until,
    });
    return c.json({ data: page.deliveries, next_cursor: encodeCursor(page.next) }, 200);
  });

  app.openapi(retry, async (c) => {
    const { id: text } = c.req.valid("param");
    // Delivery ids are numbers; any other id is as unknown as a number never given out.
    const id = /^[1-9]\d{0,14}$/.test(text) ? Number(text) : 0;
    const scope = tenantFilter(c);
    const delivery = id > 0 ? await views.getDelivery(id, scope) : undefined;
    if (!delivery) throw notFound("delivery", text);
    const result = await engine.requeue({ deliveryId: id });
    if (result.requeued.length === 0) {
      const [skipped] = result.skipped;
      if (skipped?.reason === "subscription disabled") {
        throw subscriptionInactive(delivery.subscription_id);
      }
      throw new ApiError(
        "conflict",
        skipped
          ? `Delivery "${id}" cannot be retried: its subscription was deleted`
          : `Delivery "${id}" is ${delivery.status}: only failed deliveries can be retried`,
      );
    }
    return c.json((await views.getDelivery(id, scope))!, 202);
  });

  return app;
}
