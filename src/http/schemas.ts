import { z } from "@hono/zod-openapi";
import { isStorable, jsonProblem, MAX_JSON_DEPTH, unstorableText } from "../storable.ts";
import {
  circuitStates,
  deliveryStatuses,
  eventStatuses,
  heldByReasons,
  orderings,
} from "../engine/states.ts";
import { type ErrorCode, errorStatus } from "../errors.ts";
import "../zod_messages.ts";
import { filterInput, formatInput, headersInput, shapingOutput } from "./shaping_schemas.ts";

const idPattern = /^[A-Za-z0-9][A-Za-z0-9_.:-]*$/;
const idRules = "letters, digits and _ . : - (starting with a letter or digit)";

/** Free text of `min` to `max` characters that PostgreSQL stores as sent. */
export const text = (min: number, max: number) =>
  z.string().min(min).max(max).refine(isStorable, unstorableText);

/** Ids and event types share one alphabet. */
export const id = (example: string) =>
  z.string().min(1).max(255).regex(idPattern, `must use only ${idRules}`)
    .openapi({ example });

export const eventType = id("order.created");

/** A tenant: the customer whose subscriptions and events these are. */
export const tenantId = id("acme");

/** `*`, `prefix.*` (any depth below prefix) or an exact type. */
const eventTypePattern = z.string().min(1).max(255)
  .regex(
    /^(\*|[A-Za-z0-9][A-Za-z0-9_.:-]*\.\*|[A-Za-z0-9][A-Za-z0-9_.:-]*)$/,
    'must be "*", "prefix.*" or an exact event type',
  )
  .openapi({ example: "order.*" });

const eventTypes = z.array(eventTypePattern).min(1).max(100);

export const timestamp = z.string().openapi({ format: "date-time" });

// z.record would copy the object and drop a "__proto__" key; z.custom keeps the value as parsed.
export const jsonObject = z.custom<Record<string, unknown>>(
  (v) => typeof v === "object" && v !== null && !Array.isArray(v),
  "must be a JSON object",
).superRefine((value, ctx) => {
  const problem = jsonProblem(value);
  if (problem) ctx.addIssue({ code: "custom", message: problem.message, path: problem.path });
});

/** Dispatch's own events (`dispatch.subscription.disabled`, ...): producers cannot forge them. */
export const reservedTypePrefix = "dispatch.";

export const NewEvent = z.object({
  id: id("evt_123").optional().openapi({ description: "Idempotency key; generated when absent" }),
  type: eventType.refine(
    (t) => !t.startsWith(reservedTypePrefix),
    `must not start with "${reservedTypePrefix}", which is reserved for Dispatch's own events`,
  ),
  source: text(1, 255).optional().openapi({ example: "billing-service" }),
  tenant_id: tenantId.optional().openapi({
    description:
      "Fans out only to this tenant's subscriptions; without it, only to those without a tenant",
  }),
  data: jsonObject.openapi({
    type: "object",
    additionalProperties: {},
    description: `Any JSON object, nested at most ${MAX_JSON_DEPTH} deep`,
    example: { order_id: 42 },
  }),
  ordering_key: id("order-42").optional().openapi({
    description:
      'Events with one key reach a subscription with `"ordering": "fifo"` one at a time, in ingest order',
  }),
}).strict().openapi("NewEvent");

export const DeliveryCounts = z.object({
  total: z.number().int(),
  pending: z.number().int(),
  processing: z.number().int(),
  retrying: z.number().int(),
  delivered: z.number().int(),
  failed: z.number().int(),
}).openapi("DeliveryCounts");

export const Event = z.object({
  id: z.string(),
  type: z.string(),
  source: z.string().nullable(),
  tenant_id: z.string().nullable(),
  ordering_key: z.string().nullable(),
  data: z.record(z.string(), z.unknown()),
  created_at: timestamp,
  status: z.enum(eventStatuses),
  deliveries: DeliveryCounts,
}).openapi("Event");

export const Delivery = z.object({
  id: z.number().int(),
  event_id: z.string(),
  subscription_id: z.string(),
  status: z.enum(deliveryStatuses),
  attempts: z.number().int(),
  next_attempt_at: timestamp.nullable(),
  held_by: z.enum(heldByReasons).nullable().openapi({
    description:
      "While it waits: what holds it back besides its backoff (a limit, an open circuit, or the delivery before it in its fifo queue)",
  }),
  last_status_code: z.number().int().nullable(),
  last_error: z.string().nullable(),
  delivered_at: timestamp.nullable(),
  created_at: timestamp,
  updated_at: timestamp,
}).openapi("Delivery");

