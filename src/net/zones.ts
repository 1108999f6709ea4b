/**
 * Zones (name → CIDR blocks) and the admission rule of one listener: a peer
 * is admitted when it lies in one of the listener's zones and in no denied
 * zone. Denial wins over admission, so a broad zone (`lan: 10.0.0.0/8`) on a
 * listener never lets the user or guest VLAN in.
 */
import type { HearthConfig } from '../config/index.js';
import { type CidrBlock, cidrContains, type IpAddress, parseCidrBlock, parseIpAddress } from './address.js';

/** The configured zones, compiled for matching. */
export class ZoneMap {
  private readonly _blocks = new Map<string, CidrBlock[]>();

  /** `zones` as the config has them (the built-in loopback zone included). Throws on a malformed CIDR. */
  constructor(zones: Readonly<Record<string, readonly string[]>>) {
    for (const [name, cidrs] of Object.entries(zones)) this._blocks.set(name, cidrs.map(parseCidrBlock));
  }

  static fromConfig(config: Pick<HearthConfig, 'zones'>): ZoneMap {
    return new ZoneMap(config.zones);
  }

  /** Every zone the address lies in (zones may overlap). */
  zonesOf(address: IpAddress): string[] {
    const found: string[] = [];
    for (const [name, blocks] of this._blocks) if (blocks.some((b) => cidrContains(b, address))) found.push(name);
    return found;
  }

  has(zone: string): boolean {
    return this._blocks.has(zone);
  }

  blocks(zone: string): readonly CidrBlock[] {
    return this._blocks.get(zone) ?? [];
  }

  names(): string[] {
    return [...this._blocks.keys()];
  }
}

/** Why a peer was admitted or refused. */
export type Admission =
  | { readonly admitted: true; readonly address: IpAddress; readonly zone: string }
  | {
      readonly admitted: false;
      /** `malformed`: no readable address (fail closed); `denied`: in a `deny` zone; `outside`: in none of the listener's zones. */
      readonly reason: 'malformed' | 'denied' | 'outside';
      readonly address: IpAddress | undefined;
      /** The denied zone, for `denied`. */
      readonly zone?: string;
    };

/** Options for {@link ZonePolicy}. */
export interface ZonePolicyOptions {
  zones: ZoneMap;
  /** The zones whose peers may connect. */
  allowed: readonly string[];
  /** Zones refused everywhere (`deny`); they win over `allowed`. */
  denied: readonly string[];
}

/** One listener's admission rule. */
export class ZonePolicy {
  private readonly zones: ZoneMap;
  private readonly allowed: ReadonlySet<string>;
  private readonly denied: ReadonlySet<string>;

  constructor(opts: ZonePolicyOptions) {
    for (const zone of [...opts.allowed, ...opts.denied]) {
      // The config schema checks this too; a policy built by hand must not silently admit nobody.
      if (!opts.zones.has(zone)) throw new RangeError(`zone ${JSON.stringify(zone)} is not defined`);
    }
    this.zones = opts.zones;
    this.allowed = new Set(opts.allowed);
    this.denied = new Set(opts.denied);
  }

  /** Decides on a raw peer address (`socket.remoteAddress`, possibly undefined or malformed). */
  admit(raw: unknown): Admission {
    const address = parseIpAddress(raw);
    if (!address) return { admitted: false, reason: 'malformed', address };
    const zones = this.zones.zonesOf(address);
    const denied = zones.find((z) => this.denied.has(z));
    if (denied !== undefined) return { admitted: false, reason: 'denied', address, zone: denied };
    const allowed = zones.find((z) => this.allowed.has(z));
    if (allowed === undefined) return { admitted: false, reason: 'outside', address };
    return { admitted: true, address, zone: allowed };
  }

  /** Whether the address lies in any of `zones` (and no denied zone). */
  inAnyOf(address: IpAddress, zones: readonly string[]): boolean {
    const found = this.zones.zonesOf(address);
    return !found.some((z) => this.denied.has(z)) && found.some((z) => zones.includes(z));
  }
}
