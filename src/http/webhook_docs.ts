import { type RouteConfig, z } from "@hono/zod-openapi";
import { VERSION } from "../version.ts";
import * as examples from "./examples.ts";
import { jsonBody } from "./openapi.ts";

/** The body an endpoint receives (`src/delivery/webhook_request.ts` builds it). */
export const WebhookEvent = z.object({
  id: z.string().openapi({ description: "The event id: the receiver's dedupe key" }),
  type: z.string(),
  source: z.string().nullable(),
  timestamp: z.string().openapi({ format: "date-time", description: "When the event was stored" }),
  data: z.record(z.string(), z.unknown()),
}).openapi("WebhookEvent");

const signature = z.string().openapi({
  description:
    'Space-separated `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, one per active secret (two while a rotated-out secret still signs). A `whsec_` secret keys the HMAC with its base64-decoded bytes, any other with its UTF-8 bytes',
  example: examples.webhookSignature,
});
const eventId = z.string().openapi({
  description: "The event id, the same on every retry",
  example: examples.newEvent.id,
});
const unixSeconds = z.string().regex(/^\d+$/).openapi({
  description: "Unix seconds of this attempt",
  example: examples.webhookTimestamp,
});

const retryAfter = {
  "Retry-After": {
    description: "Honoured, up to RETRY_MAX_DELAY_MS",
    schema: { type: "string" as const },
    example: "120",
  },
};

/** What Dispatch sends to a subscription's url, and what it makes of the answer. */
export const eventWebhook: RouteConfig = {
  method: "post",
  path: "event",
  operationId: "receiveEvent",
  summary: "An event, delivered to a subscription's url",
  description:
    "Signed with the Standard Webhooks scheme: verify with any Standard Webhooks library, e.g. `new Webhook(secret).verify(body, headers)`. Delivery is at least once: dedupe on `webhook-id`. Each attempt records the status and the first 4 KiB of the answer's body.",
  security: [],
  request: {
    headers: z.object({
      "webhook-id": eventId,
      "webhook-timestamp": unixSeconds,
      "webhook-signature": signature,
      "X-Dispatch-Event-ID": eventId,
      "X-Dispatch-Event-Type": z.string().openapi({ example: examples.newEvent.type }),
      "X-Dispatch-Timestamp": unixSeconds,
      "X-Dispatch-Signature": signature,
      "X-Dispatch-Attempt": z.string().regex(/^\d+$/).openapi({
        description: "1 for the first attempt",
        example: "1",
      }),
      "X-Dispatch-Subscription-ID": z.string().openapi({ example: examples.newSubscription.id }),
      "User-Agent": z.string().openapi({ example: `Dispatch/${VERSION}` }),
      traceparent: z.string().optional().openapi({
        description: "W3C trace context, when Dispatch runs with OTEL_DENO=true",
      }),
    }),
    body: jsonBody(WebhookEvent, {
      id: examples.newEvent.id,
      type: examples.newEvent.type,
      source: examples.newEvent.source,
      timestamp: examples.event.created_at,
      data: examples.newEvent.data,
    }),
  },
  responses: {
    "2XX": { description: "Delivered" },
    410: {
      description: "Gone: the delivery fails at once and the subscription is disabled",
    },
    429: { description: "Retried, after Retry-After when given", headers: retryAfter },
    503: { description: "Retried, after Retry-After when given", headers: retryAfter },
    default: {
      description:
        "Any other answer (3xx too: redirects are not followed), a timeout or a connection error: retried with backoff and jitter until max attempts",
    },
  },
};
