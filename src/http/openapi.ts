import type { OpenAPIHono, RouteConfig, z } from "@hono/zod-openapi";
import {
  ApiError,
  eventConflict,
  eventTypeConflict,
  notFound,
  subscriptionConflict,
  subscriptionInactive,
} from "../errors.ts";
import { errorBody, tooLarge, unsupportedType, validationError } from "./error_handler.ts";
import { forbidden, scopesOf } from "./access.ts";
import { limitedActions } from "./action_limit.ts";
import { ErrorBody, NewEvent } from "./schemas.ts";

interface HeaderDoc {
  description: string;
  schema: { type: "string" | "integer"; enum?: string[]; minimum?: number };
  example?: string | number;
}

/** Response headers, declared once under `components/headers`. */
export const headers = {
  "X-Request-Id": {
    description:
      "The caller's own `X-Request-Id` when it sent a sane one (up to 128 letters, digits and `._:@/+=-`), otherwise a new UUID; the request's log lines carry it too",
    schema: { type: "string" },
    example: "4b0d8e2c-7f1a-4c55-9d3e-2a6f0b9c1e77",
  },
  "Idempotent-Replayed": {
    description:
      "`true` when this id was seen before with the same content: nothing new was stored",
    schema: { type: "string", enum: ["true"] },
  },
  "Retry-After": {
    description: "Seconds to wait before trying again",
    schema: { type: "integer", minimum: 0 },
    example: 1,
  },
  "WWW-Authenticate": {
    description: "The scheme to authenticate with",
    schema: { type: "string" },
    example: 'Bearer realm="dispatch"',
  },
  "Cache-Control": {
    description: "`no-store`: the answer holds a secret",
    schema: { type: "string", enum: ["no-store"] },
  },
} satisfies Record<string, HeaderDoc>;

type HeaderName = keyof typeof headers;

const headerRefs = (names: readonly HeaderName[]) =>
  Object.fromEntries(names.map((n) => [n, { $ref: `#/components/headers/${n}` }]));

export function jsonBody<T extends z.ZodType>(schema: T, example: z.input<T>) {
  return { content: { "application/json": { schema, example } }, required: true };
}

export function jsonResponse<T extends z.ZodType>(
  schema: T,
  description: string,
  options: { example: z.output<T>; headers?: readonly HeaderName[] },
) {
  return {
    description,
    ...(options.headers ? { headers: headerRefs(options.headers) } : {}),
    content: { "application/json": { schema, example: options.example } },
  };
}

function errorResponse(
  description: string,
  example: ApiError,
  options: { headers?: readonly HeaderName[] } = {},
) {
  return jsonResponse(ErrorBody, description, {
    ...options,
    example: errorBody(example),
  });
}

/** Error answers, each with an example made by the code that gives it. */
export const errors = {
  invalid: errorResponse(
    "Invalid request: the message names the first bad field, `details` lists every one",
    validationError(
      NewEvent.safeParse({ type: "order created", data: {} }).error?.issues ?? [],
      "json",
    ),
  ),
  unauthorized: errorResponse(
    "Missing, malformed or unknown API key",
    new ApiError("unauthorized", "Invalid API key"),
    { headers: ["WWW-Authenticate"] },
  ),
  forbidden: errorResponse(
    "The key's scope does not allow this operation (see `x-scopes`)",
    forbidden("publish", "GET /subscriptions"),
  ),
  eventNotFound: errorResponse(
    "No such event, or not the tenant key's",
    notFound("event", "evt_123"),
  ),
  subscriptionNotFound: errorResponse(
    "No such subscription, or not the tenant key's",
    notFound("subscription", "sub_demo"),
  ),
  tenantNotFound: errorResponse(
    "No such tenant (nothing carries its id), or not the tenant key's",
    notFound("tenant", "acme"),
  ),
  apiKeyNotFound: errorResponse("No such API key", notFound("apiKey", "key_123")),
  eventTypeNotFound: errorResponse(
    "No such event type in the catalog",
    notFound("eventType", "order.created"),
  ),
  eventTypeConflict: errorResponse(
    "An event type with this name exists",
    eventTypeConflict("order.created"),
  ),
  eventConflict: errorResponse(
    "The id was used before with other content",
    eventConflict("evt_123"),
  ),
  subscriptionConflict: errorResponse(
    "A subscription with this id exists",
    subscriptionConflict("sub_demo"),
  ),
  deliveryNotFound: errorResponse("No such delivery", notFound("delivery", 17)),
  notRetryable: errorResponse(
    "Only a failed delivery of an active subscription can be retried",
    new ApiError("conflict", 'Delivery "17" is delivered: only failed deliveries can be retried'),
  ),
  inactive: errorResponse(
    "The subscription is disabled",
    subscriptionInactive("sub_demo"),
  ),
  unsupported: errorResponse("Body not sent as application/json", unsupportedType("text/plain")),
  rateLimited: errorResponse(
    "Too many of these requests for this API key (ACTION_RATE_LIMIT); retry after Retry-After",
    new ApiError(
      "rate_limited",
      "Too many requests of this kind for this API key (ACTION_RATE_LIMIT is 60 a minute): retry in 1 s",
    ),
    { headers: ["Retry-After"] },
  ),
  unavailable: errorResponse(
    "The database is unreachable; try again shortly",
    new ApiError("unavailable", "Database unavailable: retry shortly"),
    { headers: ["Retry-After"] },
  ),
};

