import assert from "node:assert/strict";
import { pinnedClient } from "../../src/security/pinned_client.ts";

const fixture = (name: string) =>
  Deno.readTextFile(new URL(`../fixtures/${name}`, import.meta.url));

Deno.test("pinnedClient() speaks TLS to the checked address with the URL's name: server name, certificate and Host", async () => {
  const cert = await fixture("hooks_test_cert.pem");
  const key = await fixture("hooks_test_key.pem");
  const hosts: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, cert, key, onListen() {} }, (r) => {
    hosts.push(new URL(r.url).host);
    return new Response("ok");
  });
  const port = server.addr.port;
  const pinned = pinnedClient({ caCerts: [cert] });
  pinned.pin({ host: "hooks.test", port, address: "127.0.0.1" });
  const unpinOther = pinned.pin({ host: "other.test", port, address: "127.0.0.1" });
  try {
    // No resolver knows hooks.test: only the tunnel can reach the server.
    const res = await fetch(`https://hooks.test:${port}/hook`, {
      method: "POST",
      body: "{}",
      client: pinned.client,
    });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "ok");
    assert.deepEqual(hosts, [`hooks.test:${port}`]);
    // The certificate is still checked against the URL's name.
    await assert.rejects(
      fetch(`https://other.test:${port}/hook`, { client: pinned.client }),
      (err: Error) => /certificate|NotValidForName/i.test(String(err.cause ?? err)),
    );
    assert.equal(hosts.length, 1);
    // A name nobody pinned goes nowhere.
    unpinOther();
    await assert.rejects(
      fetch(`https://other.test:${port}/hook`, { client: pinned.client }),
      (err: Error) => !/certificate|NotValidForName/i.test(String(err.cause ?? err)),
    );
    assert.equal(hosts.length, 1);
  } finally {
    await pinned.close();
    await server.shutdown();
  }
});

Deno.test("pinnedClient() answers a refused connection as one, and closes with nothing left open", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const pinned = pinnedClient();
  pinned.pin({ host: "hooks.test", port, address: "127.0.0.1" });
  try {
    await assert.rejects(fetch(`http://hooks.test:${port}/`, { client: pinned.client }));
  } finally {
    await pinned.close();
  }
});
