import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { isConnectionError, isTimeoutError } from "../db/errors.ts";
import { QueueClosedError, QueueFullError } from "../db/group_commit.ts";
import { ApiError, type ErrorCode, type FieldIssue } from "../errors.ts";
import type { DatabaseOutage } from "../db/outage.ts";
import type { Logger } from "../observability/log.ts";

/**
 * Every error becomes `{"error":{code,message,details}}`; this is the only place that decides how.
 * A request refused because the database cannot be reached is the outage's to report (one line
 * when it starts, one when it ends); any other failure of ours is logged as an error.
 */
export function errorResponse(
  err: unknown,
  c: Context,
  deps: { log: Logger; outage: DatabaseOutage },
): Response {
  const api = toApiError(err, c);
  if (api.code === "unavailable") c.header("Retry-After", "1");
  if (api.code === "unauthorized") c.header("WWW-Authenticate", 'Bearer realm="dispatch"');
  if (isUnreachable(err)) {
    deps.outage.refused(err, { method: c.req.method, path: c.req.path });
  } else if (api.code === "internal" || api.code === "unavailable") {
    deps.log.error("Request failed", {
      method: c.req.method,
      path: c.req.path,
      request_id: c.get("requestId"),
      error: err,
    });
  }
  return c.json(errorBody(api), api.status);
}

/** The JSON body of an error answer (also the OpenAPI document's examples). */
export function errorBody(api: ApiError) {
  const error: { code: ErrorCode; message: string; details?: unknown } = {
    code: api.code,
    message: api.message,
  };
  if (api.details !== undefined) error.details = api.details;
  return { error };
}

function toApiError(err: unknown, c: Context): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof HTTPException) {
    if (err.status === 413) return tooLarge();
    if (err.status === 400) {
      return new ApiError("bad_request", "Malformed JSON body: send a valid JSON document");
    }
    if (err.status === 415) return unsupportedType(c.req.header("content-type"));
    if (err.status === 503) return new ApiError("unavailable", err.message);
  }
  // postgres data exceptions (class 22, e.g. "\u0000" in a string) are the client's input.
  const pg = err as { code?: unknown; message?: unknown };
  if (typeof pg.code === "string" && pg.code.startsWith("22")) {
    return new ApiError("validation_failed", `Invalid value: ${String(pg.message)}`);
  }
  if (isUnreachable(err) || isTimeoutError(err) || err instanceof QueueClosedError) {
    return new ApiError("unavailable", "Database unavailable: retry shortly");
  }
  if (err instanceof QueueFullError) {
    return new ApiError("unavailable", "Too many events are waiting to be stored: retry shortly");
  }
  return new ApiError("internal", "Internal error: the server logged the cause");
}

/** The connection was lost or refused, or the request's deadline passed waiting for the database. */
function isUnreachable(err: unknown): boolean {
  return isConnectionError(err) || (err instanceof HTTPException && err.status === 503);
}

export function tooLarge(limit?: number): ApiError {
  const max = limit === undefined ? "the limit" : `${limit} bytes`;
  return new ApiError(
    "payload_too_large",
    `Request body is larger than ${max} (MAX_PAYLOAD_BYTES)`,
  );
}

interface Issue {
  path: readonly PropertyKey[];
  message: string;
  code?: string;
  keys?: readonly string[];
  issues?: readonly { message: string }[];
}

/** zod issues → one message naming the first bad field, all fields in details. */
export function validationError(issues: readonly Issue[], target: string): ApiError {
  const details: FieldIssue[] = issues.flatMap((i) =>
    // An unknown key is itself the bad field.
    i.code === "unrecognized_keys" && i.keys
      ? i.keys.map((k) => ({ field: fieldName([...i.path, k], target), message: "unknown field" }))
      // A bad key of a record names the record: the key itself may be unprintable.
      : i.code === "invalid_key"
      ? [{
        field: fieldName(i.path.slice(0, -1), target),
        message: `has a key that ${i.issues?.[0]?.message ?? "is invalid"}`,
      }]
      : [{ field: fieldName(i.path, target), message: i.message }]
  );
  const first = details[0] ?? { field: target, message: "invalid" };
  const more = details.length > 1 ? ` (and ${details.length - 1} more)` : "";
  return new ApiError(
    "validation_failed",
    `Invalid field "${first.field}": ${first.message}${more}`,
    details,
  );
}

function fieldName(path: readonly PropertyKey[], target: string): string {
  if (path.length === 0) return target === "json" ? "body" : target;
  return path.map((p, i) => typeof p === "number" ? `[${p}]` : `${i ? "." : ""}${String(p)}`)
    .join("");
}

export function unsupportedType(type: string | undefined): ApiError {
  return new ApiError(
    "unsupported_media_type",
    `Unsupported Content-Type "${type ?? ""}": send the body as application/json`,
  );
}
