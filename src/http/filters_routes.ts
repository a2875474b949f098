/**
 * `POST /filters/test`: whether an event would pass a filter, as fan-out
 * decides it (the console's "test filter" button). It changes nothing, so
 * every key may call it.
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppDeps } from "./deps.ts";
import * as examples from "./examples.ts";
import { jsonBody, jsonResponse } from "./openapi.ts";
import { eventType, jsonObject, tenantId, text } from "./schemas.ts";
import { refuseFilter } from "./shaping.ts";
import { FilterTestResult } from "./shaping_schemas.ts";
import { MAX_FILTER_LENGTH } from "../views/filters.ts";

const FilterTest = z.object({
  filter: text(1, MAX_FILTER_LENGTH),
  event: z.object({
    type: eventType,
    data: jsonObject.openapi({ type: "object", additionalProperties: {} }),
    source: text(1, 255).nullable().optional(),
    id: text(1, 255).nullable().optional(),
    tenant_id: tenantId.nullable().optional(),
  }).strict(),
}).strict();

const testFilter = createRoute({
  method: "post",
  path: "/filters/test",
  tags: ["Subscriptions"],
  operationId: "testFilter",
  summary: "Whether an event passes a filter, as fan-out decides it",
  request: { body: jsonBody(FilterTest, examples.filterTest) },
  responses: {
    200: jsonResponse(FilterTestResult, "Whether it passes", { example: { matches: true } }),
  },
});

export function filtersRoutes(deps: AppDeps) {
  const app = new OpenAPIHono();
  app.openapi(testFilter, async (c) => {
    const { filter, event } = c.req.valid("json");
    const result = await deps.views.testFilter(filter, {
      id: event.id ?? null,
      type: event.type,
      source: event.source ?? null,
      tenant_id: event.tenant_id ?? null,
      data: event.data,
    });
    if ("problem" in result) refuseFilter(result.problem);
    return c.json({ matches: result.matches }, 200);
  });
  return app;
}
