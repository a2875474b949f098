/**
 * Standard Webhooks signatures: `v1,<base64 HMAC-SHA256>` over `${id}.${timestamp}.${body}`.
 *
 * @module
 */

import { boundedMemo } from "../bounded_memo.ts";

const SECRET_PREFIX = "whsec_";
const KEY_CACHE_LIMIT = 1_000;

const encoder = new TextEncoder();

// Importing a key costs more than the HMAC itself, and the same endpoint secrets sign every
// delivery.
const hmacKey = boundedMemo(KEY_CACHE_LIMIT, (secret) =>
  crypto.subtle.importKey(
    "raw",
    secretBytes(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  ));

/** The content of a webhook message that the signature covers. */
export interface SignedMessage {
  id: string;
  /** Unix time in whole seconds, as sent in the `webhook-timestamp` header. */
  timestamp: number;
  body: string;
}

/**
 * Signs a message with every secret, for the `webhook-signature` header.
 *
 * Several secrets let an endpoint rotate its secret without missing deliveries.
 *
 * @returns Space-separated `v1,<base64>` signatures, one per secret, in order.
 */
export async function sign(secrets: readonly string[], message: SignedMessage): Promise<string> {
  if (secrets.length === 0) {
    throw new TypeError("Expected at least one secret, got none");
  }
  if (!Number.isSafeInteger(message.timestamp)) {
    throw new TypeError(`Expected timestamp in whole unix seconds, got ${message.timestamp}`);
  }
  const content = encoder.encode(`${message.id}.${message.timestamp}.${message.body}`);
  const signatures = await Promise.all(secrets.map(async (secret) => {
    const mac = await crypto.subtle.sign("HMAC", await hmacKey(secret), content);
    return `v1,${new Uint8Array(mac).toBase64()}`;
  }));
  return signatures.join(" ");
}

/** Generates a random secret in the Standard Webhooks `whsec_<base64>` format. */
export function generateSecret(): string {
  return SECRET_PREFIX + crypto.getRandomValues(new Uint8Array(32)).toBase64();
}

function secretBytes(secret: string): Uint8Array<ArrayBuffer> {
  // Web Crypto rejects empty HMAC keys with a vaguer error.
  if (secret === "") throw new TypeError(`Expected a non-empty secret, got ""`);
  if (!secret.startsWith(SECRET_PREFIX)) return encoder.encode(secret);
  // The secret itself stays out of error messages: they end up in logs.
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = Uint8Array.fromBase64(secret.slice(SECRET_PREFIX.length));
  } catch {
    throw new TypeError(
      `Expected base64 after "${SECRET_PREFIX}" in secret, got invalid characters`,
    );
  }
  if (bytes.length === 0) {
    throw new TypeError(`Expected key bytes after "${SECRET_PREFIX}" in secret, got none`);
  }
  return bytes;
}
