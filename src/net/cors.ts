/**
 * Which browser origins may call hearth (CORS). A request that carries an
 * `Origin` hearth does not allow is refused outright (403, as Ollama does),
 * rather than answered without CORS headers: the browser would hide the
 * answer, but a POST would still have run.
 */
import { hostOf } from './host-check.js';

/**
 * Allowed besides the configured `origins`: pages on this machine (any port)
 * and the schemes of desktop apps and editor extensions (Ollama's defaults,
 * which Continue and similar clients rely on).
 */
const BUILT_IN = [
  'http://localhost',
  'https://localhost',
  'http://localhost:*',
  'https://localhost:*',
  'http://127.0.0.1',
  'https://127.0.0.1',
  'http://127.0.0.1:*',
  'https://127.0.0.1:*',
  'http://[::1]',
  'https://[::1]',
  'http://[::1]:*',
  'https://[::1]:*',
  'app://*',
  'file://*',
  'tauri://*',
  'vscode-webview://*',
  'vscode-file://*',
];

export class CorsPolicy {
  private readonly patterns: RegExp[];
  private readonly any: boolean;

  /** `origins` from the config: `scheme://host[:port]`, `*` wildcards inside, or `*` for every origin. */
  constructor(origins: readonly string[]) {
    this.any = origins.includes('*');
    this.patterns = [...BUILT_IN, ...origins.filter((o) => o !== '*')].map(originPattern);
  }

  /**
   * Whether a request from `origin` may proceed. A same-origin request (the
   * UI's own POSTs carry an Origin too) is recognised by the origin's host
   * and port matching the Host header.
   */
  allows(origin: string, hostHeader: string | undefined): boolean {
    if (this.any) return true;
    const normalised = origin.trim().toLowerCase().replace(/\/$/, '');
    if (this.patterns.some((p) => p.test(normalised))) return true;
    return hostHeader !== undefined && sameOrigin(normalised, hostHeader);
  }
}

function originPattern(pattern: string): RegExp {
  const escaped = pattern
    .toLowerCase()
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('[^/]*');
  return new RegExp(`^${escaped}$`);
}

function sameOrigin(origin: string, hostHeader: string): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  const host = hostOf(hostHeader);
  if (host === undefined) return false;
  const headerPort = hostHeader.trim().match(/:(\d{1,5})$/)?.[1];
  const originHost = url.hostname.replace(/^\[|\]$/g, '');
  const originPort = url.port || (url.protocol === 'https:' ? '443' : '80');
  return originHost === host.toLowerCase() && originPort === (headerPort ?? (url.protocol === 'https:' ? '443' : '80'));
}
