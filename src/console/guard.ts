/**
 * What every console request passes: its security headers, its session
 * (checked on each request: a revoked key or a removed DISPATCH_API_KEYS key
 * ends it) and, for a POST, the CSRF token, the `Origin` and a read-only
 * session's refusal.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { ApiError } from "../errors.ts";
import type { Principal } from "../http/access.ts";
import type { ApiKeyTable } from "../security/api_key_table.ts";
import { newSid, type SessionClaims, type SessionSigner } from "./session.ts";

export const cookieName = "dispatch_console";

/** A signed-in session lasts this long; a portal link's session until the link expires. */
export const SESSION_TTL_MS = 8 * 3_600_000;

export interface ConsoleSession {
  claims: SessionClaims;
  principal: Principal;
  /** The token every form of this session carries. */
  csrf: string;
  /** The API is open (no DISPATCH_API_KEYS): the pages say so. */
  open: boolean;
}

declare module "hono" {
  interface ContextVariableMap {
    console: ConsoleSession;
  }
}

export interface GuardOptions {
  sessions: SessionSigner;
  keys: ApiKeyTable;
  /** DISPATCH_API_KEYS: none leaves the console open, as the API. */
  envKeys: readonly string[];
  frameAncestors: readonly string[];
}

/**
 * CSP, no sniffing, never cached; the referrer only to the console itself: a portal link's
 * token must not leak, and with `no-referrer` browsers would send `Origin: null` with forms.
 */
export function securityHeaders(frameAncestors: readonly string[]): MiddlewareHandler {
  const csp = [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    `frame-ancestors ${frameAncestors.length > 0 ? frameAncestors.join(" ") : "'none'"}`,
  ].join("; ");
  return async (c, next) => {
    await next();
    c.header("Content-Security-Policy", csp);
    c.header("X-Content-Type-Options", "nosniff");
    c.header("Referrer-Policy", "same-origin");
    if (!c.res.headers.has("Cache-Control")) c.header("Cache-Control", "no-store");
  };
}

/** Sets the session cookie: HttpOnly, SameSite=Strict, Secure over https, for the console only. */
export async function startSession(
  c: Context,
  sessions: SessionSigner,
  given: Omit<SessionClaims, "use" | "sid">,
): Promise<SessionClaims> {
  const claims: SessionClaims = { ...given, use: "session", sid: newSid() };
  const token = await sessions.sign(claims);
  setCookie(c, cookieName, token, {
    path: "/console",
    httpOnly: true,
    sameSite: "Strict",
    secure: new URL(c.req.url).protocol === "https:",
    expires: new Date(claims.exp),
  });
  return claims;
}

export function endSession(c: Context): void {
  deleteCookie(c, cookieName, { path: "/console" });
}

/** Whether the key the session signed in with still opens the API. */
async function stillValid(claims: SessionClaims, options: GuardOptions): Promise<boolean> {
  const open = options.envKeys.length === 0;
  switch (claims.actor) {
    case "open":
      return open;
    case "portal":
      return true;
    case "env_key": {
      for (const key of options.envKeys) {
        if (await options.sessions.keyMark(key) === claims.keyMark) return true;
      }
      return false;
    }
    case "api_key": {
      const key = await options.keys.findId(claims.keyId ?? "");
      return key !== undefined && key.scope !== "publish" &&
        key.tenant_id === claims.tenantId;
    }
  }
}

/**
 * Puts the request's {@linkcode ConsoleSession} in the context; without one,
 * an open API starts one, otherwise a page sends to the sign-in form.
 */
export function requireSession(options: GuardOptions): MiddlewareHandler {
  const open = options.envKeys.length === 0;
  return async (c, next) => {
    let claims = await options.sessions.verify(getCookie(c, cookieName), "session");
    if (claims !== null && !(await stillValid(claims, options))) claims = null;
    if (claims === null && open) {
      claims = await startSession(c, options.sessions, {
        actor: "open",
        tenantId: null,
        readOnly: false,
        exp: Date.now() + SESSION_TTL_MS,
      });
    }
    if (claims === null) {
      endSession(c);
      if (c.req.method === "GET" || c.req.method === "HEAD") {
        return c.redirect("/console/sign-in", 303);
      }
      throw new ApiError("unauthorized", "Sign in to the console first: the session has ended");
    }
    const principal: Principal = claims.tenantId === null
      ? { scope: "admin", tenantId: null }
      : { scope: "tenant", tenantId: claims.tenantId };
    c.set("console", {
      claims,
      principal,
      csrf: await options.sessions.csrfToken(claims.sid),
      open,
    });
    await next();
  };
}

/**
 * A POST must come from the console's own pages: the same `Origin` (browsers
 * send it with every POST), the session's CSRF token in the form, and a
 * session that may change things.
 */
export function checkPost(sessions: SessionSigner): MiddlewareHandler {
  return async (c, next) => {
    if (c.req.method !== "POST") return await next();
    assertSameOrigin(c);
    const { claims } = c.get("console");
    const form = await c.req.parseBody({ all: true });
    const token = form["_csrf"];
    if (typeof token !== "string" || !(await sessions.isCsrfToken(claims.sid, token))) {
      throw new ApiError(
        "forbidden",
        "Missing or wrong CSRF token: reload the page and submit its form again",
      );
    }
    if (claims.readOnly) {
      throw new ApiError("forbidden", "This portal link is read-only: it cannot change anything");
    }
    await next();
  };
}

/**
 * Refuses a request whose `Origin` is another site's (a cross-site form).
 * Hosts are compared, not schemes: behind a proxy that ends TLS the page is
 * https and the request this process sees is http.
 */
export function assertSameOrigin(c: Context): void {
  const origin = c.req.header("origin");
  if (origin !== undefined && hostOf(origin) !== new URL(c.req.url).host) {
    throw new ApiError("forbidden", `Cross-origin request refused (Origin "${origin}")`);
  }
}

function hostOf(origin: string): string | null {
  try {
    return new URL(origin).host;
  } catch {
    return null;
  }
}
