import { createHash, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { ApiError } from "../errors.ts";

const digest = (s: string) => createHash("sha256").update(s).digest();

/**
 * Bearer API keys. Keys are compared as SHA-256 digests in constant time, so
 * neither the key's content nor its length leaks through timing.
 */
export function apiKeyAuth(keys: readonly string[]): MiddlewareHandler {
  const digests = keys.map(digest);
  return async (c, next) => {
    const header = c.req.header("authorization");
    if (header === undefined) {
      throw new ApiError(
        "unauthorized",
        'Missing API key: send "Authorization: Bearer <key>" with a key from DISPATCH_API_KEYS',
      );
    }
    // Keys are printable ASCII (DISPATCH_API_KEYS is checked for it); HTTP spaces are space and tab.
    const match = /^Bearer[ \t]+([\x21-\x7e]+)[ \t]*$/i.exec(header);
    if (!match) {
      // The header is not quoted back: it may hold a credential meant for something else.
      throw new ApiError(
        "unauthorized",
        'Malformed Authorization header: send "Authorization: Bearer <key>" with a key from DISPATCH_API_KEYS',
      );
    }
    const given = digest(match[1]!);
    let ok = false;
    for (const d of digests) ok = timingSafeEqual(d, given) || ok;
    if (!ok) throw new ApiError("unauthorized", "Invalid API key");
    await next();
  };
}
