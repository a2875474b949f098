import type { OpenAPIHono } from "@hono/zod-openapi";
import { VERSION } from "../version.ts";
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
  { name: "Operations", description: "Probes and metrics for orchestrators and Prometheus" },
];

/**
 * Serves the OpenAPI 3.1 document at `/openapi.json`, built once, on first
 * request, from every route registered by then.
 */
export function serveOpenApi(app: OpenAPIHono, options: { auth: boolean }): void {
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
  let document: unknown;
  app.get("/openapi.json", (c) => {
    if (document === undefined) {
      documentRequestIds(app);
      document = app.getOpenAPI31Document({
        openapi: "3.1.0",
        info: { title: "Dispatch", version: VERSION, description },
        servers: [{ url: "/", description: "The Dispatch that serves this document" }],
        tags,
      });
    }
    return c.json(document);
  });
}