export const Attempt = z.object({
  id: z.number().int(),
  subscription_id: z.string(),
  attempt: z.number().int(),
  started_at: timestamp,
  duration_ms: z.number().int(),
  status_code: z.number().int().nullable(),
  error_class: z.string().nullable(),
  error: z.string().nullable(),
  response_body: z.string().nullable(),
  response_headers: z.record(z.string(), z.string()),
}).openapi("Attempt");

const url = z.string().max(2048).superRefine((value, ctx) => {
  // Checked first: such a value is not worth quoting back.
  // deno-lint-ignore no-control-regex -- control characters are what it looks for
  if (/[\0-\x1f\x7f]/.test(value) || !value.isWellFormed()) {
    ctx.addIssue({
      code: "custom",
      message: "must not contain control characters or unpaired UTF-16 surrogates",
    });
    return;
  }
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    ctx.addIssue({ code: "custom", message: `"${value}" is not a valid URL` });
    return;
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    ctx.addIssue({ code: "custom", message: `must be http or https, not "${u.protocol}"` });
  }
  if (u.username || u.password) {
    ctx.addIssue({ code: "custom", message: "must not contain credentials" });
  }
}).openapi({ example: "https://example.com/webhooks" });

/** Production refuses chosen secrets shorter than this: they can be guessed. */
export const minProductionSecretLength = 16;

/** A stored secret that starts so is taken for an encrypted one. */
const notLikeSealed = [
  (value: string) => !value.startsWith("enc:"),
  'must not start with "enc:", which marks stored encrypted secrets',
] as const;

const secret = text(1, 256).superRefine((value, ctx) => {
  if (!notLikeSealed[0](value)) ctx.addIssue({ code: "custom", message: notLikeSealed[1] });
  // Standard Webhooks libraries key a raw secret with each character's code, not its UTF-8
  // bytes: the two agree only for ASCII.
  if (!/^[\x20-\x7e]*$/.test(value)) {
    ctx.addIssue({ code: "custom", message: "must use only printable ASCII characters" });
    return;
  }
  if (!value.startsWith("whsec_")) return;
  const b64 = value.slice(6);
  let bytes = -1;
  try {
    if (/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) bytes = atob(b64).length;
  } catch { /* reported below */ }
  if (bytes < 24 || bytes > 64) {
    ctx.addIssue({ code: "custom", message: "a whsec_ secret must be base64 of 24 to 64 bytes" });
  }
}).openapi({
  description:
    `whsec_<base64> or any string of 1 to 256 printable ASCII characters (${minProductionSecretLength} or more with DISPATCH_ENV=production); leave it out to get a generated whsec_ secret`,
});

// zod drops a "__proto__" key from a record without a word: it is refused before.
const metadata = z.preprocess(
  (value, ctx) => {
    if (typeof value === "object" && value !== null && Object.hasOwn(value, "__proto__")) {
      ctx.addIssue({ code: "custom", message: 'must not have the key "__proto__"', input: value });
    }
    return value;
  },
  z.record(text(0, 64), text(0, 1024))
    .refine((m) => Object.keys(m).length <= 50, "at most 50 keys"),
);

const maxAttempts = z.number().int().min(1).max(100);
const rateLimit = z.number().int().min(1).max(10_000).nullable().openapi({
  description: "Deliveries per second, paced; null: no limit",
});
const maxInFlight = z.number().int().min(1).max(1000).nullable().openapi({
  description: "Attempts in flight at once, across every process; null: no limit",
});
const ordering = z.enum(orderings).openapi({
  description:
    "fifo: deliveries of events that share an ordering_key are sent one at a time, in ingest order (events without one form one queue); a change applies to deliveries fanned out from then on, and none lets every waiting one go",
});

/** A secret part of `auth`: accepted, stored sealed, never shown. */
const authSecret = (max: number) =>
  text(1, max).refine(...notLikeSealed).openapi({ writeOnly: true });
const clientAuth = z.enum(["basic", "post"]);

