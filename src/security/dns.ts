/**
 * The Deno side of the SSRF guard's DNS look-ups, kept apart so the guard is
 * plain TypeScript.
 *
 * @module
 */

/** Options for {@linkcode resolveWithDeno}. */
export interface ResolveOptions {
  /** The DNS server to ask (UDP, port 53 by default); the system's resolver when unset. */
  nameServer?: { ipAddr: string; port?: number };
}

/**
 * A and AAAA records of a name. A name with records of one family only is
 * normal; any other failure (a timeout, the signal) rejects, so the guard
 * never judges a host on half its addresses. Deno reports a SERVFAIL answer
 * as no records, so a family whose server fails counts as one without
 * records.
 *
 * Without `options` it is the guard's `Resolver`; they are for tests.
 */
export async function resolveWithDeno(
  hostname: string,
  signal: AbortSignal,
  options: ResolveOptions = {},
): Promise<string[]> {
  const lookups = await Promise.allSettled(
    (["A", "AAAA"] as const).map((type) => Deno.resolveDns(hostname, type, { ...options, signal })),
  );
  const addresses = lookups.flatMap((l) => l.status === "fulfilled" ? l.value : []);
  const failures = lookups.flatMap((l) => l.status === "rejected" ? [l.reason] : []);
  const real = failures.find((e) => !(e instanceof Deno.errors.NotFound));
  if (real !== undefined) throw real;
  if (addresses.length === 0) throw new Error("no A or AAAA records");
  return addresses;
}
