import assert from "node:assert/strict";
import { docsAssetsPath } from "../../src/http/docs_routes.ts";
import { testApp } from "../helpers/app.ts";

Deno.test("/docs allows only its own origin and loads every script and style from Dispatch", async () => {
  const t = await testApp();
  try {
    const res = await t.call("GET", "/docs");
    assert.equal(res.status, 200);
    assert.equal(
      res.headers.get("content-security-policy"),
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    );
    assert.equal(res.headers.get("cache-control"), "no-cache");
    const html = await res.text();
    const scripts = [...html.matchAll(/<script([^>]*)>([^<]*)<\/script>/g)];
    assert.equal(scripts.length, 2);
    for (const [, attributes, body] of scripts) {
      assert.match(attributes!, new RegExp(` src="${docsAssetsPath}/[\\w.-]+"`));
      assert.equal(body, "");
    }
    const styles = [...html.matchAll(/<link rel="stylesheet" href="([^"]+)">/g)].map((m) => m[1]);
    assert.deepEqual(styles, [`${docsAssetsPath}/swagger-ui.css`]);
    assert.doesNotMatch(html, /<style|https?:\/\//);
  } finally {
    await t.close();
  }
});

Deno.test("/docs assets are cached for a year under a path that changes with their content", async () => {
  const t = await testApp();
  try {
    assert.match(docsAssetsPath, /^\/docs\/assets\/[0-9a-f]{16}$/);
    for (
      const [name, type] of [
        ["swagger-ui-bundle.js", "text/javascript; charset=utf-8"],
        ["init.js", "text/javascript; charset=utf-8"],
        ["swagger-ui.css", "text/css; charset=utf-8"],
      ]
    ) {
      const res = await t.call("GET", `${docsAssetsPath}/${name}`);
      assert.equal(res.status, 200, name);
      assert.equal(res.headers.get("content-type"), type, name);
      assert.equal(res.headers.get("cache-control"), "public, max-age=31536000, immutable", name);
      assert.equal(res.headers.get("x-content-type-options"), "nosniff", name);
      assert.ok((await res.text()).length > 0, name);
    }
  } finally {
    await t.close();
  }
});

Deno.test("an unknown /docs asset answers 404", async () => {
  const t = await testApp();
  try {
    for (const path of [`${docsAssetsPath}/constructor`, "/docs/assets/0123456789abcdef/init.js"]) {
      const res = await t.call("GET", path);
      assert.equal(res.status, 404, path);
      assert.equal((await res.json()).error.code, "not_found", path);
    }
  } finally {
    await t.close();
  }
});
