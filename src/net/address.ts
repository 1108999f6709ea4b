/**
 * IP addresses and CIDR blocks as bytes, for the zone rules. Peer addresses
 * come from sockets and headers, so the parsers here never throw: anything
 * they cannot read is `undefined`, and every caller treats that as "refuse"
 * (fail closed). IPv4-mapped IPv6 addresses (`::ffff:10.0.20.7`, what a
 * dual-stack socket reports for an IPv4 peer) are read as the IPv4 address,
 * so a zone written in IPv4 matches them.
 */
import { isIP } from 'node:net';
import { parseCidr } from '../config/index.js';

/** A parsed IP address. `text` is canonical (IPv6 compressed, lower case; mapped IPv4 as dotted quad). */
export interface IpAddress {
  readonly family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  readonly bytes: Uint8Array;
  readonly text: string;
}

/** A parsed CIDR block: the network's bytes (host bits cleared) and the prefix length. */
export interface CidrBlock {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
  readonly prefix: number;
  /** Canonical `address/prefix`. */
  readonly text: string;
}

const MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/**
 * Reads a peer or header address: `10.0.20.7`, `fd00::7`, `::ffff:10.0.20.7`,
 * `fe80::1%eth0` (the zone id is dropped). Anything else is `undefined`.
 */
export function parseIpAddress(raw: unknown): IpAddress | undefined {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > 64) return undefined;
  const percent = raw.indexOf('%');
  const text = percent === -1 ? raw : raw.slice(0, percent);
  // A zone id only belongs on IPv6, and must not be empty.
  if (percent !== -1 && (percent === raw.length - 1 || isIP(text) !== 6)) return undefined;
  const family = isIP(text);
  if (family === 4) return ipv4(text);
  if (family !== 6) return undefined;
  const bytes = ipv6Bytes(text);
  if (!bytes) return undefined;
  if (MAPPED_PREFIX.every((b, i) => bytes[i] === b)) return ipv4(bytes.slice(12).join('.'));
  return { family: 6, bytes, text: formatIpv6(bytes) };
}

/** `10.0.20.0/24`, `fd00:20::/64`, a bare address (one host). Throws a RangeError naming the problem. */
export function parseCidrBlock(text: string): CidrBlock {
  const cidr = parseCidr(text);
  const address = parseIpAddress(cidr.address);
  if (!address) throw new RangeError(`${JSON.stringify(text)} is not a CIDR block like 10.0.20.0/24`);
  let prefix = cidr.prefix;
  // `::ffff:10.0.0.0/104` is written in IPv6 but means IPv4 peers: keep it IPv4 so it matches them.
  if (cidr.family === 6 && address.family === 4) {
    if (prefix < 96) throw new RangeError(`${JSON.stringify(text)}: an IPv4-mapped block needs a prefix of 96 or more`);
    prefix -= 96;
  }
  const bytes = masked(address.bytes, prefix);
  const network = address.family === 4 ? bytes.join('.') : formatIpv6(bytes);
  return { family: address.family, bytes, prefix, text: `${network}/${prefix}` };
}

/** Whether `address` lies in `block` (families must match; mapped IPv4 is IPv4). */
export function cidrContains(block: CidrBlock, address: IpAddress): boolean {
  if (block.family !== address.family) return false;
  let bits = block.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((address.bytes[i] ?? 0) & mask) !== (block.bytes[i] ?? 0)) return false;
  }
  return true;
}

/** Whether every address of `inner` is in `outer`. */
export function cidrCovers(outer: CidrBlock, inner: CidrBlock): boolean {
  return outer.family === inner.family && outer.prefix <= inner.prefix && cidrContains(outer, toAddress(inner));
}

/**
 * What kind of address a bind or peer address is. Everything but `public`
 * and `unspecified` is unreachable from the internet by construction.
 */
