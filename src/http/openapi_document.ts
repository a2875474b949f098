import type { OpenAPIHono } from "@hono/zod-openapi";
import { VERSION } from "../version.ts";
import type { EventCatalog } from "./event_types/catalog.ts";
import { catalogWebhooks } from "./event_types/webhooks.ts";
import { documentRequestIds, headers } from "./openapi.ts";
import { eventWebhook } from "./webhook_docs.ts";

const description = `Dispatch stores the events producers send, fans each one out to every
matching subscription and delivers it to the subscription's \`url\` with Standard Webhooks
signatures, retrying with backoff; what an endpoint receives is under \`webhooks\`.

Errors are \`{"error":{"code","message","details"?}}\`. With \`DISPATCH_API_KEYS\` set, every
operation but the probes (and \`/metrics\` unless \`METRICS_PUBLIC=false\`) needs
\`Authorization: Bearer <key>\`: a key from \`DISPATCH_API_KEYS\` (an admin key) or one made
by \`POST /api-keys\`. Each operation's \`x-scopes\` lists the key scopes that may call it
(\`admin\`, \`publish\`, \`tenant\`); a \`tenant\` key sees only its tenant's resources, and
another tenant's answers 404 as one that does not exist.`;

const tags = [
  { name: "Events", description: "Ingest events and follow their deliveries" },
  { name: "Subscriptions", description: "Where events go, and the secrets that sign them" },
  { name: "Tenants", description: "Each customer's subscriptions and events, and their health" },
  { name: "API keys", description: "Keys for admins, publishers and tenants" },
  {
    name: "Event types",
    description:
      "The catalog: each type's JSON Schema, checked at ingest and listed under `webhooks`",
  },
  { name: "Operations", description: "Probes and metrics for orchestrators and Prometheus" },
];

/**
 * Serves the OpenAPI 3.1 document at `/openapi.json`, built once, on first
 * request, from every route registered by then, with the event-type
 * catalog's types merged under `webhooks` once per version of the catalog.
 */
export function serveOpenApi(
  app: OpenAPIHono,
  options: { auth: boolean; catalog: EventCatalog },
): void {
  const registry = app.openAPIRegistry;
  if (options.auth) {
    registry.registerComponent("securitySchemes", "bearer", {
      type: "http",
      scheme: "bearer",
      description: "A key from DISPATCH_API_KEYS, or one from POST /api-keys",
    });
  }
  for (const [name, header] of Object.entries(headers)) {
    // Only a 401 sends it, and only API keys give a 401.
    if (name !== "WWW-Authenticate" || options.auth) {
      registry.registerComponent("headers", name, header);
    }
  }
  registry.registerWebhook(eventWebhook);
  let document: ReturnType<typeof app.getOpenAPI31Document> | undefined;
  let merged: { version: number; document: unknown } | undefined;
  app.get("/openapi.json", async (c) => {
    if (document === undefined) {
      documentRequestIds(app);
      document = app.getOpenAPI31Document({
        openapi: "3.1.0",
        info: { title: "Dispatch", version: VERSION, description },
        servers: [{ url: "/", description: "The Dispatch that serves this document" }],
        tags,
      });
    }
    // The document stays readable while the database is not: with the catalog last read.
    const catalog = await options.catalog.current().catch(() => options.catalog.last());
    if (catalog === undefined) return c.json(document);
    if (merged?.version !== catalog.version) {
      const base = document.webhooks?.event?.post as Record<string, unknown>;
      const webhooks = { ...document.webhooks, ...catalogWebhooks(catalog.types.values(), base) };
      merged = { version: catalog.version, document: { ...document, webhooks } };
    }
    return c.json(merged.document);
  });
}
