import type { MiddlewareHandler } from "hono";
import { requestId } from "hono/request-id";
import { type Logger, withLogContext } from "../observability/log.ts";

declare module "hono" {
  interface ContextVariableMap {
    /** The request's id: the caller's `X-Request-Id` when sane, else a new UUID. */
    requestId: string;
  }
}

/** Ids a caller may choose: short, printable, nothing that could forge a log line or header. */
const saneId = /^[\w.:@\/+=-]{1,128}$/;

/**
 * Gives every request an id and returns it as `X-Request-Id`. hono/request-id
 * keeps a caller's id made of `[\w=-]`; the generator, which it calls for any
 * other, keeps the rest of what is sane.
 */
export const requestIds: MiddlewareHandler = requestId({
  limitLength: 128,
  generator: (c) => {
    const given = c.req.header("x-request-id");
    return given !== undefined && saneId.test(given) ? given : crypto.randomUUID();
  },
});

/** Probes and scrapes come every few seconds; at info they would drown the rest. */
const quietPaths = new Set(["/healthz", "/readyz", "/metrics"]);

/**
 * Puts the request id (from {@linkcode requestIds}) on every line logged
 * while the request is handled, and logs one line when it is answered.
 */
export function requestLog(log: Logger): MiddlewareHandler {
  return (c, next) =>
    withLogContext({ request_id: c.get("requestId") }, async () => {
      const start = performance.now();
      await next();
      const level = quietPaths.has(c.req.path) && c.res.status < 400 ? "debug" : "info";
      log[level]("Request", {
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        duration_ms: Math.round((performance.now() - start) * 10) / 10,
      });
    });
}
