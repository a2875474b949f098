/**
 * What keeps an open API (`DISPATCH_API_KEYS` unset) from being driven by
 * web pages. A browser sends any page's requests to localhost, and DNS
 * rebinding points a page's own name at it; neither can pass both checks:
 *
 * - the request must be addressed to this machine by a loopback name
 *   (`localhost`, `127.0.0.1`, `[::1]`) or the listening address, any port:
 *   a rebound name is refused before it can read an answer;
 * - a request that can change state (any method but GET, HEAD and OPTIONS)
 *   must not come from another origin: browsers mark every such request
 *   with `Origin` (and `Sec-Fetch-Site`), and curl or a program sends
 *   neither. Together with JSON-only bodies (see `app.ts`) no cross-site
 *   form or simple request changes anything.
 *
 * The probes answer whatever the name: orchestrators call them by address.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { ApiError } from "../errors.ts";

const loopbackNames = ["localhost", "127.0.0.1", "[::1]"];
const safeMethods = new Set(["GET", "HEAD", "OPTIONS"]);
const probes = new Set(["/healthz", "/readyz"]);
// What a browser sends for a request of the page's own origin, or one the user typed.
const ownSites = new Set(["same-origin", "none"]);

/** The middleware, for a listener on `listening` (an address; 0.0.0.0 and :: name no host). */
export function localOnly(listening: string): MiddlewareHandler {
  const names = new Set(loopbackNames);
  if (listening !== "0.0.0.0" && listening !== "::") {
    names.add(listening.includes(":") ? `[${listening}]` : listening);
  }
  const served = [...names].join(", ");
  return async (c, next) => {
    const url = new URL(c.req.url);
    if (!names.has(url.hostname) && !probes.has(url.pathname)) {
      throw new ApiError(
        "forbidden",
        `Host "${url.host}" is not served while the API is open: call it as ${served}, or set DISPATCH_API_KEYS`,
      );
    }
    if (!safeMethods.has(c.req.method)) {
      const origin = c.req.header("origin");
      const site = c.req.header("sec-fetch-site");
      if ((origin !== undefined && origin !== url.origin) || (site && !ownSites.has(site))) {
        throw new ApiError(
          "forbidden",
          `Cross-origin ${c.req.method} refused while the API is open (Origin "${
            origin ?? ""
          }", Sec-Fetch-Site "${site ?? ""}"): set DISPATCH_API_KEYS to call it from a web page`,
        );
      }
    }
    await next();
  };
}
