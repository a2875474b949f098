/**
 * The catalog's types as OpenAPI `webhooks`: what a receiver of each type
 * is sent, with the type's schema for `data` and its example, so a receiver
 * can generate types for it.
 *
 * @module
 */
import type { CatalogType } from "../../views/event_types.ts";
import * as examples from "../examples.ts";

type Operation = Record<string, unknown>;

/**
 * One webhook per type, each the generic `event` webhook (`base`: its
 * headers and answers) with the body narrowed to the type.
 */
export function catalogWebhooks(
  types: Iterable<CatalogType>,
  base: Operation,
): Record<string, { post: Operation }> {
  const hooks: Record<string, { post: Operation }> = {};
  for (const type of types) {
    const at =
      `#/webhooks/${type.name}/post/requestBody/content/application~1json/schema/properties/data`;
    const body = {
      allOf: [{ $ref: "#/components/schemas/WebhookEvent" }],
      properties: {
        type: { const: type.name },
        ...(type.schema === null ? {} : { data: rebased(type.schema, at) }),
      },
    };
    const example = type.example === null ? {} : {
      example: {
        id: examples.newEvent.id,
        type: type.name,
        source: examples.newEvent.source,
        timestamp: examples.event.created_at,
        data: type.example,
      },
    };
    hooks[type.name] = {
      post: {
        ...base,
        operationId: `receive:${type.name}`,
        summary: type.description ?? `A ${type.name} event, delivered to a subscription's url`,
        ...(type.deprecated ? { deprecated: true } : {}),
        requestBody: {
          required: true,
          content: { "application/json": { schema: body, ...example } },
        },
      },
    };
  }
  return hooks;
}

/** The schema with its own references (`#/$defs/...`) pointing to where it now is, under `at`. */
function rebased(schema: unknown, at: string): unknown {
  if (Array.isArray(schema)) return schema.map((s) => rebased(s, at));
  if (schema === null || typeof schema !== "object") return schema;
  return Object.fromEntries(
    Object.entries(schema).map(([key, value]) => [
      key,
      (key === "$ref" || key === "$dynamicRef") && typeof value === "string" &&
        value.startsWith("#")
        ? at + value.slice(1)
        : rebased(value, at),
    ]),
  );
}
