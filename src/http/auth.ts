import { timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { ApiError } from "../errors.ts";
import { type ApiKeyTable, tokenDigest } from "../security/api_key_table.ts";
import { admin } from "./access.ts";
import { auditActor } from "./audit.ts";
import { sessionFromConsole } from "./console_principal.ts";

/**
 * Whether `given` (a SHA-256 digest) is one of `digests`, compared in
 * constant time: every digest is compared, whichever matches, and all have
 * one length, so neither a key nor its length leaks through timing.
 */
export function isOneOf(
  given: Uint8Array,
  digests: readonly Uint8Array[],
  options: { compare?: (a: Uint8Array, b: Uint8Array) => boolean } = {},
): boolean {
  const compare = options.compare ?? timingSafeEqual;
  let ok = false;
  for (const d of digests) ok = compare(d, given) || ok;
  return ok;
}

/**
 * Bearer API keys: those of DISPATCH_API_KEYS are admin keys; any other is
 * looked up by its SHA-256 among the managed keys. Puts the caller's
 * {@linkcode Principal} in the context, and who it is for the audit log. Without DISPATCH_API_KEYS
 * (`required: false`) a request without a key acts as admin, and one with
 * a key as that key: a revoked one is refused, never taken for admin.
 */
export function authenticate(
  options: { keys: readonly string[]; table: ApiKeyTable; required: boolean },
): MiddlewareHandler {
  const digests = options.keys.map(tokenDigest);
  return async (c, next) => {
    // A console session's own request, made in this process: the session was checked already.
    const session = sessionFromConsole(c.env);
    if (session !== undefined) {
      c.set("principal", session.principal);
      auditActor(c, session.actor);
      return await next();
    }
    const header = c.req.header("authorization");
    if (header === undefined) {
      if (options.required) {
        throw new ApiError(
          "unauthorized",
          'Missing API key: send "Authorization: Bearer <key>" with a key from DISPATCH_API_KEYS or POST /api-keys',
        );
      }
      c.set("principal", admin);
      auditActor(c, { type: "open" });
      return await next();
    }
    // Keys are printable ASCII (DISPATCH_API_KEYS is checked for it); HTTP spaces are space and tab.
    const match = /^Bearer[ \t]+([\x21-\x7e]+)[ \t]*$/i.exec(header);
    if (!match) {
      // The header is not quoted back: it may hold a credential meant for something else.
      throw new ApiError(
        "unauthorized",
        'Malformed Authorization header: send "Authorization: Bearer <key>" with a key from DISPATCH_API_KEYS or POST /api-keys',
      );
    }
    const given = tokenDigest(match[1]!);
    if (isOneOf(given, digests)) {
      c.set("principal", admin);
      auditActor(c, { type: "env_key" });
      return await next();
    }
    const key = await options.table.find(given);
    if (key === undefined) throw new ApiError("unauthorized", "Invalid API key");
    c.set("principal", { scope: key.scope, tenantId: key.tenant_id });
    auditActor(c, {
      type: "api_key",
      key_id: key.id,
      ...(key.tenant_id === null ? {} : { tenant_id: key.tenant_id }),
    });
    await next();
  };
}
