/**
 * The fields that shape what an endpoint receives: `headers`, `filter` and
 * `format`, as subscriptions take and show them, and `POST /filters/test`.
 *
 * @module
 */
import { z } from "@hono/zod-openapi";
import { formats } from "../delivery/webhook_body.ts";
import { isStorable, unstorableText } from "../storable.ts";
import { MASK } from "../views/custom_headers.ts";
import { MAX_FILTER_LENGTH } from "../views/filters.ts";
import "../zod_messages.ts";

export const MAX_HEADERS = 20;
export const MAX_HEADER_VALUE = 1024;

const token = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const reservedNames = new Set([
  "host",
  "content-type",
  "content-length",
  "transfer-encoding",
  "connection",
  "user-agent",
]);
const reservedPrefixes = ["webhook-", "x-dispatch-"];

/** Why `headers` cannot be stored, or null. Names are quoted; values never are (they may be secret). */
export function headersProblem(headers: Record<string, unknown>): string | null {
  const entries = Object.entries(headers);
  if (entries.length > MAX_HEADERS) return `must have at most ${MAX_HEADERS} headers`;
  const seen = new Map<string, string>();
  for (const [name, value] of entries) {
    const quoted = JSON.stringify(name);
    if (!token.test(name)) {
      return `${quoted} is not a header name: use letters, digits and !#$%&'*+-.^_\`|~`;
    }
    const lower = name.toLowerCase();
    if (reservedNames.has(lower) || reservedPrefixes.some((p) => lower.startsWith(p))) {
      return `${quoted} is a header Dispatch sets: it cannot be configured`;
    }
    const other = seen.get(lower);
    if (other !== undefined) {
      return `${JSON.stringify(other)} and ${quoted} are the same header (names ignore case)`;
    }
    seen.set(lower, name);
    if (typeof value !== "string") return `the value of ${quoted} must be a string`;
    if (value.length > MAX_HEADER_VALUE) {
      return `the value of ${quoted} must have at most ${MAX_HEADER_VALUE} characters`;
    }
    if (/[\r\n\0]/.test(value)) return `the value of ${quoted} must not contain CR, LF or NUL`;
    // A request header carries bytes: tab, printable ASCII and Latin-1.
    if (/[^\t\x20-\x7e\x80-\xff]/.test(value)) {
      return `the value of ${quoted} must use only printable ASCII or Latin-1 characters`;
    }
    if (value.startsWith("enc:")) {
      return `the value of ${quoted} must not start with "enc:", which marks sealed values`;
    }
  }
  return null;
}

const headersObject = z.custom<Record<string, string>>(
  (v) => typeof v === "object" && v !== null && !Array.isArray(v),
  "must be a JSON object of header names to values, or null",
).superRefine((value, ctx) => {
  const problem = headersProblem(value);
  if (problem !== null) ctx.addIssue({ code: "custom", message: problem });
});

/** `headers` in a request: null clears (as `{}`). */
export const headersInput = headersObject.nullable().openapi({
  type: ["object", "null"],
  additionalProperties: { type: "string", maxLength: MAX_HEADER_VALUE },
  maxProperties: MAX_HEADERS,
  description:
    `Sent with every attempt. At most ${MAX_HEADERS}; names are HTTP tokens, matched case-insensitively and stored lower-case; values up to ${MAX_HEADER_VALUE} characters without CR, LF or NUL. Not host, content-type, content-length, transfer-encoding, connection, user-agent, webhook-* or x-dispatch-*. Sensitive values (authorization, proxy-authorization, cookie, and names containing token, secret, key, password or auth) read back as "${MASK}"; sending "${MASK}" back keeps the stored value. A PATCH replaces the whole object; {} or null clears it`,
  example: { "x-tenant-region": "eu-west-1", "x-api-key": "k_live_123" },
});

export const filterInput = z.string().max(MAX_FILTER_LENGTH).refine(isStorable, unstorableText)
  .nullable().openapi({
    description:
      `A PostgreSQL SQL/JSON path predicate over {"id", "type", "source", "tenant_id", "data"} of each event; an event for which it is false or unknown gets no delivery. Null: every event of the subscribed types`,
    example: '$.data.amount >= 100 && $.data.currency == "EUR"',
  });

export const formatInput = z.enum(formats).openapi({
  description:
    '"standard": the event envelope; "cloudevents": a CloudEvents 1.0 event in structured mode (application/cloudevents+json)',
});

/** The three as a subscription shows them. */
export const shapingOutput = {
  headers: z.record(z.string(), z.string()).openapi({
    description: `Custom headers; sensitive values show as "${MASK}"`,
  }),
  filter: z.string().nullable(),
  format: z.enum(formats),
};

export const FilterTestResult = z.object({ matches: z.boolean() }).openapi("FilterTestResult");
