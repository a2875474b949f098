/**
 * Encryption at rest of subscription secrets: AES-256-GCM with a random
 * 96-bit IV per secret, stored as `enc:v1:<base64 iv>:<base64 ciphertext+tag>`.
 *
 * @module
 */

import { boundedMemo } from "../bounded_memo.ts";

/** How every encrypted secret starts. */
export const SEALED_PREFIX = "enc:v1:";
const CACHE_LIMIT = 1_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface SecretCipher {
  /** The form to store: encrypted when a key is set, else the secret itself. */
  seal(secret: string): Promise<string>;
  /** The secret from its stored form; plaintext (stored before a key was set) passes through. */
  open(stored: string): Promise<string>;
}

/** Whether a stored secret is encrypted. */
export function isSealed(stored: string): boolean {
  return stored.startsWith(SEALED_PREFIX);
}

/**
 * The key in DISPATCH_SECRETS_KEY, or an error message (which never quotes
 * the value: it is a secret).
 */
export function parseSecretsKey(text: string): Uint8Array<ArrayBuffer> | string {
  let key: Uint8Array<ArrayBuffer>;
  try {
    key = Uint8Array.fromBase64(text.trim());
  } catch {
    return "expected base64 of 32 random bytes, e.g. from `openssl rand -base64 32`";
  }
  if (key.length !== 32) {
    return `expected base64 of 32 bytes, got ${key.length} bytes (try \`openssl rand -base64 32\`)`;
  }
  return key;
}

/** A cipher for the key, or one that stores secrets as they are when there is none. */
export function createSecretCipher(key: Uint8Array<ArrayBuffer> | null): SecretCipher {
  const aes = key && crypto.subtle.importKey("raw", key, "AES-GCM", false, [
    "encrypt",
    "decrypt",
  ]);

  async function decrypt(stored: string): Promise<string> {
    if (aes === null) {
      throw new Error(
        "A subscription secret is encrypted but DISPATCH_SECRETS_KEY is unset: set the key it was encrypted with",
      );
    }
    const [iv = "", data = ""] = stored.slice(SEALED_PREFIX.length).split(":");
    try {
      const plain = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: Uint8Array.fromBase64(iv) },
        await aes,
        Uint8Array.fromBase64(data),
      );
      return decoder.decode(plain);
    } catch {
      throw new Error(
        "DISPATCH_SECRETS_KEY does not decrypt a subscription secret: set the key it was encrypted with",
      );
    }
  }

  // Workers open the same few secrets for every delivery; decrypting each time would be waste.
  const opened = boundedMemo(CACHE_LIMIT, decrypt);

  return {
    async seal(secret) {
      if (aes === null) return secret;
      const iv = crypto.getRandomValues(new Uint8Array(12));
      const data = await crypto.subtle.encrypt(
        { name: "AES-GCM", iv },
        await aes,
        encoder.encode(secret),
      );
      return `${SEALED_PREFIX}${iv.toBase64()}:${new Uint8Array(data).toBase64()}`;
    },
    open(stored) {
      return isSealed(stored) ? opened(stored) : Promise.resolve(stored);
    },
  };
}
