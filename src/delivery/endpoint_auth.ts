/**
 * An attempt to an endpoint that wants authentication: `Authorization: Basic`
 * or `Bearer` with the subscription's credentials, or a Bearer OAuth token
 * (kept in a {@linkcode TokenCache}) fetched again once when the endpoint
 * answers 401. A token request that fails fails the attempt as `auth_failed`.
 *
 * @module
 */
import type { EndpointAuth } from "../engine/shapes.ts";
import { basicAuthorization, requestToken, type TokenFailure } from "./oauth_token.ts";
import { type AttemptResult, send, type SendOptions, type WebhookRequest } from "./send.ts";
import type { TokenCache } from "./token_cache.ts";

/** A subscription's auth with its secret part opened. */
export interface EndpointCredentials {
  auth: EndpointAuth;
  /** The password, token or client secret. */
  secret: string;
  /** Whose tokens these are (the subscription) and which auth they are for. */
  cacheKey: string;
  version: string;
}

/** As {@linkcode send}, with the endpoint's credentials. */
export async function sendAuthenticated(
  request: WebhookRequest,
  credentials: EndpointCredentials | null,
  options: SendOptions & { tokens: TokenCache },
): Promise<AttemptResult | null> {
  if (credentials === null) return await send(request, options);
  const { auth, secret } = credentials;
  if (auth.type === "basic") {
    return await send(authorized(request, basicAuthorization(auth.username, secret)), options);
  }
  if (auth.type === "bearer") return await send(authorized(request, `Bearer ${secret}`), options);

  const startedAt = new Date((options.now ?? Date.now)());
  const start = performance.now();
  const token = () =>
    options.tokens.get(
      credentials.cacheKey,
      credentials.version,
      () => requestToken(auth, secret, options),
    );
  // It rejects only when shutdown cut the token request off: nothing was sent, the claim goes back.
  let answer = await token().catch(() => null);
  if (answer === null) return null;
  if (!("token" in answer)) return authFailed(answer, startedAt, start);
  const first = await send(authorized(request, `Bearer ${answer.token}`), options);
  if (first?.statusCode !== 401) return first;
  // The token may have been revoked before it expired: one new one, once.
  options.tokens.forget(credentials.cacheKey, answer.token);
  answer = await token().catch(() => null);
  if (answer === null) return first;
  if (!("token" in answer)) return authFailed(answer, startedAt, start);
  return await send(authorized(request, `Bearer ${answer.token}`), options) ?? first;
}

function authorized(request: WebhookRequest, authorization: string): WebhookRequest {
  return { ...request, headers: { ...request.headers, authorization } };
}

/** The attempt, failed for want of a token, with the token endpoint's status and answer. */
function authFailed(failure: TokenFailure, startedAt: Date, start: number): AttemptResult {
  return {
    startedAt,
    durationMs: Math.max(0, Math.round(performance.now() - start)),
    statusCode: failure.statusCode,
    ok: false,
    errorClass: "auth_failed",
    error: failure.error,
    responseBody: failure.responseBody,
    responseHeaders: {},
    retryAfterMs: null,
  };
}
