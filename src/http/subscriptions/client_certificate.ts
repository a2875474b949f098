/**
 * A subscription's client certificate as the API takes it: checked, described,
 * and its key sealed before it is stored.
 *
 * @module
 */
import type { StoredClientCertificate } from "../../engine/subscriptions.ts";
import { checkClientCertificate, isProblem } from "../../security/client_certificate.ts";
import type { SecretCipher } from "../../security/secret_cipher.ts";
import { validationError } from "../error_handler.ts";

/**
 * What to store for `tls_client_certificate` (null removes it, undefined leaves
 * it); a 400 naming `tls_client_certificate.cert` or `.key` when it cannot be used.
 */
export async function storedCertificate(
  given: { cert: string; key: string } | null | undefined,
  secrets: SecretCipher,
): Promise<StoredClientCertificate | null | undefined> {
  if (given === null || given === undefined) return given;
  const checked = checkClientCertificate(given);
  if (isProblem(checked)) {
    throw validationError(
      [{ path: ["tls_client_certificate", checked.field], message: checked.message }],
      "json",
    );
  }
  return { summary: checked, cert: given.cert, key: await secrets.seal(given.key) };
}
