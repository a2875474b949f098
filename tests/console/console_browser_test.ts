/**
 * The console in a real browser (headless Chromium driven by puppeteer-core)
 * against a real app on a socket, a real worker and real receivers. With
 * UPDATE_SCREENSHOTS=1 it also writes docs/screenshots/*.png at 1280 px and
 * 390 px.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Page } from "puppeteer-core";
import { chromium, withBrowser } from "../helpers/browser.ts";
import { testApp } from "../helpers/app.ts";
import { bearer } from "../helpers/http.ts";
import { startReceiver } from "../helpers/receiver.ts";
import { eventually } from "../helpers/service.ts";
import { worker } from "../helpers/worker.ts";

const adminKey = "browser-admin-key-0123456789abcdef";
const xss = `<script>alert("xss")</script><img src=x onerror=alert(1)>`;
const screenshots = Deno.env.get("UPDATE_SCREENSHOTS") === "1";

async function shoot(page: Page, name: string): Promise<void> {
  if (!screenshots) return;
  for (const width of [1280, 390]) {
    await page.setViewport({ width, height: width === 1280 ? 800 : 844 });
    await page.screenshot({ path: `docs/screenshots/${name}-${width}.png`, fullPage: true });
  }
  await page.setViewport({ width: 1280, height: 800 });
}

const text = (page: Page) => page.$eval("main", (m) => m.textContent ?? "");

Deno.test({
  name: chromium
    ? "the console in a browser: sign in, find the failed event, retry it and watch it deliver; a portal link sees its tenant only"
    : "the console in a browser: SKIPPED, no chromium on PATH (apt-get install -y chromium)",
  ignore: chromium === null,
  async fn() {
    const t = await testApp({ apiKeys: [adminKey] });
    const key = bearer(adminKey);
    let healthy = false;
    const ok = startReceiver();
    const flaky = startReceiver(() =>
      healthy ? new Response("thanks") : new Response(xss, { status: 500 })
    );
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, t.fetch);
    const origin = `http://127.0.0.1:${server.addr.port}`;
    const w = worker(t.db, { maxAttempts: 1 });
    try {
      for (
        const [id, tenant, url] of [
          ["sub_shop", "acme", ok.url],
          ["sub_billing", "globex", flaky.url],
        ]
      ) {
        const res = await t.call("POST", "/subscriptions", {
          id,
          tenant_id: tenant,
          url,
          description: xss,
        }, key);
        assert.equal(res.status, 201);
      }
      for (
        const [id, tenant, type] of [
          ["evt_order_1", "acme", "order.created"],
          ["evt_invoice_1", "globex", "invoice.paid"],
        ]
      ) {
        const res = await t.call("POST", "/events", {
          id,
          type,
          tenant_id: tenant,
          data: { customer: "Ada", note: xss, amount: 4200 },
        }, key);
        assert.equal(res.status, 201);
      }
      await eventually(async () => {
        const [row] = await t.db.sql`
          SELECT count(*) FILTER (WHERE status IN ('delivered', 'failed'))::int AS n FROM deliveries`;
        return row!.n === 2 ? true : undefined;
      }, { what: "both deliveries to finish" });

      await withBrowser(async (browser) => {
        const page = await browser.newPage();
        await page.setViewport({ width: 1280, height: 800 });
        const requests: string[] = [];
        const problems: string[] = [];
        page.on("request", (r) => requests.push(r.url()));
        page.on("pageerror", (e) => problems.push(`page error: ${e}`));
        // A script that ran would open a dialog.
        page.on("dialog", async (d) => {
          problems.push(`dialog: ${d.message()}`);
          await d.dismiss();
        });
        page.on("console", (m) => {
          if (m.text().startsWith("CSP:")) problems.push(m.text());
        });
        await page.evaluateOnNewDocument(`document.addEventListener("securitypolicyviolation",
          (e) => console.log("CSP: " + e.violatedDirective + " blocked " + e.blockedURI))`);

        // Signing in.
        await page.goto(`${origin}/console`);
        assert.equal(new URL(page.url()).pathname, "/console/sign-in");
        await shoot(page, "sign-in");
        await page.type("input[name=key]", adminKey);
        await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
        assert.equal(new URL(page.url()).pathname, "/console", await page.content());
        assert.match(await text(page), /Most failing subscriptions/);
        assert.match(await text(page), /sub_billing/);
        await shoot(page, "overview");

        // The delivered event and the failed one.
        await page.goto(`${origin}/console/events`);
        const rows = await page.$$eval("tbody tr", (trs) => trs.map((tr) => tr.textContent ?? ""));
        assert.ok(
          rows.some((r) => r.includes("evt_order_1") && r.includes("delivered")),
          "delivered",
        );
        assert.ok(rows.some((r) => r.includes("evt_invoice_1") && r.includes("failed")), "failed");
        await shoot(page, "events");

        // Opening the failed one: the payload and the response body show as text.
        await Promise.all([
          page.waitForNavigation(),
          page.click("a[href='/console/events/evt_invoice_1']"),
        ]);
        const payload = await page.$eval("main pre", (p) => p.textContent ?? "");
        assert.ok(payload.includes(xss.replaceAll('"', '\\"')), payload);
        assert.equal(await page.$$eval("main script, main img", (els) => els.length), 0);
        assert.match(await text(page), /500/);
        await shoot(page, "event");

        // Retrying it, with the endpoint healthy now; the page refreshes itself until it shows delivered.
        healthy = true;
        await Promise.all([
          page.waitForNavigation(),
          page.click("button[type=submit]:not(.link)"),
        ]);
        assert.match(await text(page), /1 failed deliveries put back in the queue/);
        await page.waitForFunction(
          `document.querySelector("section.delivery .status")?.textContent === "delivered"`,
          { timeout: 20_000 },
        );
        assert.equal(flaky.received.length, 2, "the first attempt and the retry");

        // The subscriptions and the failed deliveries, for the screenshots (and that they render).
        await page.goto(`${origin}/console/subscriptions`);
        assert.match(await text(page), /sub_shop/);
        assert.ok(!(await page.content()).includes(xss), "the description is escaped");
        await shoot(page, "subscriptions");
        await page.goto(`${origin}/console/deliveries`);
        await shoot(page, "deliveries");

        // A POST without the CSRF token is refused.
        // A string: this runs in the page, where Deno's types do not apply.
        const status = await page.evaluate(`fetch("/console/subscriptions/sub_shop/delete",
          { method: "POST", body: new URLSearchParams({}) }).then((res) => res.status)`);
        assert.equal(status, 403);
        assert.equal((await t.call("GET", "/subscriptions/sub_shop", undefined, key)).status, 200);

        // A read-only portal link for acme: only acme, nothing that changes state.
        const link = await (await t.call(
          "POST",
          "/tenants/acme/portal-sessions",
          { read_only: true },
          key,
        )).json();
        const portalContext = await browser.createBrowserContext();
        const portal = await portalContext.newPage();
        portal.on("request", (r) => requests.push(r.url()));
        portal.on("dialog", async (d) => {
          problems.push(`dialog: ${d.message()}`);
          await d.dismiss();
        });
        const url = new URL(link.url);
        await portal.goto(`${origin}${url.pathname}${url.search}`);
        await portal.waitForFunction(`location.pathname === "/console"`);
        for (
          const path of [
            "/console",
            "/console/events",
            "/console/subscriptions",
            "/console/deliveries",
            "/console/events/evt_order_1",
          ]
        ) {
          await portal.goto(`${origin}${path}`);
          const html = await portal.content();
          assert.ok(
            !html.includes("globex") && !html.includes("evt_invoice_1"),
            `${path} shows globex`,
          );
          const controls = await portal.$$eval(
            "form[method=post], button[type=submit]",
            (els) => els.map((e) => e.outerHTML),
          );
          assert.deepEqual(controls.filter((c) => !c.includes("Filter")), [], `${path}: controls`);
        }
        assert.match(
          await portal.$eval("header", (h) => h.textContent ?? ""),
          /tenant acme, read-only/,
        );
        await portalContext.close();

        const elsewhere = requests.filter((u) => !u.startsWith(`${origin}/`));
        assert.deepEqual(elsewhere, [], "no request to another origin");
        assert.deepEqual(problems, []);
      });
    } finally {
      await w.stop({ drainMs: 1_000, resultsMs: 1_000 });
      await server.shutdown();
      await ok.close();
      await flaky.close();
      await t.close();
    }
  },
});
