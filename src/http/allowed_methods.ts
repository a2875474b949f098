import type { RouterRoute } from "hono/types";

const order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/**
 * The methods an app serves at a path, from its routes (Hono's
 * `app.routes`, read when first needed, once every route is added); HEAD
 * comes with GET, as Hono serves it. Empty for a path it does not serve.
 * Listed in a fixed order, whatever the order the routes were added in.
 */
export function allowedMethods(routes: () => readonly RouterRoute[]): (path: string) => string[] {
  let patterns: { method: string; pattern: URLPattern }[] | null = null;
  return (path) => {
    patterns ??= routes().filter((r) => r.method !== "ALL").map((r) => ({
      method: r.method,
      pattern: new URLPattern({ pathname: r.path }),
    }));
    const methods = new Set(
      patterns.filter((p) => p.pattern.test({ pathname: path })).map((p) => p.method),
    );
    if (methods.has("GET")) methods.add("HEAD");
    return [...methods].sort((a, b) => order.indexOf(a) - order.indexOf(b));
  };
}