const endpointAuth = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("basic"),
    // RFC 7617: the colon separates it from the password.
    username: text(1, 256).refine((u) => !u.includes(":"), 'must not contain ":"'),
    password: authSecret(1024),
  }).strict(),
  z.object({
    type: z.literal("bearer"),
    // Sent as it is in a header.
    token: authSecret(4096).regex(/^[\x21-\x7e]+$/, "must use only printable ASCII, no spaces"),
  }).strict(),
  z.object({
    type: z.literal("oauth2_client_credentials"),
    token_url: url.openapi({ example: "https://auth.example.com/oauth/token" }),
    client_id: text(1, 1024),
    client_secret: authSecret(4096),
    scope: text(1, 1024).optional(),
    audience: text(1, 2048).optional(),
    client_auth: clientAuth.default("basic").openapi({
      description: "How the client authenticates to token_url: HTTP Basic, or in the form",
    }),
  }).strict(),
], {
  error: (issue) =>
    issue.code === "invalid_union"
      ? 'must be one of "basic", "bearer", "oauth2_client_credentials"'
      : undefined,
}).openapi({
  description:
    "How Dispatch authenticates to the endpoint (Authorization header); null: not at all. " +
    "password, token and client_secret are write-only, and sealed at rest",
});

export type EndpointAuthInput = z.output<typeof endpointAuth>;

// A PEM key of 16 KiB is RSA 8192 with room to spare; a chain of 64 KiB is a long one.
const tlsClientCertificate = z.object({
  cert: z.string().min(1).max(65_536).openapi({ description: "PEM chain, the client's first" }),
  key: z.string().min(1).max(16_384).openapi({
    description: "PEM private key of the first certificate, unencrypted; never shown again",
  }),
}).strict().nullable().openapi({
  description: "Presented to the endpoint when it asks (mutual TLS); null removes it",
});

// The request bodies below are documented inline, in their input form: a named component with a
// default reads as always present to client generators (openapi-typescript makes it required).
export const NewSubscription = z.object({
  id: id("sub_123").optional(),
  tenant_id: tenantId.optional().openapi({
    description:
      "Receives only this tenant's events; set here for good. A tenant key's own by default",
  }),
  url,
  event_types: eventTypes.default(["*"]),
  description: text(0, 1024).optional(),
  secret: secret.optional(),
  active: z.boolean().default(true),
  max_attempts: maxAttempts.optional(),
  rate_limit: rateLimit.optional(),
  max_in_flight: maxInFlight.optional(),
  ordering: ordering.default("none"),
  metadata: metadata.default({}),
  auth: endpointAuth.nullable().optional(),
  tls_client_certificate: tlsClientCertificate.optional(),
  headers: headersInput.optional(),
  filter: filterInput.optional(),
  format: formatInput.default("standard"),
}).strict();

export const SubscriptionPatch = z.object({
  tenant_id: tenantId.nullable().optional().openapi({
    description: "Cannot change: only the subscription's own tenant (or null for none) is accepted",
  }),
  url: url.optional(),
  event_types: eventTypes.optional(),
  description: text(0, 1024).nullable().optional(),
  active: z.boolean().optional(),
  max_attempts: maxAttempts.nullable().optional(),
  rate_limit: rateLimit.optional(),
  max_in_flight: maxInFlight.optional(),
  ordering: ordering.optional(),
  metadata: metadata.optional(),
  auth: endpointAuth.nullable().optional().openapi({ description: "Replaces it whole" }),
  tls_client_certificate: tlsClientCertificate.optional(),
  headers: headersInput.optional(),
  filter: filterInput.optional(),
  format: formatInput.optional(),
}).strict();

export const Subscription = z.object({
  id: z.string(),
  tenant_id: z.string().nullable(),
  url: z.string(),
  event_types: z.array(z.string()),
  description: z.string().nullable(),
  active: z.boolean(),
  disabled_reason: z.string().nullable(),
  max_attempts: z.number().int().nullable(),
  rate_limit: z.number().int().nullable(),
  max_in_flight: z.number().int().nullable(),
  ordering: z.enum(orderings),
  circuit: z.object({
    state: z.enum(circuitStates),
    consecutive_failures: z.number().int(),
    opened_at: timestamp.nullable(),
    next_probe_at: timestamp.nullable(),
  }).openapi("Circuit"),
  metadata: z.record(z.string(), z.string()),
  auth: z.discriminatedUnion("type", [
    z.object({ type: z.literal("basic"), username: z.string() }),
    z.object({ type: z.literal("bearer") }),
    z.object({
      type: z.literal("oauth2_client_credentials"),
      token_url: z.string(),
      client_id: z.string(),
      scope: z.string().nullable(),
      audience: z.string().nullable(),
      client_auth: clientAuth,
    }),
  ]).nullable().openapi("EndpointAuth", { description: "Without its secret part" }),
  tls_client_certificate: z.object({
    subject: z.string(),
    issuer: z.string(),
    not_after: timestamp,
    fingerprint_sha256: z.string(),
  }).nullable().openapi("ClientCertificate", {
    description: "The certificate deliveries present, without its key; null: none",
  }),
  ...shapingOutput,
  created_at: timestamp,
  updated_at: timestamp,
}).openapi("Subscription");

