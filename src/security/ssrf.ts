/**
 * SSRF guard: which delivery targets are refused, checked on the URL when a
 * subscription is written and on the resolved addresses before each delivery.
 *
 * @module
 */
import type { CheckedTarget } from "../delivery/send.ts";
import ipaddr from "ipaddr.js";
import { type Cidr, inCidr, type IpAddress, parseCidr, parseIp } from "./ip.ts";

/** Kinds of address that are not the public internet. */
export type AddressKind =
  | "unspecified"
  | "loopback"
  | "private"
  | "carrier-grade NAT"
  | "link-local"
  | "multicast"
  | "broadcast"
  | "reserved"
  | "IPv6 transition";

export interface TargetPolicy {
  /** Allow every target, skipping DNS look-ups (development default). */
  allowPrivateTargets: boolean;
  /** Ranges allowed even when private targets are not. */
  allowedTargetCidrs: readonly Cidr[];
}

/** Resolves a host name to its IP addresses (A and AAAA); rejects when it has none. */
export type Resolver = (hostname: string, signal: AbortSignal) => Promise<string[]>;

// First match wins, so more specific ranges come first.
const ranges: [Cidr, AddressKind][] = ([
  ["0.0.0.0/8", "unspecified"],
  ["10.0.0.0/8", "private"],
  ["100.64.0.0/10", "carrier-grade NAT"],
  ["127.0.0.0/8", "loopback"],
  ["169.254.0.0/16", "link-local"],
  ["172.16.0.0/12", "private"],
  ["192.0.0.0/24", "reserved"],
  ["192.0.2.0/24", "reserved"],
  ["192.168.0.0/16", "private"],
  ["198.18.0.0/15", "reserved"],
  ["198.51.100.0/24", "reserved"],
  ["203.0.113.0/24", "reserved"],
  ["224.0.0.0/4", "multicast"],
  ["255.255.255.255/32", "broadcast"],
  ["240.0.0.0/4", "reserved"],
  ["::/128", "unspecified"],
  ["::1/128", "loopback"],
  // Teredo, and NAT64 for local use (RFC 8215): they tunnel to addresses that cannot be checked.
  ["2001::/32", "IPv6 transition"],
  ["64:ff9b:1::/48", "IPv6 transition"],
  ["::/8", "reserved"],
  ["100::/64", "reserved"],
  ["2001:db8::/32", "reserved"],
  ["fc00::/7", "private"],
  ["fe80::/10", "link-local"],
  ["fec0::/10", "private"],
  ["ff00::/8", "multicast"],
] as const).map(([text, kind]) => [parseCidr(text) as Cidr, kind]);

// IPv6 ranges that carry an IPv4 address and reach it: mapped, NAT64 and 6to4.
const embedding: [Cidr, number][] = ([
  ["::ffff:0:0/96", 12],
  ["64:ff9b::/96", 12],
  ["2002::/16", 2],
] as const).map(([text, offset]) => [parseCidr(text) as Cidr, offset]);

/** The IPv4 address an IPv6 address stands for, if it embeds one. */
function embeddedIpv4(address: IpAddress): IpAddress | null {
  for (const [range, offset] of embedding) {
    if (inCidr(address, range)) {
      return new ipaddr.IPv4(address.toByteArray().slice(offset, offset + 4));
    }
  }
  return null;
}

/**
 * What kind of non-public address this is, or null for a public one. An IPv6
 * address that carries an IPv4 one is named by it when that is not public,
 * and is a transition address otherwise: it reaches the internet through a
 * relay or translator, where an endpoint needs no such detour.
 */
export function classifyAddress(address: IpAddress): AddressKind | null {
  const v4 = embeddedIpv4(address);
  if (v4 === null) return ranges.find(([range]) => inCidr(address, range))?.[1] ?? null;
  return ranges.find(([range]) => inCidr(v4, range))?.[1] ?? "IPv6 transition";
}

/** The kind that makes the address refused under the policy, or null when it is allowed. */
export function refusedKind(address: IpAddress, policy: TargetPolicy): AddressKind | null {
  if (policy.allowPrivateTargets) return null;
  const kind = classifyAddress(address);
  if (kind === null) return null;
  const v4 = embeddedIpv4(address);
  const allowed = policy.allowedTargetCidrs.some((c) =>
    inCidr(address, c) || (v4 !== null && inCidr(v4, c))
  );
  return allowed ? null : kind;
}

/**
 * The addresses of a URL host that needs no DNS: an IP literal, or
 * `localhost` and `*.localhost`, which are always loopback (RFC 6761).
 * Null for any other name.
 */
export function literalAddresses(hostname: string): IpAddress[] | null {
  const host = hostname.toLowerCase().replace(/\.$/, "");
  if (host === "localhost" || host.endsWith(".localhost")) return [parseIp("127.0.0.1")!];
  const address = parseIp(unbracket(host));
  return address === null ? null : [address];
}

/** A URL's IPv6 host without its brackets. */
const unbracket = (host: string) => host.replace(/^\[(.*)\]$/, "$1");

/**
 * Why delivering to these addresses of `host` is refused, or null when every
 * one is allowed. One refused address refuses the host: the connection may
 * use any of them.
 */
function refusal(host: string, addresses: IpAddress[], policy: TargetPolicy): string | null {
  for (const address of addresses) {
    const kind = refusedKind(address, policy);
    if (kind === null) continue;
    const ip = address.toString();
    const where = unbracket(host) === ip ? `"${host}"` : `"${host}" (${ip})`;
    return `${where}: ${kind} targets are not allowed ` +
      "(set ALLOW_PRIVATE_TARGETS=true or ALLOWED_TARGET_CIDRS)";
  }
  return null;
}

/**
 * For a subscription URL: why its host is refused, when that is known without
 * DNS (IP literals, localhost); otherwise null. Names are checked at delivery,
 * since what they resolve to can change.
 */
export function urlRefusal(url: string, policy: TargetPolicy): string | null {
  if (policy.allowPrivateTargets) return null;
  const host = URL.parse(url)?.hostname;
  if (host === undefined) return null;
  const addresses = literalAddresses(host);
  return addresses === null ? null : refusal(host, addresses, policy);
}

/**
 * The check run before each delivery: resolves the host and refuses it when
 * any address is not allowed; otherwise answers the address to connect to
 * (the first one checked), so that no second look-up can answer another.
 * Undefined when every target is allowed, so that no DNS look-up is made.
 */
export function targetCheck(
  policy: TargetPolicy,
  resolve: Resolver,
): ((url: string, signal: AbortSignal) => Promise<CheckedTarget>) | undefined {
  if (policy.allowPrivateTargets) return undefined;
  return async (url, signal) => {
    const host = new URL(url).hostname;
    // An IP literal is where fetch connects anyway; `localhost` names are pinned to loopback.
    const literal = parseIp(unbracket(host)) !== null;
    let addresses = literalAddresses(host);
    if (addresses === null) {
      let answers: string[];
      try {
        answers = await resolve(host, signal);
      } catch (err) {
        if (signal.aborted) throw err;
        const why = err instanceof Error ? err.message : String(err);
        return { errorClass: "dns", error: `Could not resolve "${host}": ${why}` };
      }
      const parsed = answers.map(parseIp);
      if (parsed.includes(null) || parsed.length === 0) {
        return { errorClass: "dns", error: `Could not resolve "${host}" to IP addresses` };
      }
      addresses = parsed as IpAddress[];
    }
    const why = refusal(host, addresses, policy);
    if (why !== null) return { errorClass: "blocked", error: `Refused to deliver to ${why}` };
    return { address: literal ? null : addresses[0]!.toString() };
  };
}
