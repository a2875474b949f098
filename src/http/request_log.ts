import type { MiddlewareHandler } from "hono";
import type { Logger } from "../observability/log.ts";

declare module "hono" {
  interface ContextVariableMap {
    /** The request's id: the caller's `X-Request-Id` when sane, else a new UUID. */
    requestId: string;
  }
}

/** Ids a caller may choose: short, printable, nothing that could forge a log line or header. */
const saneId = /^[\w.:@\/+=-]{1,128}$/;

/** Probes and scrapes come every few seconds; at info they would drown the rest. */
const quietPaths = new Set(["/healthz", "/readyz", "/metrics"]);

/**
 * Gives every request an id, returns it as `X-Request-Id`, and logs one line
 * per request when it is answered.
 */
export function requestLog(log: Logger): MiddlewareHandler {
  return async (c, next) => {
    const start = performance.now();
    const given = c.req.header("x-request-id");
    const id = given !== undefined && saneId.test(given) ? given : crypto.randomUUID();
    c.set("requestId", id);
    c.header("X-Request-Id", id);
    await next();
    const level = quietPaths.has(c.req.path) && c.res.status < 400 ? "debug" : "info";
    log[level]("Request", {
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      duration_ms: Math.round((performance.now() - start) * 10) / 10,
      request_id: id,
    });
  };
}
