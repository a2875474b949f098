import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { notFound } from "../errors.ts";
import { keyScopes } from "../views/api_keys.ts";
import { newId } from "../ids.ts";
import { type ApiKeyTable, newToken, tokenDigest } from "../security/api_key_table.ts";
import { decodeCursor, encodeCursor } from "./cursor.ts";
import type { AppDeps } from "./deps.ts";
import * as examples from "./examples.ts";
import { jsonBody, jsonResponse } from "./openapi.ts";
import { IdParam, isoTime, Page, paged, tenantId, text, timestamp } from "./schemas.ts";

const tags = ["API keys"];

const expiresAt = isoTime.refine((v) => Date.parse(v) > Date.now(), "must be in the future");

const NewApiKey = z.object({
  scope: z.enum(keyScopes).openapi({
    description:
      "`admin`: everything; `publish`: POST /events, POST /events/batch and POST /filters/test, and reading /event-types; `tenant`: one tenant's subscriptions, events, deliveries and attempts, and reading /event-types",
  }),
  tenant_id: tenantId.optional().openapi({ description: 'Required for, and only for, "tenant"' }),
  description: text(0, 1024).optional(),
  expires_at: expiresAt.optional().openapi({ format: "date-time" }),
}).strict().superRefine((key, ctx) => {
  if (key.scope === "tenant" && key.tenant_id === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["tenant_id"],
      message: 'is required for a "tenant" key',
    });
  }
  if (key.scope !== "tenant" && key.tenant_id !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["tenant_id"],
      message: `is only for a "tenant" key, not a "${key.scope}" one`,
    });
  }
});

const fields = {
  id: z.string(),
  scope: z.enum(keyScopes),
  tenant_id: z.string().nullable(),
  description: z.string().nullable(),
  created_at: timestamp,
  expires_at: timestamp.nullable(),
};

const ApiKey = z.object({
  ...fields,
  last_used_at: timestamp.nullable().openapi({
    description: "When the key was last used, to within a minute or so",
  }),
}).openapi("ApiKey");

const CreatedApiKey = z.object({
  id: fields.id,
  key: z.string().openapi({ description: "The bearer token, shown only in this response" }),
  scope: fields.scope,
  tenant_id: fields.tenant_id,
  description: fields.description,
  created_at: fields.created_at,
  expires_at: fields.expires_at,
}).openapi("CreatedApiKey");

const create = createRoute({
  method: "post",
  path: "/api-keys",
  tags,
  operationId: "createApiKey",
  summary: "Create an API key; the key itself is returned only here",
  request: { body: jsonBody(NewApiKey, examples.newApiKey) },
  responses: {
    201: jsonResponse(CreatedApiKey, "Created, with its key", {
      example: { ...examples.apiKey, key: examples.apiKeyToken },
      headers: ["Cache-Control"],
    }),
  },
});

const list = createRoute({
  method: "get",
  path: "/api-keys",
  tags,
  operationId: "listApiKeys",
  summary: "List API keys, oldest first (never the keys themselves)",
  request: { query: Page },
  responses: {
    200: jsonResponse(paged(ApiKey, "ApiKeyPage"), "A page of API keys", {
      example: { data: [{ ...examples.apiKey, last_used_at: null }], next_cursor: null },
    }),
  },
});

const revoke = createRoute({
  method: "delete",
  path: "/api-keys/{id}",
  tags,
  operationId: "deleteApiKey",
  summary: "Revoke an API key: every process refuses it within a second",
  request: { params: IdParam },
  responses: { 204: { description: "Revoked" } },
});

/** Managed API keys: random tokens stored only as SHA-256, shown once. */
export function apiKeysRoutes(deps: AppDeps, options: { table: ApiKeyTable }) {
  const { engine, views } = deps;
  const app = new OpenAPIHono();

  app.openapi(create, async (c) => {
    const body = c.req.valid("json");
    const key = newToken();
    const row = await engine.createApiKey({
      id: newId("key"),
      tokenSha256: tokenDigest(key),
      scope: body.scope,
      tenant_id: body.tenant_id ?? null,
      description: body.description ?? null,
      expires_at: body.expires_at === undefined ? null : new Date(body.expires_at),
    });
    const { last_used_at: _, ...created } = row;
    c.header("Cache-Control", "no-store");
    return c.json({ ...created, key }, 201);
  });

  app.openapi(list, async (c) => {
    const q = c.req.valid("query");
    const page = await views.listApiKeys({ limit: q.limit, after: decodeCursor(q.cursor) });
    return c.json({ data: page.keys, next_cursor: encodeCursor(page.next) }, 200);
  });

  app.openapi(revoke, async (c) => {
    const { id } = c.req.valid("param");
    if (!(await engine.revokeApiKey(id))) throw notFound("apiKey", id);
    options.table.forget(id);
    return c.body(null, 204);
  });

  return app;
}
