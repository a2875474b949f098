/**
 * A subscription's `auth` as the API takes it in: its secret part split off
 * and sealed.
 *
 * @module
 */
import type { EndpointAuth } from "../../engine/shapes.ts";
import { hasAuthorizationHeader } from "../../views/custom_headers.ts";
import type { SecretCipher } from "../../security/secret_cipher.ts";
import { validationError } from "../error_handler.ts";
import type { EndpointAuthInput } from "../schemas.ts";

/** `auth` as stored: what the API shows, and the secret part sealed apart. */
export async function storedAuth(
  input: EndpointAuthInput | null,
  secrets: SecretCipher,
): Promise<{ auth: EndpointAuth | null; auth_secret: string | null }> {
  if (input === null) return { auth: null, auth_secret: null };
  const sealed = (secret: string) => secrets.seal(secret);
  switch (input.type) {
    case "basic":
      return {
        auth: { type: "basic", username: input.username },
        auth_secret: await sealed(input.password),
      };
    case "bearer":
      return { auth: { type: "bearer" }, auth_secret: await sealed(input.token) };
    case "oauth2_client_credentials": {
      const { client_secret, scope, audience, ...shown } = input;
      return {
        auth: { ...shown, scope: scope ?? null, audience: audience ?? null },
        auth_secret: await sealed(client_secret),
      };
    }
  }
}

/**
 * A custom `authorization` header (the subscription's `headers`) and `auth`
 * would both set one header: refused, naming `auth`. Called with the values
 * the subscription will have once the request is applied.
 */
export function assertOneAuthorization(
  auth: unknown,
  headers: Record<string, string> | null | undefined,
): void {
  if (auth === null || auth === undefined || !hasAuthorizationHeader(headers)) return;
  throw validationError([{
    path: ["auth"],
    message: 'cannot be set with a custom "authorization" header: remove one of them',
  }], "json");
}
