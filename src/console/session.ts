/**
 * Console sessions and portal links: a JSON payload and its HMAC-SHA-256
 * (Web Crypto), both base64url. The key comes from the config
 * (`CONSOLE_SESSION_SECRET`, else derived from `DISPATCH_SECRETS_KEY`), so
 * every process behind a load balancer honours what another signed; without
 * either, each process draws its own and a session lives in that process only.
 *
 * @module
 */

/** Who a session acts as; the audit log's actor types besides `api_key` use the same words. */
export type SessionActor = "api_key" | "env_key" | "open" | "portal";

export interface SessionClaims {
  /** `session`: a cookie; `portal`: a portal link, which a sign-in turns into a cookie. */
  use: "session" | "portal";
  /** Random: the CSRF token is derived from it. */
  sid: string;
  actor: SessionActor;
  /** The managed API key signed in with (it is checked on every request). */
  keyId?: string;
  /** A DISPATCH_API_KEYS key signed in with: a mark of it, not the key. */
  keyMark?: string;
  tenantId: string | null;
  readOnly: boolean;
  /** Milliseconds since the epoch. */
  exp: number;
}

const encoder = new TextEncoder();

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}

function fromBase64url(text: string): Uint8Array<ArrayBuffer> | null {
  if (!/^[\w-]*$/.test(text)) return null;
  try {
    return Uint8Array.from(
      atob(text.replaceAll("-", "+").replaceAll("_", "/")),
      (c) => c.charCodeAt(0),
    );
  } catch {
    return null;
  }
}

export class SessionSigner {
  #key: Promise<CryptoKey>;

  /** With `secret` null, a random key of this process. */
  constructor(secret: Uint8Array<ArrayBuffer> | null) {
    this.#key = crypto.subtle.importKey(
      "raw",
      secret ?? crypto.getRandomValues(new Uint8Array(32)),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign", "verify"],
    );
  }

  async #mac(text: string): Promise<Uint8Array> {
    return new Uint8Array(await crypto.subtle.sign("HMAC", await this.#key, encoder.encode(text)));
  }

  async #verify(mac: Uint8Array<ArrayBuffer>, text: string): Promise<boolean> {
    return await crypto.subtle.verify("HMAC", await this.#key, mac, encoder.encode(text));
  }

  async sign(claims: SessionClaims): Promise<string> {
    const body = base64url(encoder.encode(JSON.stringify(claims)));
    return `${body}.${base64url(await this.#mac(body))}`;
  }

  /** The claims of a token this key signed, for `use`, not expired at `now`; null otherwise. */
  async verify(
    token: string | undefined,
    use: SessionClaims["use"],
    now = Date.now(),
  ): Promise<SessionClaims | null> {
    const [body, mac, ...rest] = (token ?? "").split(".");
    if (body === undefined || mac === undefined || rest.length > 0) return null;
    const signature = fromBase64url(mac);
    // Only the one spelling of the signature: base64url's last character has spare bits.
    if (signature === null || base64url(signature) !== mac) return null;
    if (!(await this.#verify(signature, body))) return null;
    let claims: SessionClaims;
    try {
      claims = JSON.parse(new TextDecoder().decode(fromBase64url(body)!));
    } catch {
      return null;
    }
    return claims.use === use && claims.exp > now ? claims : null;
  }

  /** The CSRF token of a session: only who holds the key can make it. */
  async csrfToken(sid: string): Promise<string> {
    return base64url(await this.#mac(`csrf:${sid}`));
  }

  /** Whether `token` is the session's CSRF token (compared in constant time by Web Crypto). */
  async isCsrfToken(sid: string, token: string): Promise<boolean> {
    const mac = fromBase64url(token);
    if (mac === null) return false;
    return await this.#verify(mac, `csrf:${sid}`);
  }

  /** A mark of a DISPATCH_API_KEYS key: tells which key a session used without holding it. */
  async keyMark(key: string): Promise<string> {
    return base64url((await this.#mac(`key:${key}`)).slice(0, 16));
  }
}

/** A new session id. */
export function newSid(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(18)));
}
