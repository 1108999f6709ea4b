/**
 * Access control for one process: the zone filter at accept, then, per HTTP
 * request, the Host and Origin checks and the API-key check for the route's
 * service class. `AccessControl` holds what listeners share (zones, proxies,
 * the key store, the failed-auth limiter); `ListenerGuard` applies it to one
 * listener. Framework-free: src/http/guard.ts wires it into Fastify.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Server } from 'node:net';
import type { AtlasDb } from '../atlas/db/index.js';
import { type HearthConfig, type ListenerConfig, LOOPBACK_ZONE, type ServiceClass } from '../config/index.js';
import { HearthError } from '../errors.js';
import type { Logger } from '../log.js';
import { AcceptFilter, type DropReason } from './accept-filter.js';
import { type CidrBlock, cidrContains, type IpAddress, isLoopback, parseCidrBlock, parseIpAddress } from './address.js';
import { FailedAuthLimiter, type FailedAuthLimiterOptions } from './auth-failures.js';
import { CorsPolicy } from './cors.js';
import { KEYED_CLASSES } from './exposure.js';
import { HostAllowlist, hostCheckApplies } from './host-check.js';
import { type ApiKeyInfo, ApiKeyStore } from './keys/key-store.js';
import { ZoneMap, ZonePolicy } from './zones.js';

/** Options for {@link AccessControl}. */
export interface AccessControlOptions {
  config: Pick<HearthConfig, 'zones' | 'deny' | 'adminZones' | 'trustedProxies' | 'origins'>;
  /** The Atlas database, where API keys live. */
  db: Pick<AtlasDb, 'query'>;
  log: Logger;
  /** This machine's host name, accepted in Host headers (default: the OS's). */
  machineHostname?: string;
  /** The failed-authentication limit (default: 10 failures a minute per address). */
  failedAuth?: FailedAuthLimiterOptions;
  /** Called on every connection dropped at accept (e.g. a metrics counter). */
  onDrop?: (listener: string, reason: DropReason) => void;
}

/** The request as the guard needs it (an http.IncomingMessage fits). */
export interface GuardedRequest {
  readonly headers: IncomingHttpHeaders;
  readonly socket: { readonly remoteAddress?: string | undefined };
}

/** Who is on the other end of a request. */
export interface RequestClient {
  /** The client: the socket peer, or, behind a trusted proxy, the address it forwarded. */
  readonly address: IpAddress;
  /** The socket peer. */
  readonly peer: IpAddress;
  /** Whether `address` came from a trusted proxy's X-Forwarded-For. */
  readonly viaProxy: boolean;
  /** Forwarding headers from a peer that is not a trusted proxy (ignored, but no loopback exemption then). */
  readonly untrustedForwarding: boolean;
}

/** Who a request was admitted as. */
export type Principal = { readonly kind: 'loopback' } | { readonly kind: 'key'; readonly key: ApiKeyInfo };

/** What the global request check decided about CORS. */
export interface OriginDecision {
  /** The Origin to echo in Access-Control-Allow-Origin, when the request had an allowed one. */
  allowOrigin?: string;
  /** Whether this is a CORS preflight the guard answers itself (204). */
  preflight: boolean;
}

/** What the listeners of one process share. */
interface SharedAccess {
  readonly opts: AccessControlOptions;
  readonly zones: ZoneMap;
  readonly proxies: readonly CidrBlock[];
  readonly cors: CorsPolicy;
  readonly limiter: FailedAuthLimiter;
  readonly keys: ApiKeyStore;
  readonly filters: AcceptFilter[];
}

export class AccessControl {
  /** The API keys on Atlas. */
  readonly keys: ApiKeyStore;
  private readonly shared: SharedAccess;

  constructor(opts: AccessControlOptions) {
    this.keys = new ApiKeyStore({ db: opts.db });
    this.shared = {
      opts,
      zones: ZoneMap.fromConfig(opts.config),
      proxies: opts.config.trustedProxies.map(parseCidrBlock),
      cors: new CorsPolicy(opts.config.origins),
      limiter: new FailedAuthLimiter(opts.failedAuth),
      keys: this.keys,
      filters: [],
    };
  }

  /** The guard for one listener. */
  listener(listener: ListenerConfig): ListenerGuard {
    return new ListenerGuard(this.shared, listener);
  }

  /** Logs the drops not yet logged. The servers themselves are closed by their owner. */
  close(): void {
    for (const filter of this.shared.filters.splice(0)) filter.close();
  }
}

