/** Machine-readable error codes of the API, each with its HTTP status. */
export const errorStatus = {
  bad_request: 400,
  validation_failed: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  unavailable: 503,
  internal: 500,
} as const;

export type ErrorCode = keyof typeof errorStatus;

export interface FieldIssue {
  field: string;
  message: string;
}

/** A failure the client can act on; mapped to `{"error":{code,message,details}}` in one place. */
export class ApiError extends Error {
  override name = "ApiError";
  readonly code: ErrorCode;
  readonly details: FieldIssue[] | Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    details?: FieldIssue[] | Record<string, unknown>,
  ) {
    super(message);
    this.code = code;
    this.details = details;
  }

  get status(): (typeof errorStatus)[ErrorCode] {
    return errorStatus[this.code];
  }
}

const labels = {
  event: "Event",
  subscription: "Subscription",
  delivery: "Delivery",
  tenant: "Tenant",
  apiKey: "API key",
  eventType: "Event type",
};

/** The one answer for an id that does not exist and for another tenant's: ids cannot be probed. */
export function notFound(kind: keyof typeof labels, id: string | number): ApiError {
  return new ApiError("not_found", `${labels[kind]} "${id}" does not exist`);
}

/** A retry, recovery or test that the subscription's state refuses. */
export function subscriptionInactive(id: string): ApiError {
  return new ApiError(
    "conflict",
    `Subscription "${id}" is disabled: enable it first with PATCH {"active": true}`,
  );
}

export function eventConflict(id: string): ApiError {
  return new ApiError(
    "conflict",
    `Event "${id}" already exists with different content: use a new id`,
  );
}

export function subscriptionConflict(id: string): ApiError {
  return new ApiError("conflict", `Subscription "${id}" already exists: use a new id`);
}

export function eventTypeConflict(name: string): ApiError {
  return new ApiError("conflict", `Event type "${name}" already exists: change it with PATCH`);
}
