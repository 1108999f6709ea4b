/**
 * Parsers for the value types the configuration uses: byte sizes, durations,
 * CIDR blocks and listen addresses. They throw a `RangeError` whose message
 * describes the value and what is allowed, without a key path: the caller
 * knows where the value came from (a config key, an env variable, a request
 * field) and wraps it in its own HearthError.
 */
import { isIP } from 'node:net';

const BYTE_UNITS: Readonly<Record<string, number>> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

export const BYTE_SIZE_HINT =
  'use a whole number of bytes or a number with a unit: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB (e.g. 20GiB)';

export const DURATION_HINT = 'use a number of seconds or a string like 500ms, 30s, 5m, 1h or 1h30m';

/** `20GiB` → 21474836480. A number is a count of bytes. Units are case-insensitive; KB = 1000, KiB = 1024. */
export function parseBytes(value: number | string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || !Number.isInteger(value)) {
      throw new RangeError(`${value} is not a whole number of bytes; ${BYTE_SIZE_HINT}`);
    }
    if (value < 0) throw new RangeError(`${value}: a size cannot be negative; ${BYTE_SIZE_HINT}`);
    if (!Number.isSafeInteger(value)) throw new RangeError(`${value} is too large; ${BYTE_SIZE_HINT}`);
    return value;
  }
  if (typeof value !== 'string') throw new RangeError(`${describeValue(value)} is not a byte size; ${BYTE_SIZE_HINT}`);
  const text = value.trim();
  if (/^-\s*\d/.test(text))
    throw new RangeError(`${JSON.stringify(value)}: a size cannot be negative; ${BYTE_SIZE_HINT}`);
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text);
  const multiplier = match ? BYTE_UNITS[(match[2] ?? '').toLowerCase() || 'b'] : undefined;
  if (!match || multiplier === undefined) {
    throw new RangeError(`${JSON.stringify(value)} is not a byte size; ${BYTE_SIZE_HINT}`);
  }
  const bytes = Math.round(Number(match[1]) * multiplier);
  if (!Number.isSafeInteger(bytes)) throw new RangeError(`${JSON.stringify(value)} is too large; ${BYTE_SIZE_HINT}`);
  return bytes;
}

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * A duration in milliseconds. A number, or a string holding only a number, is
 * seconds (as Ollama's `keep_alive` and `OLLAMA_KEEP_ALIVE` read it); a string
 * may also be Go-style `500ms`, `30s`, `5m`, `1h30m`. Negative values are
 * returned as they are: where a setting allows them they mean "forever".
 */
export function parseDuration(value: number | string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new RangeError(`${value} is not a duration; ${DURATION_HINT}`);
    return checkedMs(Math.round(value * 1000), value);
  }
  if (typeof value !== 'string') throw new RangeError(`${describeValue(value)} is not a duration; ${DURATION_HINT}`);
  const text = value.trim();
  if (/^[+-]?\d+(?:\.\d+)?$/.test(text)) return checkedMs(Math.round(Number(text) * 1000), value);
  const whole = /^([+-]?)((?:\d+(?:\.\d+)?(?:ms|s|m|h))+)$/.exec(text);
  if (!whole) throw new RangeError(`${JSON.stringify(value)} is not a duration; ${DURATION_HINT}`);
  let ms = 0;
  for (const part of (whole[2] ?? '').matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) {
    ms += Number(part[1]) * (DURATION_UNITS[part[2] ?? ''] ?? Number.NaN);
  }
  return checkedMs(Math.round(whole[1] === '-' ? -ms : ms), value);
}

function checkedMs(ms: number, value: number | string): number {
  if (!Number.isSafeInteger(ms)) throw new RangeError(`${JSON.stringify(value)} is too long; ${DURATION_HINT}`);
  // -0 would print as "0" yet compare as negative in some checks; normalise it.
  return ms === 0 ? 0 : ms;
}