export type AddressScope =
  | 'unspecified' // 0.0.0.0, :: (a wildcard bind)
  | 'loopback' // 127.0.0.0/8, ::1
  | 'private' // RFC 1918: 10/8, 172.16/12, 192.168/16
  | 'unique-local' // IPv6 ULA fc00::/7
  | 'link-local' // 169.254/16, fe80::/10
  | 'shared' // RFC 6598 carrier-grade NAT 100.64/10 (Tailscale lives here)
  | 'public';

const SCOPES: ReadonlyArray<[AddressScope, CidrBlock]> = (
  [
    ['unspecified', '0.0.0.0/32'],
    ['unspecified', '::/128'],
    ['loopback', '127.0.0.0/8'],
    ['loopback', '::1/128'],
    ['private', '10.0.0.0/8'],
    ['private', '172.16.0.0/12'],
    ['private', '192.168.0.0/16'],
    ['unique-local', 'fc00::/7'],
    ['link-local', '169.254.0.0/16'],
    ['link-local', 'fe80::/10'],
    ['shared', '100.64.0.0/10'],
  ] as const
).map(([scope, text]) => [scope, parseCidrBlock(text)]);

export function addressScope(address: IpAddress): AddressScope {
  for (const [scope, block] of SCOPES) if (cidrContains(block, address)) return scope;
  return 'public';
}

/** Whether a CIDR block lies wholly in non-public space (loopback, private, ULA, link-local, shared). */
export function isNonPublicBlock(block: CidrBlock): boolean {
  return SCOPES.some(([scope, range]) => scope !== 'unspecified' && cidrCovers(range, block));
}

export function isLoopback(address: IpAddress): boolean {
  return addressScope(address) === 'loopback';
}

function ipv4(text: string): IpAddress {
  return { family: 4, bytes: Uint8Array.from(text.split('.').map(Number)), text };
}

/** Expands a valid IPv6 text (isIP === 6) to 16 bytes. */
function ipv6Bytes(text: string): Uint8Array | undefined {
  let head = text;
  const tail: number[] = [];
  // An embedded IPv4 tail (`::ffff:1.2.3.4`) becomes two groups.
  const lastColon = head.lastIndexOf(':');
  const maybeV4 = head.slice(lastColon + 1);
  if (maybeV4.includes('.')) {
    if (isIP(maybeV4) !== 4) return undefined;
    const [a = 0, b = 0, c = 0, d = 0] = maybeV4.split('.').map(Number);
    tail.push((a << 8) | b, (c << 8) | d);
    head = head.slice(0, lastColon + 1);
    if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1);
  }
  const groups = (part: string) => (part === '' ? [] : part.split(':').map((g) => Number.parseInt(g, 16)));
  const gap = head.indexOf('::');
  let words: number[];
  if (gap === -1) {
    words = [...groups(head), ...tail];
  } else {
    const left = groups(head.slice(0, gap));
    const right = [...groups(head.slice(gap + 2)), ...tail];
    words = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  }
  if (words.length !== 8 || words.some((w) => !(w >= 0 && w <= 0xffff))) return undefined;
  const bytes = new Uint8Array(16);
  words.forEach((w, i) => {
    bytes[i * 2] = w >> 8;
    bytes[i * 2 + 1] = w & 0xff;
  });
  return bytes;
}

/** RFC 5952 text: lower case, the longest run of zero groups (2+) compressed. */
function formatIpv6(bytes: Uint8Array): string {
  const words = Array.from({ length: 8 }, (_, i) => ((bytes[i * 2] ?? 0) << 8) | (bytes[i * 2 + 1] ?? 0));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

function masked(bytes: Uint8Array, prefix: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  let bits = prefix;
  for (let i = 0; i < bytes.length && bits > 0; i++, bits -= 8) {
    out[i] = (bytes[i] ?? 0) & (bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff);
  }
  return out;
}

function toAddress(block: CidrBlock): IpAddress {
  return { family: block.family, bytes: block.bytes, text: block.text };
}
