import assert from "node:assert/strict";
import { silentLogger } from "../../src/observability/log.ts";
import { createSecretCipher } from "../../src/security/secret_cipher.ts";
import { deliveryClients } from "../../src/worker/delivery_clients.ts";
import { testPki } from "../helpers/certificates.ts";
import { startReceiver } from "../helpers/receiver.ts";

/** Whether a request through `client` still gets an answer (a closed client refuses to send). */
async function works(client: Deno.HttpClient, url: string): Promise<boolean> {
  try {
    await (await fetch(url, { method: "POST", body: "{}", client })).body?.cancel();
    return true;
  } catch {
    return false;
  }
}

for (const pinned of [false, true]) {
  Deno.test(`a subscription's client is built once per certificate and the replaced one closed when its last attempt is done (${pinned ? "pinned" : "direct"})`, async () => {
    const pki = await testPki();
    const receiver = startReceiver();
    const secrets = createSecretCipher(crypto.getRandomValues(new Uint8Array(32)));
    const clients = deliveryClients({ secrets, log: silentLogger }, {
      caCerts: [],
      proxy: null,
      pinned,
    });
    const { port } = new URL(receiver.url);
    const certificate = async (name: string) => {
      const pem = await pki.client(name);
      return { fingerprint: name, cert: pem.cert, key: await secrets.seal(pem.key) };
    };
    const send = async (leased: Awaited<ReturnType<typeof clients.lease>>) => {
      const unpin = leased!.pin?.({ host: "127.0.0.1", port: +port, address: "127.0.0.1" });
      try {
        return await works(leased!.client, receiver.url);
      } finally {
        unpin?.();
      }
    };
    try {
      const first = await certificate("first");
      const a = await clients.lease({ subscription_id: "sub_1", tls_client_certificate: first });
      const again = await clients.lease({
        subscription_id: "sub_1",
        tls_client_certificate: first,
      });
      assert.equal(again!.client, a!.client, "one client for one certificate");
      again!.release();
      // Replaced while `a` is still out: it keeps working until released.
      const b = await clients.lease({
        subscription_id: "sub_1",
        tls_client_certificate: await certificate("second"),
      });
      assert.notEqual(b!.client, a!.client);
      assert.equal(await send(a), true);
      a!.release();
      // Closing follows in a microtask of the release: one turn of the event loop sees it done.
      await new Promise((r) => setTimeout(r, 0));
      assert.equal(await send(a), false, "the replaced client is closed");
      assert.equal(await send(b), true);
      b!.release();
      // Without a certificate, guard or CA, fetch's own client does.
      const none = await clients.lease({ subscription_id: "sub_2", tls_client_certificate: null });
      assert.equal(none === undefined, !pinned);
      none?.release();
    } finally {
      await clients.close();
      await receiver.close();
      await pki.remove();
    }
  });
}

Deno.test("a subscription's client unused for idleMs is closed at the next lease after that; one in use is not", async () => {
  const pki = await testPki();
  const receiver = startReceiver();
  let clock = 0;
  const clients = deliveryClients({ secrets: createSecretCipher(null), log: silentLogger }, {
    caCerts: [],
    proxy: null,
    pinned: false,
    idleMs: 1000,
    now: () => clock,
  });
  const certificate = async (name: string) => ({ fingerprint: name, ...await pki.client(name) });
  try {
    const idle = await clients.lease({
      subscription_id: "sub_idle",
      tls_client_certificate: await certificate("idle"),
    });
    idle!.release();
    const busy = await clients.lease({
      subscription_id: "sub_busy",
      tls_client_certificate: await certificate("busy"),
    });
    clock = 999;
    const other = await clients.lease({
      subscription_id: "sub_other",
      tls_client_certificate: await certificate("other"),
    });
    other!.release();
    assert.equal(await works(idle!.client, receiver.url), true, "not idle long enough yet");
    clock = 1000;
    (await clients.lease({ subscription_id: "sub_3", tls_client_certificate: null }))?.release();
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(await works(idle!.client, receiver.url), false, "idle: closed");
    assert.equal(await works(busy!.client, receiver.url), true, "in use: kept");
    assert.equal(await works(other!.client, receiver.url), true, "used 1 ms ago: kept");
    busy!.release();
  } finally {
    await clients.close();
    await receiver.close();
    await pki.remove();
  }
});
