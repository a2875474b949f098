/**
 * `/event-types`: the catalog of event types, each with an optional JSON
 * Schema for its `data` and an example. Admin keys change it; every key
 * reads it.
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { eventTypeConflict, notFound } from "../../errors.ts";
import { jsonProblem } from "../../storable.ts";
import { changed } from "../../engine/event_types.ts";
import type { EventTypeRow } from "../../views/event_types.ts";
import { decodeCursor, encodeCursor } from "../cursor.ts";
import type { AppDeps } from "../deps.ts";
import { validationError } from "../error_handler.ts";
import * as examples from "../examples.ts";
import { errors, jsonBody, jsonResponse } from "../openapi.ts";
import { eventType, jsonObject, Page, paged, text, timestamp } from "../schemas.ts";
import type { EventCatalog } from "./catalog.ts";
import { schemaCompiler, schemaProblem, violations } from "./json_schema.ts";

const tags = ["Event types"];

const schema = z.custom<unknown>(() => true).superRefine((value, ctx) => {
  const problem = jsonProblem(value);
  const why = problem?.message ?? schemaProblem(value);
  if (why !== null) ctx.addIssue({ code: "custom", message: why, path: problem?.path ?? [] });
}).openapi({
  type: ["object", "boolean"],
  additionalProperties: {},
  description: "A JSON Schema (draft 2020-12) for the `data` of events of this type",
  example: examples.newEventType.schema,
});

const example = jsonObject.openapi({
  type: "object",
  additionalProperties: {},
  description: "A `data` value; it must match `schema`",
  example: examples.newEventType.example,
});

const description = text(0, 1024);

export const NameParam = z.object({ name: text(1, 255) });

const NewEventType = z.object({
  name: eventType.openapi({ description: "An event `type`: exact, no wildcards" }),
  description: description.optional(),
  schema: schema.optional(),
  example: example.optional(),
  deprecated: z.boolean().default(false),
}).strict();

const EventTypePatch = z.object({
  description: description.nullable().optional(),
  schema: schema.nullable().optional(),
  example: example.nullable().optional(),
  deprecated: z.boolean().optional(),
}).strict();

const EventType = z.object({
  name: z.string(),
  description: z.string().nullable(),
  schema: z.unknown().openapi({ description: "A JSON Schema (draft 2020-12), or null" }),
  example: z.record(z.string(), z.unknown()).nullable(),
  deprecated: z.boolean(),
  created_at: timestamp,
  updated_at: timestamp,
}).openapi("EventType");

const create = createRoute({
  method: "post",
  path: "/event-types",
  tags,
  operationId: "createEventType",
  summary: "Add an event type to the catalog, with a JSON Schema its events' data must match",
  request: { body: jsonBody(NewEventType, examples.newEventType) },
  responses: {
    201: jsonResponse(EventType, "Added", { example: examples.eventType }),
    409: errors.eventTypeConflict,
  },
});

const list = createRoute({
  method: "get",
  path: "/event-types",
  tags,
  operationId: "listEventTypes",
  summary: "List the catalog's event types, oldest first",
  request: { query: Page },
  responses: {
    200: jsonResponse(paged(EventType, "EventTypePage"), "A page of event types", {
      example: { data: [examples.eventType], next_cursor: null },
    }),
  },
});

const get = createRoute({
  method: "get",
  path: "/event-types/{name}",
  tags,
  operationId: "getEventType",
  summary: "An event type of the catalog",
  request: { params: NameParam },
  responses: { 200: jsonResponse(EventType, "The event type", { example: examples.eventType }) },
});

const update = createRoute({
  method: "patch",
  path: "/event-types/{name}",
  tags,
  operationId: "updateEventType",
  summary: "Change an event type; every process validates with the change within a second",
  request: {
    params: NameParam,
    body: jsonBody(EventTypePatch, { deprecated: true }),
  },
  responses: {
    200: jsonResponse(EventType, "Changed", {
      example: { ...examples.eventType, deprecated: true },
    }),
  },
});

const remove = createRoute({
  method: "delete",
  path: "/event-types/{name}",
  tags,
  operationId: "deleteEventType",
  summary: "Remove an event type: its events are no longer validated",
  request: { params: NameParam },
  responses: { 204: { description: "Removed" } },
});

/** The catalog's routes; each change is seen at once by `catalog` (this process's). */
export function eventTypesRoutes(deps: AppDeps, options: { catalog: EventCatalog }) {
  const { engine, views } = deps;
  const { catalog } = options;
  const app = new OpenAPIHono();
  // Seen by the other processes within a second; by this one at once.
  const seen = <T>(value: T) => catalog.refresh().then(() => value, () => value);

  app.openapi(create, async (c) => {
    const body = c.req.valid("json");
    const type = {
      name: body.name,
      description: body.description ?? null,
      schema: body.schema ?? null,
      example: body.example ?? null,
      deprecated: body.deprecated,
    };
    checkExample(type);
    const row = await engine.createEventType(type);
    if (!row) throw eventTypeConflict(body.name);
    return c.json(eventTypeBody(await seen(row)), 201);
  });

  app.openapi(list, async (c) => {
    const q = c.req.valid("query");
    const page = await views.listEventTypes({ limit: q.limit, after: decodeCursor(q.cursor) });
    return c.json(
      { data: page.types.map(eventTypeBody), next_cursor: encodeCursor(page.next) },
      200,
    );
  });

  app.openapi(get, async (c) => {
    const { name } = c.req.valid("param");
    const row = await views.getEventType(name);
    if (!row) throw notFound("eventType", name);
    return c.json(eventTypeBody(row), 200);
  });

  app.openapi(update, async (c) => {
    const { name } = c.req.valid("param");
    const patch = c.req.valid("json");
    const row = await engine.updateEventType(name, patch, (current) => {
      if (patch.schema !== undefined || patch.example !== undefined) {
        checkExample(changed(current, patch));
      }
    });
    if (!row) throw notFound("eventType", name);
    return c.json(eventTypeBody(await seen(row)), 200);
  });

  app.openapi(remove, async (c) => {
    const { name } = c.req.valid("param");
    if (!(await seen(await engine.deleteEventType(name)))) throw notFound("eventType", name);
    return c.body(null, 204);
  });

  return app;
}

/** Refuses an example its schema does not accept, with each violation's place in it. */
function checkExample(type: Pick<EventTypeRow, "schema" | "example">): void {
  if (type.schema === null || type.example === null) return;
  const found = violations(schemaCompiler().compile(type.schema as object), type.example);
  if (found.length === 0) return;
  const why = found.map((v) => `${v.pointer || "/"} ${v.message}`).join("; ");
  throw validationError(
    [{ path: ["example"], message: `does not match the schema: ${why}` }],
    "json",
  );
}

// `example` is stored as a JSON object, so it comes back as one.
function eventTypeBody(row: EventTypeRow) {
  return { ...row, example: row.example as Record<string, unknown> | null };
}
