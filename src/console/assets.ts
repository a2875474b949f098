import { createHash } from "node:crypto";
import { Hono } from "hono";
import css from "./assets/console.css" with { type: "text" };
import js from "./assets/console.js" with { type: "text" };

// Imported, not read from disk: the compiled binary carries them and the console works offline.
const files = new Map<string, { body: string; type: string }>([
  ["console.css", { body: css, type: "text/css; charset=utf-8" }],
  ["console.js", { body: js, type: "text/javascript; charset=utf-8" }],
]);

/** Changes whenever an asset does, so assets can be cached for good. */
const version = createHash("sha256").update(css).update(js).digest("hex").slice(0, 16);

export const assetsPath = `/console/assets/${version}`;

export function consoleAssets() {
  const app = new Hono();
  app.get(`/assets/${version}/:name`, (c, next) => {
    const file = files.get(c.req.param("name"));
    if (!file) return next();
    return c.body(file.body, 200, {
      "Content-Type": file.type,
      "Cache-Control": "public, max-age=31536000, immutable",
    });
  });
  return app;
}
