import assert from "node:assert/strict";
import { type Pem, type TestPki, testPki } from "../helpers/certificates.ts";
import { testDatabase } from "../helpers/db.ts";
import { startMtlsReceiver } from "../helpers/mtls_receiver.ts";
import { eventually, startTestService } from "../helpers/service.ts";

/**
 * A service trusting the test CA through DELIVERY_CA_FILE, and an HTTPS
 * receiver that requires a client certificate the same CA signed.
 */
async function setup(env: Record<string, string> = {}) {
  const pki = await testPki();
  const db = await testDatabase();
  const receiver = await startMtlsReceiver({ server: pki.server, clientCa: pki.ca.cert });
  const svc = await startTestService(db, {
    env: { DELIVERY_CA_FILE: pki.caFile, MAX_ATTEMPTS: "2", ...env },
  });
  return {
    pki,
    receiver,
    api: svc.api,
    /** A subscription to the receiver, with `certificate` when given. */
    subscribe: (id: string, certificate?: Pem) =>
      svc.api("POST", "/subscriptions", {
        id,
        url: receiver.url,
        ...(certificate ? { tls_client_certificate: certificate } : {}),
      }),
    async finished(id: string, subscription: string) {
      return await eventually(async () => {
        const [d] = (await svc.api("GET", `/events/${id}/deliveries`)).data.filter((
          d: { subscription_id: string },
        ) => d.subscription_id === subscription);
        return ["delivered", "failed"].includes(d?.status) ? d : undefined;
      }, { what: `the delivery of ${id} to ${subscription} to finish` });
    },
    async close() {
      await svc.stop();
      await receiver.close();
      await db.close();
      await pki.remove();
    },
  };
}

async function attemptClasses(api: (m: string, p: string) => Promise<{ data: [] }>, id: string) {
  const attempts: { subscription_id: string; error_class: string | null; error: string | null }[] =
    (await api("GET", `/events/${id}/attempts`)).data;
  return attempts;
}

for (
  const [mode, env] of [
    ["with private targets allowed", {}],
    ["through the SSRF guard's pinned tunnel", {
      ALLOW_PRIVATE_TARGETS: "false",
      ALLOWED_TARGET_CIDRS: "127.0.0.0/8",
    }],
  ] as const
) {
  Deno.test(`a subscription with the right client certificate is delivered to an endpoint that requires one; one without fails its attempts with result class tls (${mode})`, async () => {
    const t = await setup(env);
    try {
      await t.subscribe("sub_cert", await t.pki.client("dispatch-client"));
      await t.subscribe("sub_none");
      await t.api("POST", "/events", { id: "evt_1", type: "a", data: {} });
      assert.equal((await t.finished("evt_1", "sub_cert")).status, "delivered");
      const none = await t.finished("evt_1", "sub_none");
      assert.equal(none.status, "failed");
      const attempts = await attemptClasses(t.api, "evt_1");
      const failed = attempts.filter((a) => a.subscription_id === "sub_none");
      assert.equal(failed.length, 2);
      for (const a of failed) {
        assert.equal(a.error_class, "tls", a.error ?? "");
        assert.match(a.error ?? "", /CertificateRequired/);
      }
      assert.deepEqual(t.receiver.clients, ["dispatch-client"]);
    } finally {
      await t.close();
    }
  });
}

Deno.test("a changed certificate is presented from the next delivery on; a removed one no more", async () => {
  // Guarded: the rebuilt client is a new tunnel too.
  const t = await setup({ ALLOW_PRIVATE_TARGETS: "false", ALLOWED_TARGET_CIDRS: "127.0.0.0/8" });
  try {
    await t.subscribe("sub_cert", await t.pki.client("first"));
    await t.api("POST", "/events", { id: "evt_1", type: "a", data: {} });
    assert.equal((await t.finished("evt_1", "sub_cert")).status, "delivered");
    await t.api("PATCH", "/subscriptions/sub_cert", {
      tls_client_certificate: await t.pki.client("second"),
    });
    await t.api("POST", "/events", { id: "evt_2", type: "a", data: {} });
    assert.equal((await t.finished("evt_2", "sub_cert")).status, "delivered");
    assert.deepEqual(t.receiver.clients, ["first", "second"]);
    await t.api("PATCH", "/subscriptions/sub_cert", { tls_client_certificate: null });
    await t.api("POST", "/events", { id: "evt_3", type: "a", data: {} });
    assert.equal((await t.finished("evt_3", "sub_cert")).status, "failed");
    assert.deepEqual(t.receiver.clients, ["first", "second"]);
  } finally {
    await t.close();
  }
});

Deno.test("without DELIVERY_CA_FILE the endpoint's private CA is not trusted: the attempt fails with result class tls", async () => {
  const pki: TestPki = await testPki();
  const db = await testDatabase();
  const receiver = await startMtlsReceiver({ server: pki.server, clientCa: pki.ca.cert });
  const svc = await startTestService(db, { env: { MAX_ATTEMPTS: "1" } });
  try {
    await svc.api("POST", "/subscriptions", {
      url: receiver.url,
      tls_client_certificate: await pki.client("dispatch-client"),
    });
    await svc.api("POST", "/events", { id: "evt_1", type: "a", data: {} });
    const [attempt] = await eventually(async () => {
      const a = await attemptClasses(svc.api, "evt_1");
      return a.length > 0 ? a : undefined;
    });
    assert.equal(attempt!.error_class, "tls");
    assert.match(attempt!.error ?? "", /UnknownIssuer|certificate/i);
    assert.deepEqual(receiver.clients, []);
  } finally {
    await svc.stop();
    await receiver.close();
    await db.close();
    await pki.remove();
  }
});
