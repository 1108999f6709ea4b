import { API_KEY_VARIABLE } from '../config/index.js';
import { HearthError } from '../errors.js';

/**
 * The CLI's connection to a running `hearth serve`, found like Ollama's:
 * HEARTH_HOST (`host`, `host:port`, `:port`, `http://host:port`), default
 * http://127.0.0.1:11434.
 */
export function serverUrl(env: NodeJS.ProcessEnv = process.env): string {
  const raw = (env['HEARTH_HOST'] ?? '').trim();
  if (!raw) return 'http://127.0.0.1:11434';
  let s = raw;
  if (!/^https?:\/\//i.test(s)) s = `http://${s.startsWith(':') ? `127.0.0.1${s}` : s}`;
  const url = new URL(s);
  if (url.hostname === '0.0.0.0') url.hostname = '127.0.0.1';
  if (url.hostname === '[::]') url.hostname = '[::1]';
  if (!url.port && url.protocol === 'http:') url.port = '11434';
  return url.origin;
}

export class HearthClient {
  constructor(readonly base: string = serverUrl()) {}

  /** One request with the API key, a clear message when no server answers, and the server's error text on 4xx/5xx. */
  async request(path: string, init: RequestInit = {}): Promise<Response> {
    let res: Response;
    // A listener with `auth: required` (or any non-loopback one) wants a key: HEARTH_API_KEY, like OPENAI_API_KEY.
    const key = process.env[API_KEY_VARIABLE]?.trim();
    if (key)
      init = {
        ...init,
        headers: { ...(init.headers as Record<string, string> | undefined), authorization: `Bearer ${key}` },
      };
    try {
      res = await fetch(`${this.base}${path}`, init);
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      throw new HearthError(
        'BAD_REQUEST',
        `could not connect to hearth at ${this.base}${cause ? ` (${cause})` : ''}: is \`hearth serve\` running? (set HEARTH_HOST to reach another address)`,
      );
    }
    if (!res.ok) {
      const text = await res.text();
      let message = text;
      try {
        const body = JSON.parse(text) as { error?: string | { message?: string } };
        message = typeof body.error === 'string' ? body.error : (body.error?.message ?? text);
      } catch {}
      throw new HearthError('BAD_REQUEST', message || `${res.status} ${res.statusText}`, { status: res.status });
    }
    return res;
  }

  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.request(path, {
      method,
      ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
    });
    const text = await res.text();
    return (text ? JSON.parse(text) : {}) as T;
  }

  /** POSTs and yields each NDJSON line; an in-band `{"error"}` line throws. */
  async *stream<T>(path: string, body: unknown, signal?: AbortSignal): AsyncGenerator<T> {
    const res = await this.request(path, {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
      ...(signal ? { signal } : {}),
    });
    if (!res.body) return;
    const decoder = new TextDecoder();
    let buffered = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffered += decoder.decode(chunk, { stream: true });
      let nl = buffered.indexOf('\n');
      while (nl >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (line) {
          yield parseLine<T>(line);
        }
        nl = buffered.indexOf('\n');
      }
    }
    if (buffered.trim()) {
      yield parseLine<T>(buffered);
    }
  }

  async head(path: string): Promise<number> {
    try {
      return (await fetch(`${this.base}${path}`, { method: 'HEAD' })).status;
    } catch {
      return (await this.request(path, { method: 'HEAD' })).status;
    }
  }

  async upload(path: string, body: ReadableStream | Blob, size: number): Promise<void> {
    await this.request(path, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      duplex: 'half',
    } as RequestInit);
  }
}

function parseLine<T>(line: string): T {
  const obj = JSON.parse(line) as { error?: string };
  if (obj.error) throw new HearthError('BAD_REQUEST', obj.error);
  return obj as T;
}
