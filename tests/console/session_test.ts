import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "../../src/config.ts";
import { type SessionClaims, SessionSigner } from "../../src/console/session.ts";

const claims = (extra: Partial<SessionClaims> = {}): SessionClaims => ({
  use: "session",
  sid: "sid-1",
  actor: "api_key",
  keyId: "key_1",
  tenantId: "acme",
  readOnly: false,
  exp: Date.now() + 60_000,
  ...extra,
});

const secretsKey = (byte: number) => btoa(String.fromCharCode(...new Uint8Array(32).fill(byte)));

Deno.test("processes that share DISPATCH_SECRETS_KEY or CONSOLE_SESSION_SECRET honour each other's sessions", async () => {
  const one = new SessionSigner(
    loadConfig({ DISPATCH_SECRETS_KEY: secretsKey(1) }).http.consoleSessionKey,
  );
  const two = new SessionSigner(
    loadConfig({ DISPATCH_SECRETS_KEY: secretsKey(1) }).http.consoleSessionKey,
  );
  const other = new SessionSigner(
    loadConfig({ DISPATCH_SECRETS_KEY: secretsKey(2) }).http.consoleSessionKey,
  );
  const token = await one.sign(claims());
  assert.deepEqual(
    await two.verify(token, "session"),
    claims({ exp: (await two.verify(token, "session"))!.exp }),
  );
  assert.equal(await other.verify(token, "session"), null);

  const secret = "s".repeat(32);
  const a = new SessionSigner(
    loadConfig({ CONSOLE_SESSION_SECRET: secret }).http.consoleSessionKey,
  );
  const b = new SessionSigner(
    loadConfig({ CONSOLE_SESSION_SECRET: secret, DISPATCH_SECRETS_KEY: secretsKey(3) }).http
      .consoleSessionKey,
  );
  assert.notEqual(await b.verify(await a.sign(claims()), "session"), null, "the secret wins");
  // Derived, never the sealing key itself.
  const derived = loadConfig({ DISPATCH_SECRETS_KEY: secretsKey(1) });
  assert.notDeepEqual(derived.http.consoleSessionKey, derived.security.secretsKey);
  // Without either, each process draws its own.
  const random = loadConfig({}).http.consoleSessionKey;
  assert.equal(random, null);
  const own = new SessionSigner(null);
  assert.equal(await new SessionSigner(null).verify(await own.sign(claims()), "session"), null);
});

Deno.test("an expired token, a portal link used as a cookie and a token changed by one character are refused", async () => {
  const signer = new SessionSigner(null);
  assert.equal(
    await signer.verify(await signer.sign(claims({ exp: Date.now() - 1 })), "session"),
    null,
  );
  const link = await signer.sign(claims({ use: "portal", actor: "portal" }));
  assert.equal(await signer.verify(link, "session"), null);
  assert.notEqual(await signer.verify(link, "portal"), null);
  const token = await signer.sign(claims());
  const [body, mac] = token.split(".");
  const changed = `${body!.slice(0, -1)}${body!.endsWith("A") ? "B" : "A"}.${mac}`;
  assert.equal(await signer.verify(changed, "session"), null);
  // The signature's last character carries two spare bits: another spelling of it is refused too.
  const last = mac!.at(-1)!;
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const spare = alphabet[alphabet.indexOf(last) ^ 1]!;
  assert.equal(await signer.verify(`${body}.${mac!.slice(0, -1)}${spare}`, "session"), null);
  assert.equal(await signer.verify(`${token}.x`, "session"), null);
  assert.equal(await signer.verify("garbage", "session"), null);
  assert.equal(await signer.isCsrfToken("sid-1", await signer.csrfToken("sid-2")), false);
  assert.equal(await signer.isCsrfToken("sid-1", await signer.csrfToken("sid-1")), true);
});

Deno.test("CONSOLE_FRAME_ANCESTORS takes origins only, and CONSOLE_SESSION_SECRET at least 32 characters", () => {
  assert.deepEqual(
    loadConfig({
      CONSOLE_FRAME_ANCESTORS: "https://app.example.com, https://*.example.org:8443 'self'",
    })
      .http.consoleFrameAncestors,
    ["https://app.example.com", "https://*.example.org:8443", "'self'"],
  );
  for (const bad of ["https://a.example.com; script-src *", "*", "javascript:alert(1)"]) {
    assert.throws(
      () => loadConfig({ CONSOLE_FRAME_ANCESTORS: bad }),
      (err) =>
        err instanceof ConfigError && err.message.startsWith("Invalid CONSOLE_FRAME_ANCESTORS"),
      bad,
    );
  }
  assert.throws(
    () => loadConfig({ CONSOLE_SESSION_SECRET: "short" }),
    (err) =>
      err instanceof ConfigError &&
      err.message ===
        "Invalid CONSOLE_SESSION_SECRET: expected at least 32 characters (openssl rand -base64 32)",
  );
});
