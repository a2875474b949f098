import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { type ApiError, eventConflict, type FieldIssue } from "../errors.ts";
import type { AppDeps } from "./deps.ts";
import type { EventCatalog } from "./event_types/catalog.ts";
import { validationError } from "./error_handler.ts";
import { eventInput, keepText, textOf } from "./events_routes.ts";
import * as examples from "./examples.ts";
import { arrayElements, objectMembers } from "./json_text.ts";
import { jsonBody, jsonResponse } from "./openapi.ts";
import { ErrorBody, NewEvent } from "./schemas.ts";

// Items are validated one by one in the handler, so that one bad event does not refuse the rest;
// the document shows what a client should send.
const BatchRequest = z.object({
  events: z.array(z.unknown()).min(1).max(1000).openapi({
    items: { $ref: "#/components/schemas/NewEvent" },
  }),
}).strict();

const BatchItem = z.object({
  index: z.number().int(),
  id: z.string().nullable(),
  status: z.union([z.literal(201), z.literal(200), z.literal(409), z.literal(400)]),
  error: ErrorBody.shape.error.optional(),
}).openapi("EventBatchItem");

const batch = createRoute({
  method: "post",
  path: "/events/batch",
  tags: ["Events"],
  operationId: "createEventBatch",
  summary: "Ingest up to 1,000 events in one transaction, each validated and idempotent",
  request: { body: jsonBody(BatchRequest, examples.eventBatch) },
  responses: {
    200: jsonResponse(
      z.object({ results: z.array(BatchItem) }).openapi("EventBatchResult"),
      "One result per event, in order: the status POST /events would have answered",
      {
        example: {
          results: [
            { index: 0, id: "evt_123", status: 200 },
            { index: 1, id: "evt_0mx564f5bvg9632tupetpadd0", status: 201 },
          ],
        },
      },
    ),
  },
});

/** `POST /events/batch`: each item validated and idempotent as in `POST /events`, one statement. */
export function eventBatchRoutes(deps: AppDeps, options: { catalog: EventCatalog }) {
  const app = new OpenAPIHono();

  app.on("POST", "/events/batch", keepText);

  app.openapi(batch, async (c) => {
    const text = await c.req.text();
    const spans = arrayElements(text, objectMembers(text, 0).get("events")!.start);
    const items = await Promise.all(
      c.req.valid("json").events.map(async (raw, index) => {
        const parsed = NewEvent.safeParse(raw);
        const refused = (err: ApiError, id: unknown) => ({
          index,
          id: typeof id === "string" ? id : null,
          error: { code: err.code, message: err.message, details: err.details as FieldIssue[] },
        });
        if (!parsed.success) {
          return refused(
            validationError(parsed.error.issues, "json"),
            (raw as { id?: unknown })?.id,
          );
        }
        const event = eventInput(
          parsed.data,
          textOf(text, objectMembers(text, spans[index]!.start)),
        );
        const refusal = await options.catalog.refusal(event);
        return refusal ? refused(refusal, parsed.data.id) : { index, event };
      }),
    );
    const valid = items.flatMap((i) => "event" in i ? [i.event] : []);
    const outcomes = valid.length > 0 ? await deps.engine.publish(valid) : [];
    let next = 0;
    const results = items.map((item) => {
      if (!("event" in item)) {
        return { index: item.index, id: item.id, status: 400 as const, error: item.error };
      }
      const outcome = outcomes[next++]!;
      if (outcome.kind === "created") deps.metrics.eventIngested(item.event.type);
      const status = outcome.kind === "created"
        ? 201 as const
        : outcome.kind === "replayed"
        ? 200 as const
        : 409 as const;
      return outcome.kind === "conflict"
        ? { index: item.index, id: item.event.id, status, error: conflictBody(item.event.id) }
        : { index: item.index, id: item.event.id, status };
    });
    return c.json({ results }, 200);
  });

  return app;
}

function conflictBody(id: string) {
  const { code, message } = eventConflict(id);
  return { code, message };
}
