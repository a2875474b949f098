/**
 * The OAuth 2.0 client credentials grant (RFC 6749 §4.4): one token request
 * to a subscription's `token_url`, through the same guarded connection as a
 * delivery (SSRF guard, address pinned), with the delivery timeout.
 *
 * @module
 */
import type { EndpointAuth } from "../engine/shapes.ts";
import { VERSION } from "../version.ts";
import {
  clip,
  type GuardedConnection,
  guardedConnection,
  networkFailure,
  readPrefix,
  type SendOptions,
} from "./send.ts";

export type OAuth2Auth = Extract<EndpointAuth, { type: "oauth2_client_credentials" }>;

/** A token, and for how long the token endpoint says it is good (null: it did not say). */
export interface AccessToken {
  token: string;
  expiresInS: number | null;
}

/** Why no token came. Never holds a token: a 2xx answer's body is not kept. */
export interface TokenFailure {
  error: string;
  /** The token endpoint's status; null when it did not answer. */
  statusCode: number | null;
  /** The first {@linkcode MAX_FAILED_ANSWER_BYTES} of a failed (not 2xx) answer. */
  responseBody: string | null;
}

/** What is recorded of a failed answer, as of a delivery's. */
const MAX_FAILED_ANSWER_BYTES = 4096;

/** A token answer is small; one this long is read no further. */
const MAX_TOKEN_ANSWER_BYTES = 65_536;

/**
 * Requests an access token. Every failure is a value; it rejects only when
 * `options.signal` (shutdown) aborted it, which the caller checks.
 */
export async function requestToken(
  auth: OAuth2Auth,
  clientSecret: string,
  options: Pick<SendOptions, "timeoutMs" | "signal" | "checkTarget" | "client">,
): Promise<AccessToken | TokenFailure> {
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal === undefined
    ? timeout
    : AbortSignal.any([timeout, options.signal]);
  const host = URL.parse(auth.token_url)?.host ?? auth.token_url;
  const failed = (error: string, statusCode: number | null = null, body: string | null = null) => ({
    error: clip(`Token request to "${host}" ${error}`, 1024),
    statusCode,
    responseBody: body === null ? null : clip(redact(body, clientSecret), MAX_FAILED_ANSWER_BYTES),
  });
  let connection: GuardedConnection | null = null;
  try {
    const checked = await guardedConnection(auth.token_url, {
      checkTarget: options.checkTarget,
      client: options.client,
      signal,
    });
    if ("errorClass" in checked) return failed(`refused: ${checked.error}`);
    connection = checked;
    const response = await connection.fetch(tokenRequest(auth, clientSecret));
    const body = await readPrefix(response.body, MAX_TOKEN_ANSWER_BYTES);
    if (response.status < 200 || response.status >= 300) {
      return failed(`answered ${response.status}`, response.status, body);
    }
    const token = parseTokenAnswer(body);
    return token ?? failed("answered without an access_token", response.status);
  } catch (error) {
    if (options.signal?.aborted && !timeout.aborted) throw error;
    return failed(
      timeout.aborted
        ? `timed out after ${options.timeoutMs} ms`
        : `failed: ${networkFailure(error, auth.token_url).error}`,
    );
  } finally {
    await connection?.close();
  }
}

/** The form POST, with the client's credentials in HTTP Basic (the default) or in the form. */
function tokenRequest(auth: OAuth2Auth, clientSecret: string) {
  const form = new URLSearchParams({ grant_type: "client_credentials" });
  if (auth.scope !== null) form.set("scope", auth.scope);
  if (auth.audience !== null) form.set("audience", auth.audience);
  const headers: Record<string, string> = {
    "content-type": "application/x-www-form-urlencoded",
    accept: "application/json",
    "user-agent": `Dispatch/${VERSION}`,
  };
  if (auth.client_auth === "post") {
    form.set("client_id", auth.client_id);
    form.set("client_secret", clientSecret);
  } else {
    // RFC 6749 §2.3.1: each is form-encoded before they are joined.
    const encode = (s: string) => new URLSearchParams({ s }).toString().slice(2);
    headers.authorization = basicAuthorization(encode(auth.client_id), encode(clientSecret));
  }
  return { method: "POST", headers, body: form.toString() };
}

/** `Basic` credentials (RFC 7617), UTF-8. */
export function basicAuthorization(user: string, password: string): string {
  return `Basic ${new TextEncoder().encode(`${user}:${password}`).toBase64()}`;
}

function parseTokenAnswer(body: string | null): AccessToken | null {
  let answer: unknown;
  try {
    answer = JSON.parse(body ?? "");
  } catch {
    return null;
  }
  if (typeof answer !== "object" || answer === null) return null;
  const { access_token: token, expires_in: expiresIn } = answer as Record<string, unknown>;
  // It goes into a header as it is: one that cannot is no token (b64token, RFC 6750 §2.1, is stricter).
  if (typeof token !== "string" || !/^[\x21-\x7e]+$/.test(token)) return null;
  // Some servers send it as a string of digits.
  const seconds = typeof expiresIn === "string" && /^\d+$/.test(expiresIn)
    ? Number(expiresIn)
    : expiresIn;
  return {
    token,
    expiresInS: typeof seconds === "number" && Number.isFinite(seconds) && seconds >= 0
      ? seconds
      : null,
  };
}

/** A failed answer may quote the request: the client secret never goes into a record. */
function redact(text: string, secret: string): string {
  const forms = new Set([
    secret,
    encodeURIComponent(secret),
    new URLSearchParams({ s: secret })
      .toString().slice(2),
  ]);
  let out = text;
  for (const form of forms) out = out.replaceAll(form, "[redacted]");
  return out;
}
