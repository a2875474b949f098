/**
 * Client certificates that deliveries present (mutual TLS): checked when a
 * subscription is written, and described for the API without the key.
 *
 * @module
 */
import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { ConfigError } from "../config.ts";
import type { CertificateSummary } from "../views/subscriptions.ts";

/** Why a certificate and key cannot be used, naming the part at fault. */
export interface CertificateProblem {
  field: "cert" | "key";
  message: string;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/**
 * The summary of a PEM chain (leaf first) and its private key, or why they
 * cannot be used: a block that is not a certificate, a key that does not parse
 * (or has a passphrase), a key that is not the leaf's.
 */
export function checkClientCertificate(
  pem: { cert: string; key: string },
): CertificateSummary | CertificateProblem {
  const blocks = pem.cert.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) {
    return { field: "cert", message: "expected a PEM certificate (-----BEGIN CERTIFICATE-----)" };
  }
  const chain: X509Certificate[] = [];
  for (const [i, block] of blocks.entries()) {
    try {
      chain.push(new X509Certificate(block));
    } catch {
      return { field: "cert", message: `certificate ${i + 1} of the chain does not parse` };
    }
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem.key);
  } catch {
    return {
      field: "key",
      message: "expected an unencrypted PEM private key (PKCS #8, PKCS #1 or SEC 1)",
    };
  }
  const leaf = chain[0]!;
  if (!leaf.checkPrivateKey(key)) {
    return { field: "key", message: `does not match the certificate "${oneLine(leaf.subject)}"` };
  }
  return summarize(leaf);
}

/** Whether the answer of {@linkcode checkClientCertificate} is a problem. */
export function isProblem(
  checked: CertificateSummary | CertificateProblem,
): checked is CertificateProblem {
  return "field" in checked;
}

/**
 * The CA certificates of DELIVERY_CA_FILE (none when unset), each checked: a
 * file that cannot be read, holds none, or holds one that does not parse
 * stops start-up with a {@linkcode ConfigError} naming the setting.
 */
export async function readCaFile(path: string | null): Promise<string[]> {
  if (path === null) return [];
  const bad = (why: string) => new ConfigError(`Invalid DELIVERY_CA_FILE "${path}": ${why}`);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw bad(`cannot be read (${err instanceof Error ? err.message : err})`);
  }
  const blocks = text.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw bad("it holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
  for (const [i, block] of blocks.entries()) {
    try {
      new X509Certificate(block);
    } catch {
      throw bad(`certificate ${i + 1} does not parse`);
    }
  }
  return blocks;
}

function summarize(cert: X509Certificate): CertificateSummary {
  return {
    subject: oneLine(cert.subject),
    issuer: oneLine(cert.issuer),
    not_after: new Date(cert.validTo).toISOString(),
    fingerprint_sha256: cert.fingerprint256,
  };
}

/** Node writes a name one attribute a line. */
const oneLine = (name: string) => name.split("\n").join(", ");
