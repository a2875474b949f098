import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { ApiError, notFound, subscriptionInactive } from "../errors.ts";
import { tenantFilter } from "./access.ts";
import { decodeCursor, encodeCursor } from "./cursor.ts";
import type { AppDeps } from "./deps.ts";
import * as examples from "./examples.ts";
import { errors, jsonBody, jsonResponse } from "./openapi.ts";
import { statusClasses } from "../views/deliveries.ts";
import {
  Delivery,
  DeliveryFilter,
  IdParam,
  isoTime,
  NewEvent,
  paged,
  tenantId,
} from "./schemas.ts";

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

const BulkRetry = z.object({
  status: z.literal("failed").openapi({ description: "Only failed deliveries are retried" }),
  subscription_id: IdParam.shape.id.optional(),
  tenant_id: tenantId.optional(),
  event_type: NewEvent.shape.type.optional(),
  since: isoTime.optional().openapi({ description: "Fanned out at or after" }),
  until: isoTime.optional().openapi({ description: "Fanned out before" }),
  status_class: z.enum(statusClasses).optional().openapi({
    description:
      "The class of the last answer; `network`: none came (a connection error, a timeout)",
  }),
  delivery_ids: z.array(z.number().int().positive()).min(1).max(1000).optional().openapi({
    description: "Only these deliveries (at most 1,000), e.g. those ticked in a list",
  }),
  dry_run: z.boolean().default(false).openapi({ description: "Only count them" }),
}).strict();

const retryMany = createRoute({
  method: "post",
  path: "/deliveries/retry",
  tags,
  operationId: "retryDeliveries",
  summary:
    "Put back every failed delivery that matches, with a fresh attempt budget, in one statement; dry_run counts them",
  request: { body: jsonBody(BulkRetry, examples.bulkRetry) },
  responses: {
    202: jsonResponse(
      z.object({ requeued: z.number().int() }).openapi("Retried"),
      "How many went back in the queue",
      { example: { requeued: 2000 } },
    ),
    200: jsonResponse(
      z.object({ matching: z.number().int() }).openapi("RetryCount"),
      "With dry_run: how many a retry would put back; nothing changed",
      { example: { matching: 2000 } },
    ),
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

  app.openapi(retryMany, async (c) => {
    const body = c.req.valid("json");
    const scope = tenantFilter(c, body.tenant_id);
    let subscriptionSeq: number | undefined;
    if (body.subscription_id !== undefined) {
      // An unknown subscription has no failed deliveries: none match.
      subscriptionSeq = (await views.subscriptionState(body.subscription_id, scope))?.seq ?? -1;
    }
    const filter = {
      ...scope,
      subscriptionSeq,
      eventType: body.event_type,
      since: body.since === undefined ? undefined : new Date(body.since),
      until: body.until === undefined ? undefined : new Date(body.until),
      statusClass: body.status_class,
      deliveryIds: body.delivery_ids,
    };
    if (body.dry_run) {
      return c.json({ matching: await engine.retryFailed({ ...filter, dryRun: true }) }, 200);
    }
    return c.json({ requeued: await engine.retryFailed(filter) }, 202);
  });

  return app;
}
