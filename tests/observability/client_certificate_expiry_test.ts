import assert from "node:assert/strict";
import { createLogger } from "../../src/observability/log.ts";
import {
  type CertificateExpiry,
  warnOfExpiringCertificates,
} from "../../src/worker/certificate_expiry.ts";
import { buildApp } from "../helpers/app.ts";
import { testPki } from "../helpers/certificates.ts";
import { testDatabase } from "../helpers/db.ts";
import { eventually, startTestService } from "../helpers/service.ts";
import { sample } from "../helpers/metrics.ts";

const day = 86_400_000;

Deno.test("dispatch_client_certificate_expiry_seconds has each certificate's seconds left, and a warning is logged at start for one with less than 14 days", async () => {
  const pki = await testPki();
  const db = await testDatabase();
  const app = buildApp(db);
  const lines: string[] = [];
  try {
    for (const [id, days] of [["sub_soon", 5], ["sub_later", 30]] as const) {
      const res = await app.request("/subscriptions", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          id,
          url: "https://example.com/hook",
          tls_client_certificate: await pki.client(id, { days }),
        }),
      });
      assert.equal(res.status, 201);
    }
    await app.request("/subscriptions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id: "sub_none", url: "https://example.com/hook" }),
    });
    const svc = await startTestService(db, {
      log: createLogger({ write: (l) => lines.push(l) }),
    });
    try {
      const warning = await eventually(() =>
        Promise.resolve(lines.find((l) => l.includes("expires in less than 14 days")))
      );
      const fields = JSON.parse(warning);
      assert.equal(fields.subscription_id, "sub_soon");
      assert.equal(fields.days_left, 4);
      assert.equal(lines.filter((l) => l.includes("client certificate")).length, 1);

      const text = await (await fetch(`${svc.url}/metrics`)).text();
      for (const [id, days] of [["sub_soon", 5], ["sub_later", 30]] as const) {
        const { tls_client_certificate: c } = await svc.api("GET", `/subscriptions/${id}`);
        const left = sample(
          text,
          `dispatch_client_certificate_expiry_seconds{subscription_id="${id}"}`,
        );
        const expected = (Date.parse(c.not_after) - Date.now()) / 1000;
        // openssl dates the certificate from now: `days` whole days, give or take the test's run.
        assert.ok(Math.abs(left! - expected) < 60, `${id}: ${left} vs ${expected}`);
        assert.ok(Math.abs(left! - days * 86_400) < 600, `${id}: ${left}`);
      }
      assert.ok(!text.includes('subscription_id="sub_none"'));
      await svc.api("PATCH", "/subscriptions/sub_soon", { tls_client_certificate: null });
      const after = await (await fetch(`${svc.url}/metrics`)).text();
      assert.ok(!after.includes('subscription_id="sub_soon"'));
      assert.ok(
        after.includes('dispatch_client_certificate_expiry_seconds{subscription_id="sub_later"}'),
      );
    } finally {
      await svc.stop();
    }
  } finally {
    await db.close();
    await pki.remove();
  }
});

Deno.test("a pass warns of every certificate with less than 14 days left, expired ones too, and of no other", async () => {
  const now = Date.parse("2026-12-07T12:00:00Z");
  const expiry = (id: string, msLeft: number): CertificateExpiry => ({
    subscription_id: id,
    tenant_id: null,
    not_after: new Date(now + msLeft),
  });
  const lines: string[] = [];
  await warnOfExpiringCertificates({
    // Soonest first, as the view answers.
    expiries: () =>
      Promise.resolve([
        expiry("sub_expired", -day),
        expiry("sub_13", 13 * day),
        expiry("sub_14", 14 * day),
        expiry("sub_20", 20 * day),
      ]),
    log: createLogger({ write: (l) => lines.push(l) }),
  }, () => now);
  const warned = lines.map((l) => JSON.parse(l));
  assert.deepEqual(warned.map((w) => [w.subscription_id, w.level]), [
    ["sub_expired", "warn"],
    ["sub_13", "warn"],
  ]);
  assert.match(warned[0].msg ?? warned[0].message, /has expired/);
  assert.equal(warned[1].days_left, 13);
});
