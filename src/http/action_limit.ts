import type { MiddlewareHandler } from "hono";
import { ApiError } from "../errors.ts";
import { tokenDigest } from "../security/api_key_table.ts";

/**
 * The routes that make deliveries on demand (OpenAPI paths), whatever the
 * key's scope: each costs the worker a send, so each key gets a rate of them.
 */
export const limitedActions = [
  "/subscriptions/{id}/test",
  "/subscriptions/{id}/recover",
  "/events/{id}/retry",
  "/deliveries/{id}/retry",
  "/deliveries/retry",
] as const;

/** Keys whose buckets are kept at most; beyond it the full ones are forgotten. */
const MAX_BUCKETS = 10_000;

/**
 * Answers 429 `rate_limited` with `Retry-After` when the caller's API key
 * has made more than `perMinute` of these requests in a burst, refilled
 * evenly over the minute: a token bucket per key, in this process (requests
 * without a key, on an open API, share one). 0 turns it off. Runs after
 * authentication, so only valid keys get a bucket.
 */
export function actionLimit(
  options: { perMinute: number; now?: () => number },
): MiddlewareHandler {
  const { perMinute, now = () => performance.now() } = options;
  const perMs = perMinute / 60_000;
  const buckets = new Map<string, { tokens: number; at: number }>();
  const refill = (b: { tokens: number; at: number }, t: number) => {
    b.tokens = Math.min(perMinute, b.tokens + (t - b.at) * perMs);
    b.at = t;
  };
  return async (c, next) => {
    if (perMinute === 0) return await next();
    const header = c.req.header("authorization") ?? "";
    const key = header === "" ? "" : btoa(String.fromCharCode(...tokenDigest(header)));
    const t = now();
    if (!buckets.has(key) && buckets.size >= MAX_BUCKETS) {
      for (const [k, b] of buckets) if ((refill(b, t), b.tokens >= perMinute)) buckets.delete(k);
    }
    const bucket = buckets.get(key) ?? { tokens: perMinute, at: t };
    buckets.set(key, bucket);
    refill(bucket, t);
    if (bucket.tokens < 1) {
      const seconds = Math.ceil((1 - bucket.tokens) / perMs / 1000);
      c.header("Retry-After", String(seconds));
      throw new ApiError(
        "rate_limited",
        `Too many requests of this kind for this API key (ACTION_RATE_LIMIT is ${perMinute} a minute): retry in ${seconds} s`,
      );
    }
    bucket.tokens -= 1;
    await next();
  };
}
