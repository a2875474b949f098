/**
 * IP address literals and CIDR ranges as bytes: 4 for IPv4, 16 for IPv6.
 *
 * Parsing is strict (dotted decimal without leading zeros, RFC 4291 text for
 * IPv6, no zone ids): it reads what `new URL()` normalises hosts to, DNS
 * answers and operator settings, where anything looser is a mistake.
 *
 * @module
 */

export type IpAddress = Uint8Array;

/** A range of addresses; prints (and logs) as `address/prefix`. */
export class Cidr {
  constructor(readonly address: IpAddress, readonly prefix: number) {}

  toString(): string {
    return `${formatIp(this.address)}/${this.prefix}`;
  }

  toJSON(): string {
    return this.toString();
  }
}

const ipv4Pattern = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** An IPv4 or IPv6 literal (IPv6 without brackets), or null when it is neither. */
export function parseIp(text: string): IpAddress | null {
  if (ipv4Pattern.test(text)) return new Uint8Array(text.split(".").map(Number));
  return text.includes(":") ? parseIpv6(text) : null;
}

function parseIpv6(text: string): IpAddress | null {
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const head = words(halves[0]!, halves.length === 1);
  const tail = halves.length === 2 ? words(halves[1]!, true) : [];
  if (head === null || tail === null) return null;
  const zeros = 8 - head.length - tail.length;
  // "::" stands for at least one zero word; without it there must be exactly eight.
  if (halves.length === 2 ? zeros < 1 : zeros !== 0) return null;
  const all = [...head, ...new Array<number>(zeros).fill(0), ...tail];
  return new Uint8Array(all.flatMap((w) => [w >> 8, w & 0xff]));
}

/** 16-bit words of colon-separated groups; the last may be an IPv4 address. */
function words(text: string, last: boolean): number[] | null {
  if (text === "") return [];
  const groups = text.split(":");
  const out: number[] = [];
  for (const [i, group] of groups.entries()) {
    if (last && i === groups.length - 1 && group.includes(".")) {
      const v4 = parseIp(group);
      if (v4 === null || v4.length !== 4) return null;
      out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
    } else if (/^[0-9a-f]{1,4}$/i.test(group)) {
      out.push(parseInt(group, 16));
    } else {
      return null;
    }
  }
  return out;
}

/** Text form: dotted decimal, or IPv6 with the longest run of zero words compressed. */
export function formatIp(address: IpAddress): string {
  if (address.length === 4) return address.join(".");
  const w = Array.from({ length: 8 }, (_, i) => (address[2 * i]! << 8) | address[2 * i + 1]!);
  let best = { at: -1, length: 1 };
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > best.length) best = { at: i, length: j - i };
    i = j === i ? i + 1 : j;
  }
  const hex = w.map((x) => x.toString(16));
  if (best.at < 0) return hex.join(":");
  const head = hex.slice(0, best.at).join(":");
  const tail = hex.slice(best.at + best.length).join(":");
  return `${head}::${tail}`;
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
  const max = address.length * 8;
  if (bits === undefined) return new Cidr(address, max);
  const prefix = /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
  if (!(prefix <= max)) return `"${text}" has a prefix length outside 0 to ${max}`;
  const network = mask(address, prefix);
  if (!network.every((b, i) => b === address[i])) {
    return `"${text}" has host bits set: did you mean "${formatIp(network)}/${prefix}"?`;
  }
  return new Cidr(address, prefix);
}

/** Whether the range holds the address; an IPv4 range never holds an IPv6 address. */
export function inCidr(address: IpAddress, cidr: Cidr): boolean {
  if (address.length !== cidr.address.length) return false;
  const network = mask(address, cidr.prefix);
  return network.every((b, i) => b === cidr.address[i]);
}

function mask(address: IpAddress, prefix: number): IpAddress {
  return address.map((b, i) => {
    const keep = Math.max(0, Math.min(8, prefix - 8 * i));
    return b & (0xff << (8 - keep));
  });
}
