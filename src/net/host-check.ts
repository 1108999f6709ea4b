/**
 * The Host-header check against DNS rebinding: a page on evil.example makes
 * its name resolve to 127.0.0.1 (or a LAN address), and the victim's browser
 * then talks to hearth while believing it talks to evil.example. The Host
 * header still says evil.example, so refusing names hearth does not know
 * stops it. An IP literal is always accepted: rebinding needs a name the
 * attacker controls, and a browser pointed at an IP gets that IP's origin.
 */
import { hostname as osHostname } from 'node:os';
import type { ListenerConfig } from '../config/index.js';
import { parseIpAddress } from './address.js';

/** Names accepted on every checked listener, as Ollama accepts them. */
const ALWAYS_ALLOWED_SUFFIXES = ['.localhost', '.local', '.internal'];

/** Options for {@link HostAllowlist}. */
export interface HostAllowlistOptions {
  /** `listeners[].hosts`: the names people and clients use for this listener. */
  hosts: readonly string[];
  /** This machine's host name (default: the OS's); accepted with and without its domain. */
  machineHostname?: string;
}

export class HostAllowlist {
  private readonly names: ReadonlySet<string>;

  constructor(opts: HostAllowlistOptions) {
    const machine = normaliseName(opts.machineHostname ?? osHostname());
    const names = new Set(['localhost', ...opts.hosts.map(normaliseName)]);
    if (machine) names.add(machine).add(machine.split('.')[0] ?? machine);
    this.names = names;
  }

  /** Whether a request's Host header names this listener. A missing header (HTTP/1.0) is allowed: browsers always send one. */
  allows(hostHeader: string | undefined): boolean {
    if (hostHeader === undefined) return true;
    const host = hostOf(hostHeader);
    if (host === undefined) return false;
    if (parseIpAddress(host)) return true;
    const name = normaliseName(host);
    return this.names.has(name) || ALWAYS_ALLOWED_SUFFIXES.some((suffix) => name.endsWith(suffix));
  }
}

/**
 * Where the check applies: listeners serving the browser UI, listeners on
 * loopback (what a browser on this machine reaches: Ollama's known hole) and
 * listeners whose `hosts` the admin listed. An API-only LAN listener with no
 * `hosts` accepts any name its clients use.
 */
export function hostCheckApplies(listener: Pick<ListenerConfig, 'serves' | 'hosts' | 'address'>): boolean {
  if (listener.serves.includes('ui') || listener.hosts.length > 0) return true;
  const host = listener.address.startsWith('[')
    ? listener.address.slice(1, listener.address.indexOf(']'))
    : listener.address.slice(0, listener.address.lastIndexOf(':'));
  const address = parseIpAddress(host);
  return address !== undefined && (address.text.startsWith('127.') || address.text === '::1');
}

/** The host part of a Host header (`name:port`, `[v6]:port`, `v4`), or undefined when malformed. */
export function hostOf(header: string): string | undefined {
  const value = header.trim();
  if (value.startsWith('[')) {
    const end = value.indexOf(']');
    if (end === -1) return undefined;
    const rest = value.slice(end + 1);
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return undefined;
    return value.slice(1, end);
  }
  const colon = value.lastIndexOf(':');
  const host = colon === -1 ? value : value.slice(0, colon);
  if (colon !== -1 && !/^\d{1,5}$/.test(value.slice(colon + 1))) return undefined;
  if (host === '' || host.includes(':') || /[\s/@]/.test(host)) return undefined;
  return host;
}

function normaliseName(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, '');
}