export class ListenerGuard {
  readonly listener: ListenerConfig;
  private readonly shared: SharedAccess;
  private readonly policy: ZonePolicy;
  private readonly hosts: HostAllowlist | undefined;
  private readonly adminZones: readonly string[];
  private readonly principals = new WeakMap<object, Principal>();
  private filter: AcceptFilter | undefined;

  /** @internal Made by {@link AccessControl.listener}. */
  constructor(shared: SharedAccess, listener: ListenerConfig) {
    const { opts, zones } = shared;
    this.listener = listener;
    this.shared = shared;
    this.policy = new ZonePolicy({ zones, allowed: listener.zones, denied: opts.config.deny });
    this.hosts = hostCheckApplies(listener)
      ? new HostAllowlist({
          hosts: listener.hosts,
          ...(opts.machineHostname ? { machineHostname: opts.machineHostname } : {}),
        })
      : undefined;
    this.adminZones = [LOOPBACK_ZONE, ...opts.config.adminZones];
  }

  /** Puts the zone filter in front of the server's connection handling. Call before `listen`. */
  protect(server: Server): AcceptFilter {
    if (this.filter) throw new Error(`listener ${this.listener.name} is already protected`);
    const { opts, filters } = this.shared;
    this.filter = AcceptFilter.install(server, {
      listener: this.listener.name,
      policy: this.policy,
      log: opts.log,
      ...(opts.onDrop ? { onDrop: (reason: DropReason) => opts.onDrop?.(this.listener.name, reason) } : {}),
    });
    filters.push(this.filter);
    return this.filter;
  }

  /** Connections dropped at accept so far. */
  get dropped(): number {
    return this.filter?.counts.total ?? 0;
  }

  /**
   * The request's client. X-Forwarded-For is read only from a trusted proxy:
   * the right-most address that is not itself a trusted proxy is the client.
   * Throws (fail closed) on an unreadable peer or forwarded address.
   */
  client(request: GuardedRequest): RequestClient {
    return resolveClient(request, this.shared.proxies);
  }

  /**
   * The checks every request passes, whatever its route: the Host header
   * (DNS-rebinding defence) and the Origin (CORS). Throws HOST_NOT_ALLOWED or
   * ORIGIN_NOT_ALLOWED.
   */
  checkRequest(request: GuardedRequest & { readonly method?: string | undefined }): OriginDecision {
    const host = request.headers.host;
    if (this.hosts && !this.hosts.allows(host)) {
      throw new HearthError('HOST_NOT_ALLOWED', [JSON.stringify(host), JSON.stringify(this.listener.name)]);
    }
    const origin = request.headers.origin;
    if (origin === undefined) return { preflight: false };
    if (!this.shared.cors.allows(origin, host)) {
      throw new HearthError('ORIGIN_NOT_ALLOWED', [JSON.stringify(origin)]);
    }
    const preflight = request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined;
    return { allowOrigin: origin, preflight };
  }

  /**
   * Admits a request to a route of `serviceClass`, or throws AUTH_REQUIRED
   * (401: no key, or not a valid one), AUTH_FORBIDDEN (403: the key lacks the
   * scope, or admin from outside the admin zones) or AUTH_RATE_LIMITED (429).
   * Classes without keys (ui, metrics) pass as the request's client.
   */
  async authorize(request: GuardedRequest, serviceClass: ServiceClass): Promise<Principal | undefined> {
    const client = this.client(request);
    const { limiter } = this.shared;
    if (serviceClass === 'admin' && client.viaProxy && !this.policy.inAnyOf(client.address, this.adminZones)) {
      throw new HearthError(
        'AUTH_FORBIDDEN',
        `admin is served only to ${this.adminZones.join(', ')}; ${client.address.text} (forwarded by ${client.peer.text}) is outside them`,
      );
    }
    if (!KEYED_CLASSES.includes(serviceClass)) return undefined;
    if (this.listener.auth === 'loopback-exempt' && isLoopback(client.address) && !client.untrustedForwarding) {
      const principal: Principal = { kind: 'loopback' };
      this.principals.set(request, principal);
      return principal;
    }
    const source = client.address.text;
    const waitMs = limiter.retryAfterMs(source);
    if (waitMs > 0) {
      throw new HearthError(
        'AUTH_RATE_LIMITED',
        `too many failed authentications from ${source}: try again in ${Math.ceil(waitMs / 1000)} s`,
        { details: { retryAfterSeconds: Math.ceil(waitMs / 1000) } },
      );
    }
    // Anthropic's clients send the key as `x-api-key`; it is the same key, with the same scopes.
    const presented = bearerToken(request.headers.authorization) ?? apiKeyHeader(request.headers['x-api-key']);
    if (presented === undefined) {
      throw new HearthError(
        'AUTH_REQUIRED',
        `listener ${JSON.stringify(this.listener.name)} needs an API key for ${serviceClass} routes: send "Authorization: Bearer <key>" (or "x-api-key: <key>") ` +
          `(an admin makes one with \`hearth keys create --name NAME --scopes ${serviceClass}\`)`,
        { details: { wwwAuthenticate: true } },
      );
    }
    const check = await this.shared.keys.check(presented);
    if (!check.ok) {
      limiter.recordFailure(source);
      this.shared.opts.log.warn(
        { listener: this.listener.name, client: source, reason: check.reason },
        `listener ${this.listener.name}: refused an API key from ${source} (${check.reason})`,
      );
      const why =
        check.reason === 'revoked'
          ? 'has been revoked'
          : check.reason === 'expired'
            ? 'has expired'
            : 'is not a valid hearth API key';
      throw new HearthError(
        'AUTH_REQUIRED',
        `the API key ${why}: ask an admin for a current one (hearth keys create)`,
        {
          details: { wwwAuthenticate: true },
        },
      );
    }
    if (!(check.key.scopes as readonly string[]).includes(serviceClass)) {
      throw new HearthError(
        'AUTH_FORBIDDEN',
        `API key ${JSON.stringify(check.key.name)} has scope ${check.key.scopes.join(', ')}, not ${serviceClass}: ` +
          `use a key with the ${serviceClass} scope (hearth keys create --scopes ${serviceClass})`,
      );
    }
    const principal: Principal = { kind: 'key', key: check.key };
    this.principals.set(request, principal);
    return principal;
  }

