/**
 * What the configuration exposes, and what start-up refuses to expose:
 *
 * - binding a wildcard (`0.0.0.0`, `::`) or a public address, unless
 *   `allowPublicBind` says so (and then a loud warning);
 * - serving `admin` to any zone but `adminZones` and loopback.
 *
 * `exposureReport` is the one description of it, printed by `hearth serve`
 * at start-up and by `hearth doctor`.
 */
import {
  type HearthConfig,
  type ListenerConfig,
  LOOPBACK_ZONE,
  parseListenAddress,
  type ServiceClass,
} from '../config/index.js';
import { HearthError } from '../errors.js';
import { type AddressScope, addressScope, isNonPublicBlock, parseIpAddress } from './address.js';
import { hostCheckApplies } from './host-check.js';
import { KEY_SCOPES } from './keys/api-key.js';
import { ZoneMap } from './zones.js';

/** What start-up refuses (`problems`) and what it only warns about. */
export interface ExposureAssessment {
  problems: string[];
  warnings: string[];
}

/** Service classes whose routes take `Authorization: Bearer` keys (the key's scope is the class). */
export const KEYED_CLASSES: readonly ServiceClass[] = KEY_SCOPES;

export function assessExposure(config: HearthConfig): ExposureAssessment {
  const problems: string[] = [];
  const warnings: string[] = [];
  const zones = ZoneMap.fromConfig(config);
  const adminAllowed = new Set([LOOPBACK_ZONE, ...config.adminZones]);
  config.listeners.forEach((listener, i) => {
    const label = `listeners[${i}] (${JSON.stringify(listener.name)})`;
    const scope = bindScope(listener);
    if (scope === 'unspecified' || scope === 'public') {
      const what =
        scope === 'unspecified'
          ? `${listener.address} is a wildcard address: it binds every interface of this machine, including any that faces the internet`
          : `${listener.address} is a public address: it can be reached from outside the house`;
      if (!config.allowPublicBind) {
        problems.push(
          `${label}: refusing to bind ${what}. Bind this machine's own address on the VLAN that should reach it ` +
            `(e.g. 10.0.20.5:11434), or, to bind it anyway, set allowPublicBind: true in the config ` +
            `(or HEARTH_ALLOW_PUBLIC_BIND=true); peers outside the listener's zones are still dropped`,
        );
      } else {
        warnings.push(
          `EXPOSED: ${label}: ${what}, and allowPublicBind is true. Only the zone filter stands between it and ` +
            `every network that can route here; bind a private address unless you mean this`,
        );
      }
    }
    if (listener.serves.includes('admin')) {
      const outside = listener.zones.filter((z) => !adminAllowed.has(z));
      if (outside.length > 0) {
        problems.push(
          `${label}: serves admin to ${plural('zone', outside)} ${outside.map((z) => JSON.stringify(z)).join(', ')}, ` +
            `but admin (model pulls and deletes, keys) is served only to adminZones (${config.adminZones.join(', ') || 'none'}) ` +
            `and loopback: remove admin from its serves and give it its own listener, or add the zone to adminZones`,
        );
      }
    }
    for (const zone of listener.zones) {
      const open = zones.blocks(zone).filter((block) => !isNonPublicBlock(block));
      if (open.length > 0) {
        warnings.push(
          `${label}: zone ${JSON.stringify(zone)} includes public addresses (${open.map((b) => b.text).join(', ')}): ` +
            `peers on the internet in it would be admitted if they can route here`,
        );
      }
    }
  });
  return { problems, warnings };
}

/** Throws NET_EXPOSURE_REFUSED listing every problem; returns the warnings, which the caller logs. */
export function assertExposureAllowed(config: HearthConfig): string[] {
  const { problems, warnings } = assessExposure(config);
  if (problems.length > 0) {
    throw new HearthError(
      'NET_EXPOSURE_REFUSED',
      [problems.length, problems.length === 1 ? '' : 's', problems.map((p) => `  ${p}`).join('\n')],
      { details: { problems } },
    );
  }
  return warnings;
}

/**
 * For each listener: where it binds, what it serves, to which zones, with
 * what auth and Host check; then what is denied everywhere, the trusted
 * proxies and the CORS origins. One line per fact, for logs and the terminal.
 */
export function exposureReport(config: HearthConfig): string[] {
  const lines: string[] = [];
  const zones = ZoneMap.fromConfig(config);
  const zoneText = (name: string) =>
    `${name} (${zones
      .blocks(name)
      .map((b) => b.text)
      .join(', ')})`;
  for (const listener of config.listeners) {
    lines.push(`listener ${listener.name}: ${listener.address} (${describeScope(bindScope(listener))})`);
    const unserved = (['inference', 'ui', 'workflows', 'jobs', 'admin', 'metrics'] as const).filter(
      (c) => !listener.serves.includes(c),
    );
    lines.push(
      `  serves ${listener.serves.join(', ')}${unserved.length ? ` (${unserved.join(', ')} routes answer 404 here)` : ''}`,
    );
    lines.push(
      `  admits ${plural('zone', listener.zones)} ${listener.zones.map(zoneText).join(', ')}; every other peer is dropped at accept`,
    );
    lines.push(`  auth: ${describeAuth(listener)}`);
    lines.push(
      hostCheckApplies(listener)
        ? `  Host header must be one of: ${[...listener.hosts, 'localhost', "this machine's name", '*.localhost, *.local, *.internal'].join(', ')}, or an IP address`
        : '  Host header not checked (API-only LAN listener without hosts)',
    );
  }
  lines.push(
    config.deny.length ? `denied everywhere: ${config.deny.map(zoneText).join(', ')}` : 'denied everywhere: no zone',
  );
  lines.push(
    config.trustedProxies.length
      ? `X-Forwarded-For believed from: ${config.trustedProxies.join(', ')}`
      : 'X-Forwarded-For believed from: nobody (no trustedProxies)',
  );
  lines.push(
    `browser origins allowed: ${config.origins.length ? config.origins.join(', ') : 'none configured'} (besides this machine's and same-origin)`,
  );
  return lines;
}

function describeAuth(listener: ListenerConfig): string {
  const keyed = listener.serves.filter((c) => KEYED_CLASSES.includes(c));
  const open = listener.serves.filter((c) => !KEYED_CLASSES.includes(c));
  const parts: string[] = [];
  if (keyed.length) {
    parts.push(
      `API key (Bearer, with the class as scope) required for ${keyed.join(', ')}` +
        (listener.auth === 'loopback-exempt' ? ', except from loopback' : ''),
    );
  }
  // The UI signs people in with its own sessions (src/http/ui/auth.ts); metrics rely on the zone filter alone.
  if (open.includes('ui')) parts.push('ui: the UI’s sign-in');
  if (open.includes('metrics')) parts.push('metrics: no key');
  return parts.join('; ');
}

function bindScope(listener: Pick<ListenerConfig, 'address'>): AddressScope {
  const address = parseIpAddress(parseListenAddress(listener.address).host);
  // The config schema only lets IP literals through; unreadable counts as the worst case.
  return address ? addressScope(address) : 'public';
}

function describeScope(scope: AddressScope): string {
  switch (scope) {
    case 'unspecified':
      return 'WILDCARD: every interface';
    case 'public':
      return 'PUBLIC address';
    case 'unique-local':
      return 'IPv6 unique-local address';
    case 'shared':
      return 'shared (CGNAT) address';
    default:
      return `${scope} address`;
  }
}

function plural(word: string, list: readonly unknown[]): string {
  return list.length === 1 ? word : `${word}s`;
}