/**
 * Gives every route of the API router its security, the scopes that may
 * call it (`x-scopes`) and the errors it can answer, derived from what it
 * takes: input → 400, API keys → 401, a scope that may not call it → 403,
 * an `{id}`, or a `tenant_id` a tenant key may name → 404, a body → 413 and
 * 415, a rate per key → 429, the database → 503. A 409 each route declares itself.
 */
export function documentApiRoutes(
  api: OpenAPIHono,
  options: { auth: boolean; maxPayloadBytes: number },
): void {
  const tooLargeResponse = errorResponse(
    "Body larger than MAX_PAYLOAD_BYTES",
    tooLarge(options.maxPayloadBytes),
  );
  const limited = new Set<string>(limitedActions);
  for (const def of api.openAPIRegistry.definitions) {
    if (def.type !== "route") continue;
    const route = def.route;
    const { body, params, query } = route.request ?? {};
    const scopes = scopesOf(route.operationId);
    route.security = options.auth ? [{ bearer: [] }] : [];
    route["x-scopes"] = scopes;
    const namesTenant = scopes.includes("tenant") &&
      [query, jsonSchemaOf(body)].some(hasTenantId);
    route.responses = {
      ...(body || params || query ? { 400: errors.invalid } : {}),
      ...(options.auth ? { 401: errors.unauthorized } : {}),
      403: errors.forbidden,
      ...(namesResource(route) || namesTenant ? { 404: notFoundFor(route) } : {}),
      ...(body ? { 413: tooLargeResponse, 415: errors.unsupported } : {}),
      ...(limited.has(route.path) ? { 429: errors.rateLimited } : {}),
      503: errors.unavailable,
      ...route.responses,
    };
  }
}

function jsonSchemaOf(body: unknown): unknown {
  return (body as { content?: Record<string, { schema?: unknown }> } | undefined)
    ?.content?.["application/json"]?.schema;
}

function hasTenantId(schema: unknown): boolean {
  const shape = (schema as { shape?: Record<string, unknown> } | undefined)?.shape;
  return shape?.tenant_id !== undefined;
}

const notFoundByResource: Record<string, ReturnType<typeof errorResponse>> = {
  events: errors.eventNotFound,
  subscriptions: errors.subscriptionNotFound,
  tenants: errors.tenantNotFound,
  "api-keys": errors.apiKeyNotFound,
  deliveries: errors.deliveryNotFound,
  "event-types": errors.eventTypeNotFound,
};

/** Whether the path names one resource, by `{id}` (or an event type's `{name}`). */
const namesResource = (route: RouteConfig) => /\{(id|name)\}/.test(route.path);

/** The resource an `{id}` names, from the path's first segment; without one, the tenant asked for. */
function notFoundFor(route: RouteConfig) {
  if (!namesResource(route)) return errors.tenantNotFound;
  return notFoundByResource[route.path.split("/")[1] ?? ""] ?? errors.eventNotFound;
}

/** Every answer carries `X-Request-Id`. */
export function documentRequestIds(app: OpenAPIHono): void {
  for (const def of app.openAPIRegistry.definitions) {
    if (def.type !== "route") continue;
    def.route.responses = Object.fromEntries(
      Object.entries(def.route.responses).map(([status, res]) => [
        status,
        "$ref" in res
          ? res
          : { ...res, headers: { ...headerRefs(["X-Request-Id"]), ...res.headers } },
      ]),
    );
  }
}
