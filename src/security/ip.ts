/**
 * IP address literals and CIDR ranges, read and matched by ipaddr.js.
 *
 * Parsing is strict (dotted decimal without leading zeros, RFC 4291 text for
 * IPv6, no zone ids): it reads what `new URL()` normalises hosts to, DNS
 * answers and operator settings, where anything looser is a mistake.
 *
 * @module
 */
import ipaddr from "ipaddr.js";

export type IpAddress = ipaddr.IPv4 | ipaddr.IPv6;

/** A range of addresses; prints (and logs) as `address/prefix`. */
export class Cidr {
  constructor(readonly address: IpAddress, readonly prefix: number) {}

  toString(): string {
    return `${this.address}/${this.prefix}`;
  }

  toJSON(): string {
    return this.toString();
  }
}

/** The dotted IPv4 tail of an IPv6 text, e.g. "::ffff:10.0.0.1". */
const dottedTail = /^(.*:)([^:]*\.[^:]*)$/;

/** An IPv4 or IPv6 literal (IPv6 without brackets), or null when it is neither. */
export function parseIp(text: string): IpAddress | null {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return ipaddr.IPv4.parse(text);
  return text.includes(":") ? parseIpv6(text) : null;
}

function parseIpv6(text: string): ipaddr.IPv6 | null {
  // ipaddr.js also reads zone ids, hex or zero-padded IPv4 tails, and "::a.b.c.d"
  // as if it were "::ffff:a.b.c.d": refuse the first two, and hand it the tail as hex.
  if (text.includes("%")) return null;
  let hex = text;
  const tail = dottedTail.exec(text);
  if (tail !== null) {
    if (!ipaddr.IPv4.isValidFourPartDecimal(tail[2]!)) return null;
    const [a, b, c, d] = ipaddr.IPv4.parse(tail[2]!).octets as [number, number, number, number];
    hex = `${tail[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  return ipaddr.IPv6.isValid(hex) ? ipaddr.IPv6.parse(hex) : null;
}

/**
 * `address/prefix`, or a bare address meaning that one host. Returns an error
 * message instead when the text is not one, or has bits set past the prefix.
 */
export function parseCidr(text: string): Cidr | string {
  const [host = "", bits, ...rest] = text.split("/");
  const address = parseIp(host);
  if (address === null || rest.length > 0) {
    return `"${text}" is not a CIDR range: expected e.g. "10.0.0.0/8" or "fd00::/8"`;
  }
  const max = address.kind() === "ipv4" ? 32 : 128;
  if (bits === undefined) return new Cidr(address, max);
  const prefix = /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
  if (!(prefix <= max)) return `"${text}" has a prefix length outside 0 to ${max}`;
  const family = address.kind() === "ipv4" ? ipaddr.IPv4 : ipaddr.IPv6;
  const network = family.networkAddressFromCIDR(`${address}/${prefix}`);
  if (network.toString() !== address.toString()) {
    return `"${text}" has host bits set: did you mean "${network}/${prefix}"?`;
  }
  return new Cidr(address, prefix);
}

/** Whether the range holds the address; an IPv4 range never holds an IPv6 address. */
export function inCidr(address: IpAddress, cidr: Cidr): boolean {
  return address.kind() === cidr.address.kind() && address.match(cidr.address, cidr.prefix);
}
