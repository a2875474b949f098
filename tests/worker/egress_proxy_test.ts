import assert from "node:assert/strict";
import { createLogger } from "../../src/observability/log.ts";
import { testPki } from "../helpers/certificates.ts";
import { insertUncheckedSubscription, testDatabase } from "../helpers/db.ts";
import { startForwardProxy } from "../helpers/forward_proxy.ts";
import { startMtlsReceiver } from "../helpers/mtls_receiver.ts";
import { startReceiver } from "../helpers/receiver.ts";
import { startTokenEndpoint } from "../helpers/token_endpoint.ts";
import { eventually, startTestService } from "../helpers/service.ts";

const guarded = { ALLOW_PRIVATE_TARGETS: "false", ALLOWED_TARGET_CIDRS: "127.0.0.0/8" };
const credentials = { username: "dispatch", password: "pr0xy-pa55word-never-logged" };

/** `proxy.url` with `user:password@` in it. */
const withCredentials = (url: string, c = credentials) =>
  url.replace("http://", `http://${c.username}:${c.password}@`);

// deno-lint-ignore no-explicit-any -- JSON from the API
type Api = (method: string, path: string, body?: unknown) => Promise<any>;

async function finished(api: Api, id: string) {
  return await eventually(async () => {
    const deliveries = (await api("GET", `/events/${id}/deliveries`)).data;
    const done = deliveries.every((d: { status: string }) =>
      ["delivered", "failed"].includes(d.status)
    );
    return deliveries.length > 0 && done ? deliveries : undefined;
  }, { what: `the deliveries of ${id} to finish` });
}

Deno.test("with DELIVERY_PROXY_URL every delivery goes through the proxy by CONNECT to the address Dispatch checked, for http and https targets, with its credentials; no plain request", async () => {
  const pki = await testPki();
  const db = await testDatabase();
  const proxy = startForwardProxy({ credentials });
  const plain = startReceiver();
  const mtls = await startMtlsReceiver({ server: pki.server, clientCa: pki.ca.cert });
  const svc = await startTestService(db, {
    env: {
      ...guarded,
      DELIVERY_PROXY_URL: withCredentials(proxy.url),
      DELIVERY_CA_FILE: pki.caFile,
    },
  });
  try {
    // Names, not addresses: Dispatch resolves them, and the proxy is asked for the address.
    const httpUrl = plain.url.replace("127.0.0.1", "localhost");
    const httpsUrl = mtls.url.replace("127.0.0.1", "localhost");
    await svc.api("POST", "/subscriptions", { id: "sub_http", url: httpUrl });
    await svc.api("POST", "/subscriptions", {
      id: "sub_https",
      url: httpsUrl,
      tls_client_certificate: await pki.client("dispatch-client"),
    });
    await svc.api("POST", "/events", { id: "evt_1", type: "a", data: {} });
    const deliveries = await finished(svc.api, "evt_1");
    assert.deepEqual(deliveries.map((d: { status: string }) => d.status), [
      "delivered",
      "delivered",
    ]);
    assert.equal(plain.received.length, 1);
    assert.deepEqual(mtls.clients, ["dispatch-client"]);
    const ports = [new URL(plain.url).port, new URL(mtls.url).port];
    assert.deepEqual(
      [...proxy.connects].sort(),
      ports.map((p) => `127.0.0.1:${p}`).sort(),
    );
    assert.deepEqual(proxy.plain, []);
    assert.equal(proxy.refused, 0);
  } finally {
    await svc.stop();
    await mtls.close();
    await plain.close();
    await proxy.close();
    await db.close();
    await pki.remove();
  }
});

Deno.test("with DELIVERY_PROXY_URL an OAuth token request goes through the proxy too, before the delivery it is for", async () => {
  const db = await testDatabase();
  const proxy = startForwardProxy({ credentials });
  const tokens = startTokenEndpoint({ clientId: "dispatch", clientSecret: "s3cret-client" });
  const receiver = startReceiver();
  const svc = await startTestService(db, {
    env: { ...guarded, DELIVERY_PROXY_URL: withCredentials(proxy.url) },
  });
  try {
    await svc.api("POST", "/subscriptions", {
      id: "sub_oauth",
      url: receiver.url.replace("127.0.0.1", "localhost"),
      auth: {
        type: "oauth2_client_credentials",
        token_url: `${tokens.url.replace("127.0.0.1", "localhost")}/token`,
        client_id: "dispatch",
        client_secret: "s3cret-client",
      },
    });
    await svc.api("POST", "/events", { id: "evt_1", type: "a", data: {} });
    const deliveries = await finished(svc.api, "evt_1");
    assert.deepEqual(deliveries.map((d: { status: string }) => d.status), ["delivered"]);
    assert.equal(receiver.received[0]?.headers.get("authorization"), "Bearer tok_1");
    assert.equal(tokens.requests.length, 1);
    assert.deepEqual(proxy.connects, [
      `127.0.0.1:${new URL(tokens.url).port}`,
      `127.0.0.1:${new URL(receiver.url).port}`,
    ]);
    assert.deepEqual(proxy.plain, []);
  } finally {
    await svc.stop();
    await receiver.close();
    await tokens.close();
    await proxy.close();
    await db.close();
  }
});

