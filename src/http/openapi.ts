import type { z } from "@hono/zod-openapi";
import { ErrorBody } from "./schemas.ts";

export function jsonBody<T extends z.ZodType>(schema: T) {
  return { content: { "application/json": { schema } }, required: true };
}

export function jsonResponse<T extends z.ZodType>(schema: T, description: string) {
  return { content: { "application/json": { schema } }, description };
}

/** Error answers every route may give, documented once. */
export const errorResponses = {
  400: jsonResponse(ErrorBody, "Invalid request; the message names the field"),
  401: jsonResponse(ErrorBody, "Missing or wrong API key"),
  404: jsonResponse(ErrorBody, "Not found"),
  409: jsonResponse(ErrorBody, "Id reused with different content"),
  413: jsonResponse(ErrorBody, "Body larger than MAX_PAYLOAD_BYTES"),
  415: jsonResponse(ErrorBody, "Body is not application/json"),
};
