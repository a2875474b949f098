import type { Context } from "hono";
import { ApiError, type ErrorCode } from "../errors.ts";
import type { AuditActor } from "../engine/audit.ts";
import {
  type ConsoleEnv,
  consolePrincipal,
  type ConsoleSession,
} from "../http/console_principal.ts";
import type { SessionClaims } from "./session.ts";
import type { Principal } from "../http/access.ts";

/** The app's own fetch handler: the console changes subscriptions through the API's routes. */
export type ApiFetch = (request: Request, env: ConsoleEnv) => Response | Promise<Response>;

/**
 * Calls an API operation in this process as the session's principal, so a
 * console action is validated, checked (SSRF guard, tenancy) and recorded
 * exactly as the same API request. Throws the API's error as an ApiError.
 */
export async function callApi<T>(
  c: Context,
  api: ApiFetch,
  request: { method: string; path: string; body?: unknown },
): Promise<T> {
  const headers = new Headers({ "x-request-id": c.get("requestId") });
  if (request.body !== undefined) headers.set("content-type", "application/json");
  const res = await api(
    new Request(new URL(request.path, c.req.url), {
      method: request.method,
      headers,
      body: request.body === undefined ? null : JSON.stringify(request.body),
    }),
    { [consolePrincipal]: consoleSession(c.get("console")) },
  );
  const text = await res.text();
  const data = text === "" ? null : JSON.parse(text);
  if (!res.ok) {
    const error = data?.error as { code: ErrorCode; message: string; details?: [] } | undefined;
    throw new ApiError(
      error?.code ?? "internal",
      error?.message ?? `HTTP ${res.status}`,
      error?.details,
    );
  }
  return data as T;
}

/** The session as the API sees it: its principal, and its actor for the audit log. */
function consoleSession(
  s: { claims: SessionClaims; principal: Principal },
): ConsoleSession {
  const { claims } = s;
  const actor: AuditActor = {
    type: claims.actor === "portal" ? "portal" : "console",
    ...(claims.keyId === undefined ? {} : { key_id: claims.keyId }),
    ...(claims.tenantId === null ? {} : { tenant_id: claims.tenantId }),
  };
  return { principal: s.principal, actor };
}