/** 21474836480 → `20GiB`: the exact form parseBytes reads back; a size with no exact unit stays a plain number of bytes (human sizes: units.ts formatBytes). */
export function formatBytesExact(bytes: number): string | number {
  if (bytes === 0) return 0;
  for (const unit of ['TiB', 'GiB', 'MiB', 'KiB', 'TB', 'GB', 'MB', 'KB'] as const) {
    const size = BYTE_UNITS[unit.toLowerCase()] ?? 1;
    if (bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return bytes;
}

/** 300000 → `5m`: the largest unit that divides the value exactly. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  for (const unit of ['h', 'm', 's'] as const) {
    const size = DURATION_UNITS[unit] ?? 1;
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** A parsed CIDR block. `text` is the canonical `address/prefix` form. */
export interface Cidr {
  address: string;
  prefix: number;
  family: 4 | 6;
  text: string;
}

/** `10.0.20.0/24`, `fd00::/8`; a bare address is a single host (/32 or /128). */
export function parseCidr(text: string): Cidr {
  if (typeof text !== 'string') throw new RangeError(`${describeValue(text)} is not a CIDR block like 10.0.20.0/24`);
  const trimmed = text.trim();
  const slash = trimmed.indexOf('/');
  const rawAddress = slash === -1 ? trimmed : trimmed.slice(0, slash);
  const rawPrefix = slash === -1 ? undefined : trimmed.slice(slash + 1);
  const family = isIP(rawAddress);
  if ((family !== 4 && family !== 6) || rawAddress.includes('%')) {
    throw new RangeError(
      `${JSON.stringify(text)}: ${JSON.stringify(rawAddress)} is not an IP address; use a CIDR block like 10.0.20.0/24 or fd00:20::/64`,
    );
  }
  const maxPrefix = family === 4 ? 32 : 128;
  let prefix = maxPrefix;
  if (rawPrefix !== undefined) {
    prefix = /^\d{1,3}$/.test(rawPrefix) ? Number(rawPrefix) : Number.NaN;
    if (!(prefix <= maxPrefix)) {
      throw new RangeError(
        `${JSON.stringify(text)}: the prefix length must be 0-${maxPrefix} for an IPv${family} address`,
      );
    }
  }
  const address = family === 6 ? canonicalIPv6(rawAddress) : rawAddress;
  return { address, prefix, family, text: `${address}/${prefix}` };
}

/** Where a listener binds. `host` is an IP literal (IPv6 without brackets). */
export interface ListenAddress {
  host: string;
  port: number;
  family: 4 | 6;
}

/** Options for {@link parseListenAddress}. */
export interface ListenAddressOptions {
  /** Used when the text has no host (`:11434`). Without it a host is required. */
  defaultHost?: string;
  /** Used when the text has no port (`10.0.20.5`). Without it a port is required. */
  defaultPort?: number;
}

const ADDRESS_HINT = 'use host:port with an IP address, e.g. 10.0.20.5:11434 or [::1]:11434';

/**
 * `10.0.20.5:11434`, `[::1]:11434`, `localhost:11434` (→ 127.0.0.1). Host
 * names other than localhost are refused: a listener binds one address, and
 * the zone rules are about addresses, so what a name resolves to must not
 * decide them. Port 0 means any free port (tests use it).
 */
export function parseListenAddress(text: string, options: ListenAddressOptions = {}): ListenAddress {
  if (typeof text !== 'string') throw new RangeError(`${describeValue(text)} is not a listen address; ${ADDRESS_HINT}`);
  const trimmed = text.trim();
  let host: string;
  let port: string | undefined;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(trimmed);
  if (bracketed) {
    host = bracketed[1] ?? '';
    port = bracketed[2];
    if (isIP(host) !== 6)
      throw new RangeError(`${JSON.stringify(text)}: [${host}] is not an IPv6 address; ${ADDRESS_HINT}`);
  } else if (isIP(trimmed) === 6) {
    host = trimmed;
  } else {
    const colon = trimmed.lastIndexOf(':');
    if (colon !== -1 && trimmed.indexOf(':') !== colon) {
      throw new RangeError(`${JSON.stringify(text)}: put an IPv6 address in brackets, e.g. [::1]:11434`);
    }
    host = colon === -1 ? trimmed : trimmed.slice(0, colon);
    port = colon === -1 ? undefined : trimmed.slice(colon + 1);
  }
  if (host === '') {
    if (options.defaultHost === undefined) throw new RangeError(`${JSON.stringify(text)} has no host; ${ADDRESS_HINT}`);
    host = options.defaultHost;
  }
  if (host.toLowerCase() === 'localhost') host = '127.0.0.1';
  const family = isIP(host);
  if (family !== 4 && family !== 6) {
    throw new RangeError(
      `${JSON.stringify(text)}: ${JSON.stringify(host)} is not an IP address; listeners bind an address, not a name; ${ADDRESS_HINT}`,
    );
  }
  let portNumber: number;
  if (port === undefined || port === '') {
    if (options.defaultPort === undefined) throw new RangeError(`${JSON.stringify(text)} has no port; ${ADDRESS_HINT}`);
    portNumber = options.defaultPort;
  } else {
    portNumber = /^\d{1,5}$/.test(port) ? Number(port) : Number.NaN;
    if (!(portNumber <= 65535)) {
      throw new RangeError(
        `${JSON.stringify(text)}: port ${JSON.stringify(port)} is out of range; use 1-65535 (0 = any free port)`,
      );
    }
  }
  return { host: family === 6 ? canonicalIPv6(host) : host, port: portNumber, family };
}

/** The canonical text of a listen address: `10.0.20.5:11434`, `[::1]:11434`. */
export function formatListenAddress(address: Pick<ListenAddress, 'host' | 'port'>): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

function canonicalIPv6(address: string): string {
  const percent = address.indexOf('%');
  const bare = percent === -1 ? address : address.slice(0, percent);
  // WHATWG URL parsing compresses and lower-cases IPv6, so `::0001` and `::1` compare equal.
  const canonical = new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  return percent === -1 ? canonical : canonical + address.slice(percent);
}

/** How a value reads in a message: strings quoted, lists and mappings named. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'a mapping';
  return String(value);
}

/** Names of things that hold secrets: masked when printed. */
export const SECRET_NAME = /password|secret|token|key/i;

/**
 * Masks the password in a URL (`postgres://hearth:***@atlas.lan/hearth`) and
 * secret-named query parameters (`?password=***`); other text is unchanged.
 */
export function maskUrlPassword(text: string): string {
  return text
    .replace(/^([a-z][a-z0-9+.-]*:\/\/[^/?#:@]*:)([^/?#]*)@/i, (_, head: string, password: string) =>
      password ? `${head}***@` : `${head}@`,
    )
    .replace(/([?&])([^=&#]*)=([^&#]*)/g, (whole, sep: string, name: string) =>
      SECRET_NAME.test(name) ? `${sep}${name}=***` : whole,
    );
}
