import assert from "node:assert/strict";
import { ConfigError } from "../../src/config.ts";
import { readCaFile } from "../../src/security/client_certificate.ts";
import { testPki } from "../helpers/certificates.ts";
import { testDatabase } from "../helpers/db.ts";
import { startTestService } from "../helpers/service.ts";

const repo = new URL("../../", import.meta.url);

Deno.test("a DELIVERY_CA_FILE that cannot be read, holds no certificate or one that does not parse stops start-up naming the setting", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dispatch-ca-" });
  try {
    await Deno.writeTextFile(`${dir}/empty.pem`, "no certificate here\n");
    await Deno.writeTextFile(
      `${dir}/broken.pem`,
      "-----BEGIN CERTIFICATE-----\nTUlJQm5vdCBhIGNlcnQ=\n-----END CERTIFICATE-----\n",
    );
    const cases: [string, RegExp][] = [
      [`${dir}/missing.pem`, /cannot be read/],
      [`${dir}/empty.pem`, /holds no PEM certificate/],
      [`${dir}/broken.pem`, /certificate 1 does not parse/],
    ];
    for (const [path, why] of cases) {
      await assert.rejects(readCaFile(path), (err: Error) => {
        assert.ok(err instanceof ConfigError);
        assert.ok(err.message.startsWith(`Invalid DELIVERY_CA_FILE "${path}": `), err.message);
        assert.match(err.message, why);
        return true;
      });
    }
    assert.deepEqual(await readCaFile(null), []);
    // The service refuses to start on it, before it opens anything.
    const db = await testDatabase();
    try {
      await assert.rejects(
        startTestService(db, { env: { DELIVERY_CA_FILE: `${dir}/missing.pem` } }),
        ConfigError,
      );
    } finally {
      await db.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("DELIVERY_CA_FILE's CAs are trusted in addition to the system's, not instead of them", async () => {
  // Two private CAs: one stands in for the system's store (SSL_CERT_FILE with
  // DENO_TLS_CA_STORE=system, in a child process), the other is the file's.
  const system = await testPki();
  const file = await testPki();
  const serve = (pki: typeof system) =>
    Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      cert: pki.server.cert,
      key: pki.server.key,
      onListen() {},
    }, () => new Response("ok"));
  const bySystem = serve(system);
  const byFile = serve(file);
  const script = `${file.dir}/probe.ts`;
  await Deno.writeTextFile(
    script,
    `import { deliveryClients } from "${new URL("src/worker/delivery_clients.ts", repo)}";
import { createSecretCipher } from "${new URL("src/security/secret_cipher.ts", repo)}";
import { silentLogger } from "${new URL("src/observability/log.ts", repo)}";
const caCerts = [await Deno.readTextFile(${JSON.stringify(file.caFile)})];
const clients = deliveryClients({ secrets: createSecretCipher(null), log: silentLogger },
  { caCerts, proxy: null, pinned: false });
const leased = await clients.lease({ subscription_id: "sub_1", tls_client_certificate: null });
for (const port of [${bySystem.addr.port}, ${byFile.addr.port}]) {
  const res = await fetch("https://127.0.0.1:" + port + "/", { client: leased.client });
  console.log(res.status, await res.text());
}
leased.release();
await clients.close();
`,
  );
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", new URL("deno.json", repo).pathname, script],
      env: { DENO_TLS_CA_STORE: "system", SSL_CERT_FILE: system.caFile },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.equal(text, "200 ok\n200 ok\n");
  } finally {
    await bySystem.shutdown();
    await byFile.shutdown();
    await system.remove();
    await file.remove();
  }
});
