/**
 * The Deno side of the SSRF guard's DNS look-ups, kept apart so the guard is
 * plain TypeScript.
 *
 * @module
 */
import type { Resolver } from "./ssrf.ts";

/**
 * A and AAAA records of a name (and /etc/hosts). A name with records of one
 * family only is normal; any other failure rejects, so the guard never
 * judges a host on half its addresses.
 */
export const resolveWithDeno: Resolver = async (hostname, signal) => {
  const lookups = await Promise.allSettled(
    (["A", "AAAA"] as const).map((type) => Deno.resolveDns(hostname, type, { signal })),
  );
  const addresses = lookups.flatMap((l) => l.status === "fulfilled" ? l.value : []);
  const failures = lookups.flatMap((l) => l.status === "rejected" ? [l.reason] : []);
  const real = failures.find((e) => !(e instanceof Deno.errors.NotFound));
  if (real !== undefined) throw real;
  if (addresses.length === 0) throw new Error("no A or AAAA records");
  return addresses;
};
