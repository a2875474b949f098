import assert from "node:assert/strict";
import { createLogger } from "../../src/observability/log.ts";
import { createSecretCipher } from "../../src/security/secret_cipher.ts";
import { assertInvalidField, json, testApp } from "../helpers/app.ts";
import { type TestPki, testPki } from "../helpers/certificates.ts";
import { databaseDumps } from "../helpers/db.ts";

/** What `openssl x509` says of a certificate: the summary is checked against it, not against node:crypto. */
async function opensslSays(pki: TestPki, cert: string) {
  const file = `${pki.dir}/probe.pem`;
  await Deno.writeTextFile(file, cert);
  const out = await new Deno.Command("openssl", {
    args: ["x509", "-in", file, "-noout", "-fingerprint", "-sha256", "-enddate"],
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  return {
    fingerprint: /Fingerprint=([0-9A-F:]+)/.exec(text)![1]!,
    notAfter: new Date(/notAfter=(.*)/.exec(text)![1]!).toISOString(),
  };
}

/** The base64 body of a PEM key: what would show if it leaked in any form but its own. */
const keyBody = (pem: string) =>
  pem.split("\n").filter((l) => l && !l.startsWith("-----")).join("");

Deno.test("tls_client_certificate is shown as subject, issuer, not_after and fingerprint_sha256, never with its key, which is sealed at rest and in no log line", async () => {
  const pki = await testPki();
  const lines: string[] = [];
  const t = await testApp({}, {
    log: createLogger({ level: "debug", write: (l) => lines.push(l) }),
    secrets: createSecretCipher(crypto.getRandomValues(new Uint8Array(32))),
  });
  try {
    const client = await pki.client("dispatch-client");
    const res = await t.call("POST", "/subscriptions", {
      id: "sub_mtls",
      url: "https://example.com/hook",
      tls_client_certificate: client,
    });
    assert.equal(res.status, 201);
    const created = await json(res);
    const openssl = await opensslSays(pki, client.cert);
    assert.deepEqual(created.tls_client_certificate, {
      subject: "CN=dispatch-client, O=Dispatch Tests",
      issuer: "CN=Dispatch Test CA",
      not_after: openssl.notAfter,
      fingerprint_sha256: openssl.fingerprint,
    });
    const got = await json(await t.call("GET", "/subscriptions/sub_mtls"));
    assert.deepEqual(got.tls_client_certificate, created.tls_client_certificate);
    const list = await json(await t.call("GET", "/subscriptions"));
    const [stored] = await t.db.sql<{ tls_client_key: string }[]>`
      SELECT tls_client_key FROM subscriptions WHERE id = 'sub_mtls'`;
    assert.match(stored!.tls_client_key, /^enc:v1:/);
    const places = {
      created: JSON.stringify(created),
      got: JSON.stringify(got),
      list: JSON.stringify(list),
      logs: lines.join("\n"),
      ...Object.fromEntries((await databaseDumps(t.db)).map((d, i) => [`dump ${i}`, d])),
    };
    for (const [where, text] of Object.entries(places)) {
      assert.ok(!text.includes("PRIVATE KEY"), where);
      assert.ok(!text.includes(keyBody(client.key).slice(0, 40)), where);
    }
    // Not even sealed: the representations hold no form of the key.
    for (const [where, text] of Object.entries(places).slice(0, 4)) {
      assert.ok(!text.includes(stored!.tls_client_key), where);
      assert.ok(!text.includes("tls_client_key"), where);
    }
  } finally {
    await t.close();
    await pki.remove();
  }
});

Deno.test("a tls_client_certificate whose certificate or key does not parse, or whose key is not the certificate's, is refused with 400 naming the field", async () => {
  const pki = await testPki();
  const t = await testApp();
  try {
    const client = await pki.client("dispatch-client");
    const other = await pki.client("other");
    const brokenCert =
      "-----BEGIN CERTIFICATE-----\nTUlJQm5vdCBhIGNlcnQ=\n-----END CERTIFICATE-----\n";
    const cases: [unknown, string][] = [
      [{ cert: "not a certificate", key: client.key }, "tls_client_certificate.cert"],
      [{ cert: brokenCert, key: client.key }, "tls_client_certificate.cert"],
      [{ cert: client.cert, key: "not a key" }, "tls_client_certificate.key"],
      [{ cert: client.cert, key: other.key }, "tls_client_certificate.key"],
      [{ cert: client.cert }, "tls_client_certificate.key"],
      [{ cert: client.cert, key: client.key, password: "x" }, "tls_client_certificate.password"],
      ["PEM", "tls_client_certificate"],
    ];
    for (const [tls, field] of cases) {
      const body = { url: "https://example.com/hook", tls_client_certificate: tls };
      await assertInvalidField(await t.call("POST", "/subscriptions", body), field, field);
    }
    assert.equal((await json(await t.call("GET", "/subscriptions"))).data.length, 0);
    await t.call("POST", "/subscriptions", {
      id: "sub_1",
      url: "https://example.com/hook",
      tls_client_certificate: client,
    });
    for (const [tls, field] of cases) {
      const res = await t.call("PATCH", "/subscriptions/sub_1", { tls_client_certificate: tls });
      await assertInvalidField(res, field, `PATCH ${field}`);
    }
    const unchanged = await json(await t.call("GET", "/subscriptions/sub_1"));
    assert.equal(unchanged.tls_client_certificate.subject, "CN=dispatch-client, O=Dispatch Tests");
  } finally {
    await t.close();
    await pki.remove();
  }
});

Deno.test("PATCH replaces tls_client_certificate whole, null removes it, and leaving it out keeps it", async () => {
  const pki = await testPki();
  const t = await testApp();
  try {
    const first = await pki.client("first");
    const second = await pki.client("second");
    await t.call("POST", "/subscriptions", { id: "sub_1", url: "https://example.com/hook" });
    const none = await json(await t.call("GET", "/subscriptions/sub_1"));
    assert.equal(none.tls_client_certificate, null);
    const a = await json(
      await t.call("PATCH", "/subscriptions/sub_1", { tls_client_certificate: first }),
    );
    const b = await json(
      await t.call("PATCH", "/subscriptions/sub_1", { tls_client_certificate: second }),
    );
    assert.equal(b.tls_client_certificate.subject, "CN=second, O=Dispatch Tests");
    assert.notEqual(
      b.tls_client_certificate.fingerprint_sha256,
      a.tls_client_certificate.fingerprint_sha256,
    );
    const kept = await json(await t.call("PATCH", "/subscriptions/sub_1", { description: "x" }));
    assert.deepEqual(kept.tls_client_certificate, b.tls_client_certificate);
    const removed = await json(
      await t.call("PATCH", "/subscriptions/sub_1", { tls_client_certificate: null }),
    );
    assert.equal(removed.tls_client_certificate, null);
    const [row] = await t.db.sql`
      SELECT tls_client_cert_pem, tls_client_key FROM subscriptions WHERE id = 'sub_1'`;
    assert.deepEqual({ ...row }, { tls_client_cert_pem: null, tls_client_key: null });
  } finally {
    await t.close();
    await pki.remove();
  }
});
