import assert from "node:assert/strict";
import { Webhook } from "standardwebhooks";
import { generateSecret, sign } from "../../src/delivery/signature.ts";

function message(body = '{"type":"invoice.paid"}') {
  // standardwebhooks rejects timestamps more than five minutes from now.
  return { id: "msg_2b9XoM5Yq", timestamp: Math.floor(Date.now() / 1000), body };
}

function headers(msg: { id: string; timestamp: number }, signature: string) {
  return {
    "webhook-id": msg.id,
    "webhook-timestamp": String(msg.timestamp),
    "webhook-signature": signature,
  };
}

Deno.test("sign() produces a signature that standardwebhooks verifies for a whsec_ secret", async () => {
  const secret = generateSecret();
  const msg = message();
  const signature = await sign([secret], msg);

  assert.match(signature, /^v1,[A-Za-z0-9+/]{43}=$/);
  assert.deepEqual(
    new Webhook(secret).verify(msg.body, headers(msg, signature)),
    JSON.parse(msg.body),
  );
});

Deno.test("sign() keys a secret without the whsec_ prefix with its UTF-8 bytes", async () => {
  const rawSecret = "my-raw-secret-value-123";
  const msg = message();
  const signature = await sign([rawSecret], msg);

  new Webhook(rawSecret, { format: "raw" }).verify(msg.body, headers(msg, signature));
});

Deno.test("sign() produces one signature per secret, each of which verifies", async () => {
  const secrets = [generateSecret(), "previous-raw-secret"];
  const msg = message();
  const signature = await sign(secrets, msg);

  const parts = signature.split(" ");
  assert.equal(parts.length, 2);
  for (const part of parts) assert.match(part, /^v1,\S+$/);
  new Webhook(secrets[0]!).verify(msg.body, headers(msg, parts[0]!));
  new Webhook(secrets[1]!, { format: "raw" }).verify(msg.body, headers(msg, parts[1]!));
  // Each secret is checked on its own: the other secret's signature must not verify.
  assert.throws(() => new Webhook(secrets[0]!).verify(msg.body, headers(msg, parts[1]!)), {
    message: "No matching signature found",
  });
});

Deno.test("sign() signatures are rejected when the body, timestamp or id is tampered with", async () => {
  const secret = generateSecret();
  const webhook = new Webhook(secret);
  const msg = message();
  const signature = await sign([secret], msg);
  const mismatch = { message: "No matching signature found" };

  assert.throws(() => webhook.verify(`${msg.body} `, headers(msg, signature)), mismatch);
  assert.throws(
    () => webhook.verify(msg.body, headers({ ...msg, timestamp: msg.timestamp - 1 }, signature)),
    mismatch,
  );
  assert.throws(
    () => webhook.verify(msg.body, headers({ ...msg, id: "msg_other" }, signature)),
    mismatch,
  );
});

Deno.test("sign() gives the same signature on repeated calls with a cached key", async () => {
  const secret = generateSecret();
  const msg = message();

  const [first, second] = await Promise.all([sign([secret], msg), sign([secret], msg)]);
  assert.equal(first, second);
  assert.equal(await sign([secret], msg), first);
});

Deno.test("sign() rejects an empty secret list and malformed secrets", async () => {
  const msg = message();

  await assert.rejects(sign([], msg), { message: "Expected at least one secret, got none" });
  await assert.rejects(sign([""], msg), { message: 'Expected a non-empty secret, got ""' });
  await assert.rejects(sign(["whsec_not*base64"], msg), /Expected base64 after "whsec_"/);
  await assert.rejects(sign(["whsec_"], msg), /Expected key bytes after "whsec_"/);
  await assert.rejects(
    sign([generateSecret()], { ...msg, timestamp: 1.5 }),
    { message: "Expected timestamp in whole unix seconds, got 1.5" },
  );
});

Deno.test("sign() does not put the secret in its error messages", async () => {
  const secret = "whsec_c2VjcmV0*leak";

  await assert.rejects(sign([secret], message()), (error: Error) => {
    assert.ok(!error.message.includes("leak"));
    return true;
  });
});

Deno.test("generateSecret() returns whsec_ and the base64 of 32 random bytes", () => {
  const secret = generateSecret();

  assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
  assert.equal(Uint8Array.fromBase64(secret.slice("whsec_".length)).length, 32);
  assert.notEqual(generateSecret(), secret);
});