  /** Who an authorized request was admitted as (undefined before authorize, or for keyless classes). */
  principalOf(request: object): Principal | undefined {
    return this.principals.get(request);
  }
}

function apiKeyHeader(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  return value?.trim() || undefined;
}

function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  // A malformed header is a failed attempt, not a missing one.
  return match ? match[1] : header.trim() || undefined;
}

/**
 * The request's client, given the trusted proxies (see AccessControl.client): the right-most
 * forwarded address that is not itself a trusted proxy. Throws on an unreadable address.
 */
export function resolveClient(request: GuardedRequest, proxies: readonly CidrBlock[]): RequestClient {
  const peer = parseIpAddress(request.socket.remoteAddress);
  if (!peer) throw new HearthError('AUTH_FORBIDDEN', 'the connection’s peer address cannot be read: refused');
  const trusted = (a: IpAddress) => proxies.some((block) => cidrContains(block, a));
  const header = request.headers['x-forwarded-for'];
  const forwardedText = Array.isArray(header) ? header.join(',') : header;
  if (forwardedText !== undefined && trusted(peer)) {
    const hops = forwardedText.split(',').map((hop) => parseIpAddress(stripPort(hop.trim())));
    if (hops.length === 0 || hops.some((hop) => hop === undefined)) {
      throw new HearthError(
        'BAD_REQUEST',
        `X-Forwarded-For from the trusted proxy ${peer.text} is malformed (${JSON.stringify(forwardedText.slice(0, 200))}): check the proxy's configuration`,
      );
    }
    const chain = hops as IpAddress[];
    let address = chain[0] as IpAddress;
    for (let i = chain.length - 1; i >= 0; i--) {
      const hop = chain[i] as IpAddress;
      if (!trusted(hop)) {
        address = hop;
        break;
      }
    }
    return { address, peer, viaProxy: true, untrustedForwarding: false };
  }
  const untrustedForwarding =
    forwardedText !== undefined ||
    request.headers['forwarded'] !== undefined ||
    request.headers['x-real-ip'] !== undefined;
  return { address: peer, peer, viaProxy: false, untrustedForwarding };
}

/**
 * Whether the client asked over HTTPS: the socket is TLS, or a trusted proxy says so
 * (`X-Forwarded-Proto: https`, its first value). Decides a cookie's `Secure`.
 */
export function viaHttps(
  request: GuardedRequest & { readonly socket: { readonly encrypted?: boolean } },
  client: RequestClient,
): boolean {
  if (request.socket.encrypted) return true;
  if (!client.viaProxy) return false;
  const header = request.headers['x-forwarded-proto'];
  const first = (Array.isArray(header) ? header[0] : header)?.split(',')[0]?.trim().toLowerCase();
  return first === 'https';
}

/** `10.0.30.7:51234` → `10.0.30.7`, `[fd00::7]:443` → `fd00::7` (some proxies add ports). */
function stripPort(hop: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(hop);
  if (bracketed) return bracketed[1] ?? '';
  const v4WithPort = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(hop);
  return v4WithPort ? (v4WithPort[1] ?? '') : hop;
}