Deno.test("with DELIVERY_PROXY_URL the SSRF guard still refuses a private target before anything is sent: the proxy sees nothing", async () => {
  const db = await testDatabase();
  const proxy = startForwardProxy();
  const receiver = startReceiver();
  const svc = await startTestService(db, {
    env: { ALLOW_PRIVATE_TARGETS: "false", DELIVERY_PROXY_URL: proxy.url, MAX_ATTEMPTS: "1" },
  });
  try {
    await insertUncheckedSubscription(db.sql, {
      id: "sub_local",
      url: receiver.url.replace("127.0.0.1", "localhost"),
    });
    await svc.api("POST", "/events", { id: "evt_1", type: "a", data: {} });
    const [delivery] = await finished(svc.api, "evt_1");
    assert.equal(delivery.status, "failed");
    const [attempt] = (await svc.api("GET", "/events/evt_1/attempts")).data;
    assert.equal(attempt.error_class, "blocked");
    assert.deepEqual([proxy.connects, proxy.plain, proxy.refused], [[], [], 0]);
    assert.equal(receiver.received.length, 0);
  } finally {
    await svc.stop();
    await receiver.close();
    await proxy.close();
    await db.close();
  }
});

Deno.test("a proxy that refuses Dispatch's credentials fails the attempt, and the proxy's password is in no log line, attempt or setting", async () => {
  const db = await testDatabase();
  const proxy = startForwardProxy({ credentials: { ...credentials, password: "another-one" } });
  const receiver = startReceiver();
  const lines: string[] = [];
  const svc = await startTestService(db, {
    env: { ...guarded, DELIVERY_PROXY_URL: withCredentials(proxy.url), MAX_ATTEMPTS: "1" },
    log: createLogger({ level: "debug", write: (line) => lines.push(line) }),
  });
  try {
    await svc.api("POST", "/subscriptions", { url: receiver.url });
    await svc.api("POST", "/events", { id: "evt_1", type: "a", data: {} });
    const [delivery] = await finished(svc.api, "evt_1");
    assert.equal(delivery.status, "failed");
    const attempts = (await svc.api("GET", "/events/evt_1/attempts")).data;
    assert.equal(attempts[0].error_class, "connection");
    assert.equal(proxy.refused, 1);
    assert.equal(receiver.received.length, 0);
    const basic = btoa(`${credentials.username}:${credentials.password}`);
    const started = lines.find((l) => l.includes("delivery"));
    assert.ok(started?.includes('"password_set":true'), started);
    assert.ok(lines.some((l) => l.includes("The egress proxy answered CONNECT with 407")));
    for (const text of [...lines, JSON.stringify(attempts)]) {
      assert.ok(!text.includes(credentials.password), text);
      assert.ok(!text.includes(basic), text);
    }
  } finally {
    await svc.stop();
    await receiver.close();
    await proxy.close();
    await db.close();
  }
});

Deno.test("/readyz does not depend on the proxy: with it down Dispatch is ready and attempts fail with result class connection", async () => {
  const db = await testDatabase();
  const gone = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const down = `http://127.0.0.1:${gone.addr.port}`;
  gone.close();
  const receiver = startReceiver();
  const svc = await startTestService(db, {
    env: { DELIVERY_PROXY_URL: down, MAX_ATTEMPTS: "1" },
  });
  try {
    const ready = await fetch(`${svc.url}/readyz`);
    assert.equal(ready.status, 200);
    await ready.body?.cancel();
    await svc.api("POST", "/subscriptions", { url: receiver.url });
    await svc.api("POST", "/events", { id: "evt_1", type: "a", data: {} });
    await finished(svc.api, "evt_1");
    const [attempt] = (await svc.api("GET", "/events/evt_1/attempts")).data;
    assert.equal(attempt.error_class, "connection", attempt.error);
    assert.equal(receiver.received.length, 0);
  } finally {
    await svc.stop();
    await receiver.close();
    await db.close();
  }
});
