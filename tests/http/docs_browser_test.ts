import assert from "node:assert/strict";
import { chromium, withBrowser } from "../helpers/browser.ts";
import { testApp } from "../helpers/app.ts";

const summaries = [
  "Ingest an event and fan it out to every matching subscription",
  "List events, newest first",
  "Create a subscription; its secret is returned only here",
  "Readiness: the database is reachable and migrated",
];

Deno.test({
  name: chromium
    ? "/docs shows the operations in a browser and sends no request outside Dispatch's origin"
    : "/docs in a browser: SKIPPED, no chromium on PATH (apt-get install -y chromium)",
  ignore: chromium === null,
  async fn() {
    const t = await testApp();
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, t.fetch);
    const origin = `http://127.0.0.1:${server.addr.port}`;
    try {
      await withBrowser(async (browser) => {
        const page = await browser.newPage();
        const requests: string[] = [];
        const problems: string[] = [];
        page.on("request", (r) => requests.push(r.url()));
        page.on("pageerror", (e) => problems.push(`page error: ${e}`));
        page.on("console", (m) => {
          if (m.text().startsWith("CSP:") || m.type() === "error") problems.push(m.text());
        });
        // A string: this runs in the page, where Deno's types do not apply.
        await page.evaluateOnNewDocument(`document.addEventListener("securitypolicyviolation",
          (e) => console.log("CSP: " + e.violatedDirective + " blocked " + e.blockedURI))`);

        const res = await page.goto(`${origin}/docs`, { waitUntil: "networkidle0" });
        assert.equal(res?.status(), 200);
        await page.waitForSelector(".opblock-summary-description");
        const visible = await page.$$eval(
          ".opblock-summary-description",
          (els) =>
            els.filter((e) => e.getBoundingClientRect().height > 0).map((e) => e.textContent),
        );
        for (const summary of summaries) assert.ok(visible.includes(summary), summary);

        assert.ok(requests.includes(`${origin}/openapi.json`), requests.join("\n"));
        // data: URLs are the stylesheet's inline icons: no request leaves the page for them.
        const elsewhere = requests.filter((u) =>
          !u.startsWith(`${origin}/`) && !u.startsWith("data:")
        );
        assert.deepEqual(elsewhere, []);
        assert.deepEqual(problems, []);
      });
    } finally {
      await server.shutdown();
      await t.close();
    }
  },
});
