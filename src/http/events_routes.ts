import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import type { EventInput } from "../engine/publish.ts";
import { createdEvent, type EventRow } from "../views/events.ts";
import { eventConflict, notFound } from "../errors.ts";
import { newId } from "../ids.ts";
import { tenantFilter } from "./access.ts";
import { objectMembers, type Span } from "./json_text.ts";
import { decodeCursor, encodeCursor } from "./cursor.ts";
import type { AppDeps } from "./deps.ts";
import type { EventCatalog } from "./event_types/catalog.ts";
import * as examples from "./examples.ts";
import { errors, jsonBody, jsonResponse } from "./openapi.ts";
import { Attempt, Delivery, Event, EventFilter, IdParam, NewEvent, paged } from "./schemas.ts";

const tags = ["Events"];

const create = createRoute({
  method: "post",
  path: "/events",
  tags,
  operationId: "createEvent",
  summary: "Ingest an event and fan it out to every matching subscription",
  request: { body: jsonBody(NewEvent, examples.newEvent) },
  responses: {
    201: jsonResponse(Event, "Stored, with a delivery for each matching subscription", {
      example: examples.event,
    }),
    200: jsonResponse(Event, "The same id and content was seen before: nothing new was stored", {
      example: examples.event,
      headers: ["Idempotent-Replayed"],
    }),
    409: errors.eventConflict,
  },
});

const list = createRoute({
  method: "get",
  path: "/events",
  tags,
  operationId: "listEvents",
  summary: "List events, newest first",
  request: { query: EventFilter },
  responses: {
    200: jsonResponse(paged(Event, "EventPage"), "A page of events", {
      example: { data: [examples.event], next_cursor: null },
    }),
  },
});

const get = createRoute({
  method: "get",
  path: "/events/{id}",
  tags,
  operationId: "getEvent",
  summary: "An event with its derived status and delivery counts",
  request: { params: IdParam },
  responses: { 200: jsonResponse(Event, "The event", { example: examples.event }) },
});

const attempts = createRoute({
  method: "get",
  path: "/events/{id}/attempts",
  tags,
  operationId: "listEventAttempts",
  summary: "Every delivery attempt of an event, oldest first",
  request: { params: IdParam },
  responses: {
    200: jsonResponse(z.object({ data: z.array(Attempt) }), "Attempts", {
      example: { data: [examples.attempt] },
    }),
  },
});

const deliveries = createRoute({
  method: "get",
  path: "/events/{id}/deliveries",
  tags,
  operationId: "listEventDeliveries",
  summary: "Delivery state per subscription",
  request: { params: IdParam },
  responses: {
    200: jsonResponse(z.object({ data: z.array(Delivery) }), "Deliveries", {
      example: { data: [examples.delivery] },
    }),
  },
});

const RetryResult = z.object({
  requeued: z.array(z.string()),
  skipped: z.array(z.object({ subscription_id: z.string(), reason: z.string() })),
}).openapi("RetryResult");

const retry = createRoute({
  method: "post",
  path: "/events/{id}/retry",
  tags,
  operationId: "retryEvent",
  summary: "Re-queue the event's failed deliveries",
  request: { params: IdParam },
  responses: {
    202: jsonResponse(RetryResult, "What was re-queued and what was not", {
      example: {
        requeued: ["sub_demo"],
        skipped: [{ subscription_id: "sub_old", reason: "subscription deleted" }],
      },
    }),
  },
});

export function eventsRoutes(deps: AppDeps, options: { catalog: EventCatalog }) {
  const { engine, views } = deps;
  const app = new OpenAPIHono();

  app.on("POST", "/events", keepText);

  app.openapi(create, async (c) => {
    const raw = await c.req.text();
    const event = eventInput(c.req.valid("json"), textOf(raw, objectMembers(raw, 0)));
    const refused = await options.catalog.refusal(event);
    if (refused) throw refused;
    // Withdrawn at the deadline unless written by then: a 503 never stores the event.
    const deadline = c.get("deadline");
    const publishing = engine.publish(
      [event],
      deadline ? { signal: deadline.signal, deadline: deadline.at } : {},
    );
    const [outcome] = deadline ? await deadline.hold(publishing) : await publishing;
    if (outcome!.kind !== "created") {
      if (outcome!.kind === "conflict") throw eventConflict(event.id);
      deadline?.signal.throwIfAborted();
      c.header("Idempotent-Replayed", "true");
      return c.json(eventBody(await findEvent(c, deps, event.id)), 200);
    }
    deps.metrics.eventIngested(event.type);
    // `dataText` is how it is stored, not part of the event.
    const { dataText: _, ...shown } = event;
    return c.json(eventBody(createdEvent(shown, outcome!)), 201);
  });

  app.openapi(list, async (c) => {
    const q = c.req.valid("query");
    const page = await views.listEvents({
      ...tenantFilter(c, q.tenant_id),
      limit: q.limit,
      before: decodeCursor(q.cursor),
      type: q.type,
      status: q.status,
    });
    return c.json({ data: page.events.map(eventBody), next_cursor: encodeCursor(page.next) }, 200);
  });

  app.openapi(get, async (c) => {
    const { id } = c.req.valid("param");
    return c.json(eventBody(await findEvent(c, deps, id)), 200);
  });

  app.openapi(attempts, async (c) => {
    const { id } = c.req.valid("param");
    await findEvent(c, deps, id);
    return c.json({ data: await views.listAttempts(id) }, 200);
  });

  app.openapi(deliveries, async (c) => {
    const { id } = c.req.valid("param");
    await findEvent(c, deps, id);
    return c.json({ data: await views.listEventDeliveries(id) }, 200);
  });

  app.openapi(retry, async (c) => {
    const { id } = c.req.valid("param");
    await findEvent(c, deps, id);
    return c.json(await engine.requeue({ eventId: id }), 202);
  });

  return app;
}

/** The event, if it exists and is within the caller's tenant; otherwise 404. */
async function findEvent(c: Context, deps: AppDeps, id: string): Promise<EventRow> {
  const event = await deps.views.getEvent(id, tenantFilter(c));
  if (!event) throw notFound("event", id);
  return event;
}

/** An event as a request sent it, with its defaults; `dataText` is its `data` as written. */
export function eventInput(
  body: z.output<typeof NewEvent>,
  dataText: string,
): EventInput & { ordering_key: string | null } {
  return {
    id: body.id ?? newId("evt"),
    type: body.type,
    source: body.source ?? null,
    data: body.data,
    tenant_id: body.tenant_id ?? null,
    ordering_key: body.ordering_key ?? null,
    dataText,
  };
}

/** Reads the body as text before validation parses it, so that `data` is kept as written. */
export const keepText: MiddlewareHandler = async (c, next) => {
  await c.req.text();
  await next();
};

/** The source text of an event's `data`, given its members in the request's text. */
export function textOf(raw: string, members: Map<string, Span>): string {
  const span = members.get("data")!;
  return raw.slice(span.start, span.end);
}

// `data` is stored as a JSON object, so it comes back as one.
function eventBody(event: EventRow) {
  return { ...event, data: event.data as Record<string, unknown> };
}
