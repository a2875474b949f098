import { createHash } from "node:crypto";
import { Hono } from "hono";
import bundle from "swagger-ui-dist/swagger-ui-bundle.js" with { type: "text" };
import swaggerCss from "swagger-ui-dist/swagger-ui.css" with { type: "text" };
import init from "./docs_init.js" with { type: "text" };

// Imported, not read from disk: the compiled binary carries them and /docs works offline.
const files = new Map<string, { body: string; type: string }>([
  ["swagger-ui-bundle.js", { body: bundle, type: "text/javascript; charset=utf-8" }],
  // The source map it names is not shipped.
  ["swagger-ui.css", {
    body: swaggerCss.replace(/\/\*# sourceMappingURL=[^*]*\*\/\s*$/, ""),
    type: "text/css; charset=utf-8",
  }],
  ["init.js", { body: init, type: "text/javascript; charset=utf-8" }],
]);

/** Changes whenever an asset does, so assets can be cached for good. */
const version = (() => {
  const hash = createHash("sha256");
  for (const [name, { body }] of files) hash.update(name).update(body);
  return hash.digest("hex").slice(0, 16);
})();

export const docsAssetsPath = `/docs/assets/${version}`;

const page = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Dispatch API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${docsAssetsPath}/swagger-ui.css"></head>
<body><div id="docs"></div>
<script src="${docsAssetsPath}/swagger-ui-bundle.js"></script>
<script src="${docsAssetsPath}/init.js"></script></body></html>`;

/**
 * Everything from this origin: no inline script or style, no third party.
 * `data:` images are the stylesheet's own icons.
 */
const csp = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** The API reference (Swagger UI, from npm) reading `/openapi.json`; never behind authentication. */
export function docsRoutes() {
  const app = new Hono();
  app.get("/docs", (c) => {
    c.header("Content-Security-Policy", csp);
    c.header("Cache-Control", "no-cache");
    c.header("X-Content-Type-Options", "nosniff");
    c.header("Referrer-Policy", "no-referrer");
    return c.html(page);
  });
  app.get(`${docsAssetsPath}/:name`, (c, next) => {
    const file = files.get(c.req.param("name"));
    if (!file) return next();
    return c.body(file.body, 200, {
      "Content-Type": file.type,
      "Cache-Control": "public, max-age=31536000, immutable",
      "X-Content-Type-Options": "nosniff",
    });
  });
  return app;
}
