import assert from "node:assert/strict";
import { createSecretCipher, isSealed, parseSecretsKey } from "../../src/security/secret_cipher.ts";

const key = () => crypto.getRandomValues(new Uint8Array(32));

Deno.test("a sealed secret is enc:v1 AES-GCM text that opens to the secret", async () => {
  const cipher = createSecretCipher(key());
  const secret = "whsec_" + crypto.getRandomValues(new Uint8Array(32)).toBase64();
  const sealed = await cipher.seal(secret);
  assert.match(sealed, /^enc:v1:[A-Za-z0-9+/]{16}:[A-Za-z0-9+/=]+$/);
  assert.ok(isSealed(sealed));
  assert.ok(!sealed.includes(secret.slice(6, 20)));
  assert.equal(await cipher.open(sealed), secret);
  assert.notEqual(await cipher.seal(secret), sealed, "each seal has a fresh IV");
});

Deno.test("plaintext secrets stored before a key was set still open", async () => {
  assert.equal(
    await createSecretCipher(key()).open("plain-old-secret-1234"),
    "plain-old-secret-1234",
  );
  const none = createSecretCipher(null);
  assert.equal(await none.seal("stored-as-is-12345"), "stored-as-is-12345");
});

Deno.test("opening with a wrong or missing key fails with a message naming the setting", async () => {
  const sealed = await createSecretCipher(key()).seal("the-secret-value-1");
  await assert.rejects(createSecretCipher(key()).open(sealed), (err: Error) => {
    assert.match(err.message, /DISPATCH_SECRETS_KEY does not decrypt/);
    assert.ok(!err.message.includes("the-secret-value-1"));
    return true;
  });
  await assert.rejects(createSecretCipher(null).open(sealed), /DISPATCH_SECRETS_KEY is unset/);
  const tampered = sealed.slice(0, -4) + (sealed.endsWith("AAA=") ? "BBB=" : "AAA=");
  await assert.rejects(createSecretCipher(key()).open(tampered), /does not decrypt/);
});

Deno.test("opened secrets are cached, and a failure is not", async () => {
  const k = key();
  const cipher = createSecretCipher(k);
  const sealed = await cipher.seal("cached-secret-value");
  const first = cipher.open(sealed);
  assert.equal(cipher.open(sealed), first);
  assert.equal(await first, "cached-secret-value");
  const bad = "enc:v1:AAAAAAAAAAAAAAAA:AAAA";
  const failed = cipher.open(bad);
  await assert.rejects(failed);
  const again = cipher.open(bad);
  assert.notEqual(again, failed);
  await assert.rejects(again);
});

Deno.test("parseSecretsKey takes base64 of exactly 32 bytes", () => {
  const k = key();
  assert.deepEqual(parseSecretsKey(k.toBase64()), k);
  assert.deepEqual(parseSecretsKey(` ${k.toBase64()}\n`), k);
  assert.match(String(parseSecretsKey(key().slice(0, 16).toBase64())), /got 16 bytes/);
  assert.match(String(parseSecretsKey("not base64 at all!")), /expected base64 of 32/);
});
