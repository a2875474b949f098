import assert from "node:assert/strict";
import { Webhook } from "standardwebhooks";
import { ConfigError } from "../../src/config.ts";
import { createLogger } from "../../src/observability/log.ts";
import { createSecretCipher } from "../../src/security/secret_cipher.ts";
import { testDatabase } from "../helpers/db.ts";
import { startReceiver } from "../helpers/receiver.ts";
import { eventually, startTestService } from "../helpers/service.ts";

const secretsKey = () => crypto.getRandomValues(new Uint8Array(32)).toBase64();

/** Every read route of the API, for a subscription and an event. */
const readPaths = (subId: string, eventId: string) => [
  "/subscriptions",
  `/subscriptions/${subId}`,
  "/events",
  `/events/${eventId}`,
  `/events/${eventId}/deliveries`,
  `/events/${eventId}/attempts`,
  "/openapi.json",
  "/metrics",
  "/healthz",
  "/readyz",
];

function assertHidden(text: string, secrets: string[], where: string) {
  for (const s of secrets) assert.ok(!text.includes(s), `${where} shows a secret`);
}

Deno.test("secrets and keys appear in no read answer and in no log line", async () => {
  const lines: string[] = [];
  const log = createLogger({ level: "debug", write: (line) => lines.push(line) });
  const db = await testDatabase();
  const receiver = startReceiver((_r, i) => new Response(null, { status: i === 0 ? 500 : 200 }));
  const key = secretsKey();
  const svc = await startTestService(db, {
    log,
    env: { DISPATCH_SECRETS_KEY: key, LOG_LEVEL: "debug" },
  });
  // Stopped inside the test too, so the last log lines are written before they are checked.
  let stopping: Promise<void> | undefined;
  const stop = () => stopping ??= svc.stop();
  try {
    const given = "a-raw-secret-that-must-stay-hidden";
    const sub = await svc.api("POST", "/subscriptions", { url: receiver.url, secret: given });
    const generated = await svc.api("POST", "/subscriptions", { url: receiver.url + "?b" });
    const rotated = await svc.api("POST", `/subscriptions/${sub.id}/rotate-secret`);
    await svc.api("PATCH", `/subscriptions/${sub.id}`, { description: "patched" });
    // A rejected request that carries a secret must not echo it either.
    const bad = await fetch(`${svc.url}/subscriptions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ url: "ftp://x", secret: "another-secret-in-a-bad-request" }),
    });
    assert.equal(bad.status, 400);
    const badText = await bad.text();
    await svc.api("POST", "/events", { id: "evt_s", type: "a", data: { n: 1 } });
    await receiver.waitFor(3);
    await eventually(async () => {
      const e = await svc.api("GET", "/events/evt_s");
      return e.status === "delivered" ? e : undefined;
    }, { what: "the event to be delivered" });

    const secrets = [given, generated.secret, rotated.secret, "another-secret-in-a-bad-request"];
    const stored = await db.sql<{ secret: string; previous_secret: string | null }[]>`
      SELECT secret, previous_secret FROM subscriptions`;
    const hidden = [...secrets, key, ...stored.flatMap((r) => [r.secret, r.previous_secret ?? ""])]
      .filter(Boolean);
    assertHidden(badText, hidden, "the 400 answer");
    for (const path of readPaths(sub.id, "evt_s")) {
      const res = await fetch(`${svc.url}${path}`);
      assert.equal(res.status, 200, path);
      assertHidden(await res.text(), hidden, path);
    }
    await stop();
    assert.ok(lines.some((l) => l.includes('"Delivery attempt"')), "the test captured logs");
    assertHidden(lines.join("\n"), hidden, "the log");
  } finally {
    await stop();
    await receiver.close();
    await db.close();
  }
});

Deno.test("with DISPATCH_SECRETS_KEY secrets are stored encrypted and still sign deliveries", async () => {
  const db = await testDatabase();
  const receiver = startReceiver();
  const svc = await startTestService(db, { env: { DISPATCH_SECRETS_KEY: secretsKey() } });
  try {
    const secret = "whsec_" + crypto.getRandomValues(new Uint8Array(32)).toBase64();
    const sub = await svc.api("POST", "/subscriptions", { url: receiver.url, secret });
    const [row] = await db.sql<{ secret: string }[]>`SELECT secret FROM subscriptions`;
    assert.match(row!.secret, /^enc:v1:[A-Za-z0-9+/]{16}:[A-Za-z0-9+/=]+$/);
    assert.ok(!row!.secret.includes(secret.slice(6)));

    await svc.api("POST", "/events", { id: "evt_1", type: "a", data: {} });
    const [first] = await receiver.waitFor(1);
    assert.ok(new Webhook(secret).verify(first!.body, Object.fromEntries(first!.headers)));

    const rotated = await svc.api("POST", `/subscriptions/${sub.id}/rotate-secret`);
    const [after] = await db.sql<{ secret: string; previous_secret: string }[]>`
      SELECT secret, previous_secret FROM subscriptions`;
    assert.match(after!.secret, /^enc:v1:/);
    assert.equal(after!.previous_secret, row!.secret);
    await svc.api("POST", "/events", { id: "evt_2", type: "a", data: {} });
    const [, second] = await receiver.waitFor(2);
    const headers = Object.fromEntries(second!.headers);
    assert.equal(headers["webhook-signature"]!.split(" ").length, 2);
    assert.ok(new Webhook(rotated.secret).verify(second!.body, headers));
    assert.ok(new Webhook(secret).verify(second!.body, headers));
  } finally {
    await svc.stop();
    await receiver.close();
    await db.close();
  }
});

Deno.test("secrets stored before a key was set keep signing once it is set", async () => {
  const db = await testDatabase();
  const receiver = startReceiver();
  try {
    const before = await startTestService(db);
    const secret = "plaintext-secret-from-before";
    await before.api("POST", "/subscriptions", { id: "sub_old", url: receiver.url, secret });
    await before.stop();
    const [row] = await db.sql<{ secret: string }[]>`SELECT secret FROM subscriptions`;
    assert.equal(row!.secret, secret);

    const after = await startTestService(db, { env: { DISPATCH_SECRETS_KEY: secretsKey() } });
    try {
      await after.api("POST", "/events", { id: "evt_old", type: "a", data: {} });
      const [got] = await receiver.waitFor(1);
      const wh = new Webhook(secret, { format: "raw" });
      assert.ok(wh.verify(got!.body, Object.fromEntries(got!.headers)));
    } finally {
      await after.stop();
    }
  } finally {
    await receiver.close();
    await db.close();
  }
});

Deno.test("the service refuses to start when the key is missing or cannot open stored secrets", async () => {
  const db = await testDatabase();
  try {
    const first = await startTestService(db, { env: { DISPATCH_SECRETS_KEY: secretsKey() } });
    await first.api("POST", "/subscriptions", { url: "https://example.com/hook" });
    await first.stop();
    await assert.rejects(
      startTestService(db),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /encrypted but DISPATCH_SECRETS_KEY is unset/);
        return true;
      },
    );
    await assert.rejects(
      startTestService(db, { env: { DISPATCH_SECRETS_KEY: secretsKey() } }),
      /DISPATCH_SECRETS_KEY does not decrypt a subscription secret/,
    );
  } finally {
    await db.close();
  }
});

Deno.test("the service refuses to start when any encrypted secret in use cannot be opened, not just the first", async () => {
  const db = await testDatabase();
  try {
    const key = secretsKey();
    const first = await startTestService(db, { env: { DISPATCH_SECRETS_KEY: key } });
    await first.api("POST", "/subscriptions", { id: "sub_ok", url: "https://example.com/a" });
    await first.stop();
    // A second secret sealed under another key, as by a misconfigured process.
    const stranger = createSecretCipher(Uint8Array.fromBase64(secretsKey()));
    await db.sql`INSERT INTO subscriptions (id, url, event_types, secret)
      VALUES ('sub_other', 'https://example.com/b', '{*}', ${await stranger.seal(
      "whsec_" + btoa("y".repeat(32)),
    )})`;
    await assert.rejects(
      startTestService(db, { env: { DISPATCH_SECRETS_KEY: key } }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(
          err.message,
          'DISPATCH_SECRETS_KEY does not decrypt a subscription secret: set the key it was encrypted with (1 of 2 encrypted secrets cannot be opened, e.g. that of subscription "sub_other")',
        );
        return true;
      },
    );
  } finally {
    await db.close();
  }
});