export const SubscriptionWithSecret = Subscription.extend({
  secret: z.string().openapi({ description: "Shown only in this response" }),
}).openapi("SubscriptionWithSecret");

export const ErrorBody = z.object({
  error: z.object({
    code: z.enum(Object.keys(errorStatus) as [ErrorCode, ...ErrorCode[]]),
    message: z.string(),
    details: z.unknown().optional().openapi({
      description: "For validation errors, every bad field: `[{field, message}]`",
    }),
  }),
}).openapi("Error");

export const IdParam = z.object({ id: text(1, 255) });

/** A whole number in a query string, in decimal digits only: `0x10`, `1e1` or ` 16` is refused. */
const queryInt = (min: number, max: number) =>
  z.string().regex(/^\d{1,9}$/, "must be a whole number in decimal digits")
    .transform(Number).pipe(z.number().int().min(min).max(max))
    .openapi({ type: "integer", minimum: min, maximum: max });

export const Page = z.object({
  limit: queryInt(1, 1000).default(50).openapi({ default: 50 }),
  cursor: z.string().max(64).optional().openapi({
    description: "The previous page's `next_cursor`",
  }),
});

const tenantQuery = tenantId.optional().openapi({ description: "Only this tenant's" });

export const SubscriptionFilter = Page.extend({ tenant_id: tenantQuery });

export const EventFilter = Page.extend({
  tenant_id: tenantQuery,
  type: eventType.optional(),
  status: z.enum(eventStatuses).optional(),
});

export function paged<T extends z.ZodType>(item: T, name: string) {
  return z.object({ data: z.array(item), next_cursor: z.string().nullable() }).openapi(name);
}

// The instants PostgreSQL takes as the driver writes them: year 0 and years past 9999 are refused.
const earliest = Date.parse("0001-01-01T00:00:00Z");
const latest = Date.parse("9999-12-31T23:59:59.999Z");

/** A time a request gives: ISO 8601, with its offset, between the years 1 and 9999 in UTC. */
export const isoTime = z.iso.datetime({
  offset: true,
  error: 'must be an ISO 8601 date and time, e.g. "2027-01-01T00:00:00Z"',
}).refine((t) => {
  const ms = Date.parse(t);
  return Number.isNaN(ms) || (ms >= earliest && ms <= latest);
}, "must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z");

/** A time in a query, as a Date. */
export const queryTime = isoTime.transform((t) => new Date(t))
  .openapi({ format: "date-time", example: "2026-11-26T10:00:00Z" });

export const DeliveryFilter = Page.extend({
  status: z.enum(deliveryStatuses).optional().openapi({ example: "failed" }),
  subscription_id: id("sub_demo").optional(),
  tenant_id: tenantId.optional(),
  since: queryTime.optional(),
  until: queryTime.optional(),
});

export const Recovery = z.object({
  since: isoTime.openapi({ example: "2026-11-26T00:00:00Z" }),
  until: isoTime.optional(),
}).strict();

/** The windows a subscription's stats are read over. */
export const statsWindows = { "1h": 3_600_000, "24h": 86_400_000, "7d": 604_800_000 } as const;
type StatsWindow = keyof typeof statsWindows;
const statsWindow = z.enum(Object.keys(statsWindows) as [StatsWindow, ...StatsWindow[]]);

export const StatsQuery = z.object({ window: statsWindow.default("24h") });

export const SubscriptionStats = z.object({
  window: statsWindow,
  attempts: z.record(z.string(), z.number().int()).openapi({
    description:
      "Attempts by result class (`success` or the error class), as `dispatch_delivery_attempts_total` counts them",
  }),
  success_rate: z.number().min(0).max(1).nullable(),
  latency_ms: z.object({ p50: z.number().nullable(), p95: z.number().nullable() }),
  last_success_at: timestamp.nullable(),
  last_failure_at: timestamp.nullable(),
}).openapi("SubscriptionStats");
