/**
 * The secret parts of `auth` (password, token, client secret) and the access
 * tokens Dispatch fetches, through the whole service with DISPATCH_SECRETS_KEY:
 * in no read answer, no log line, no attempt record, and nowhere in the
 * database but sealed.
 */
import assert from "node:assert/strict";
import { createLogger } from "../../src/observability/log.ts";
import { testDatabase } from "../helpers/db.ts";
import { startReceiver } from "../helpers/receiver.ts";
import { eventually, startTestService } from "../helpers/service.ts";
import { startTokenEndpoint } from "../helpers/token_endpoint.ts";

const secretsKey = () => crypto.getRandomValues(new Uint8Array(32)).toBase64();
const password = "basic-password-never-shown";
const staticToken = "bearer-token-never-shown";
const clientSecret = "client-secret-never-shown";

function assertHidden(text: string, secrets: string[], where: string) {
  for (const s of secrets) assert.ok(!text.includes(s), `${where} shows "${s}"`);
}

Deno.test("auth secrets and access tokens are in no answer, log line, attempt or database column but sealed", async () => {
  const lines: string[] = [];
  const log = createLogger({ level: "debug", write: (line) => lines.push(line) });
  const db = await testDatabase();
  const receiver = startReceiver();
  // The first token request fails, echoing the secret it was sent: an auth_failed attempt.
  const token = startTokenEndpoint({
    clientId: "dispatch",
    clientSecret,
    expiresIn: 3600,
    answer: (i) => i === 0 ? new Response(`down; got ${clientSecret}`, { status: 503 }) : undefined,
  });
  const svc = await startTestService(db, {
    log,
    env: { DISPATCH_SECRETS_KEY: secretsKey(), LOG_LEVEL: "debug" },
  });
  let stopping: Promise<void> | undefined;
  const stop = () => stopping ??= svc.stop();
  try {
    const auths = [
      { type: "basic", username: "alice", password },
      { type: "bearer", token: staticToken },
      {
        type: "oauth2_client_credentials",
        token_url: token.url,
        client_id: "dispatch",
        client_secret: clientSecret,
        client_auth: "post",
      },
    ];
    const subs = [];
    for (const auth of auths) {
      subs.push(await svc.api("POST", "/subscriptions", { url: receiver.url, auth }));
    }
    await svc.api("PATCH", `/subscriptions/${subs[0].id}`, { auth: auths[0] });
    await svc.api("POST", "/events", { id: "evt_a", type: "a", data: {} });
    const deliveries = await eventually(async () => {
      const d = await svc.api("GET", "/events/evt_a/deliveries");
      return d.data.every((x: { status: string }) => x.status === "delivered") ? d : undefined;
    }, { what: "three deliveries" });
    assert.equal(deliveries.data.length, 3);
    const got = receiver.received.map((r) => r.headers.get("authorization")).sort();
    assert.deepEqual(got, [
      `Basic ${btoa(`alice:${password}`)}`,
      `Bearer ${staticToken}`,
      "Bearer tok_1",
    ]);

    const attempts = await svc.api("GET", "/events/evt_a/attempts");
    const failed = attempts.data.find((a: { error_class: string }) =>
      a.error_class === "auth_failed"
    );
    assert.equal(failed?.status_code, 503);
    assert.equal(failed?.response_body, "down; got [redacted]");

    const hidden = [password, staticToken, clientSecret, "tok_1"];
    for (
      const path of [
        "/subscriptions",
        ...subs.map((s) => `/subscriptions/${s.id}`),
        "/events/evt_a/attempts",
        "/events/evt_a/deliveries",
        "/metrics",
      ]
    ) {
      const res = await fetch(`${svc.url}${path}`);
      assert.equal(res.status, 200, path);
      assertHidden(await res.text(), hidden, path);
    }

    // Every row of every table of the schema, as text: a dump of what is stored.
    const tables = await db.sql<{ name: string }[]>`
      SELECT table_name AS name FROM information_schema.tables
      WHERE table_schema = ${db.schema} AND table_type = 'BASE TABLE'`;
    let dump = "";
    for (const { name } of tables) {
      const rows = await db.sql.unsafe(`SELECT t::text AS row FROM ${db.schema}.${name} t`);
      dump += rows.map((r) => r.row).join("\n");
    }
    assert.ok(dump.includes("alice"), "the dump has the subscriptions");
    assertHidden(dump, hidden, "the database");
    const sealed = await db.sql<{ auth_secret: string }[]>`SELECT auth_secret FROM subscriptions`;
    for (const { auth_secret } of sealed) assert.match(auth_secret, /^enc:v1:/);

    await stop();
    assert.ok(lines.some((l) => l.includes('"auth_failed"')), "the test captured the attempt logs");
    assertHidden(lines.join("\n"), hidden, "the log");
  } finally {
    await stop();
    await receiver.close();
    await token.close();
    await db.close();
  }
});

Deno.test("the service refuses to start when the key cannot open a sealed auth secret", async () => {
  const db = await testDatabase();
  const first = await startTestService(db, { env: { DISPATCH_SECRETS_KEY: secretsKey() } });
  try {
    await first.api("POST", "/subscriptions", {
      url: "https://example.com/h",
      auth: { type: "bearer", token: staticToken },
    });
  } finally {
    await first.stop();
  }
  try {
    // Only the auth secret is sealed now.
    await db.sql`UPDATE subscriptions SET secret = 'a-plain-signing-secret'`;
    await assert.rejects(
      startTestService(db, { env: { DISPATCH_SECRETS_KEY: secretsKey() } }),
      /DISPATCH_SECRETS_KEY does not decrypt a subscription secret/,
    );
  } finally {
    await db.close();
  }
});
